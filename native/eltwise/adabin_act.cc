// N-API bindings of AdaBin's activation binarizer, forward and backward, as one pass each
// (src/quantizers/adabin_act.ts; the op-by-op version costs five elementwise passes forward and
// more backward, ~40 % of an AdaBin ResNet-20 training step). Results equal the TypeScript
// reference (src/backends/ref/adabin_act.ts) exactly: the same float32 steps per element and the
// same float64 summation order (blocks of kBlock elements, kLanes lanes each, blocks in order),
// whatever the thread count. Built with -ffp-contract=off (binding.gyp): no fused multiply-adds.
//
//   adabinActF32(out, x, a, b, lo, hi)
//     v = fl32(fl32(x − b)/a);  out = v >= 0 ? hi : v < 0 ? lo : NaN
//   adabinActBackwardF32(dx | null, sums, g, x, a, b, code)
//     dBa = fl32(g·a); dV = fl32(dBa·ApproxSign'(v)); dx = fl32(dV/a);
//     sums[0] = da = Σ [g·fl32(Ba + b) (code) or g·Ba] − (Σ dV·fl32(x − b))/(a·a)
//     sums[1] = db = Σ [dBa (code) or g] − Σ dx          (sums: a Float64Array of 2)
//     (four float64 sums, each over blocks of kBlock elements in kLanes lanes, blocks in order)
//   twoValuesF32(x, out) -> whether x holds exactly two distinct finite values; out (a Float64Array
//     of 2) receives [lo, hi], lo < hi. False for one value, a third value, NaN, ±inf or no element.
//   affineCombineF32(out, p, N, O, HW, f1, f2, c2)
//     the packed conv of two-valued operands (src/ops/binary_forward.ts, affinePackedConv2d): p is
//     [N, O + 1, HW] (±1 counts; channel O the pixel sums of the input's codes), f1, f2 [O] and
//     c2 [O·HW] float64; out [N, O, HW] = fl32((f1[o]·p[n,o] + f2[o]·p[n,O]) + c2[o])
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define ONEBIT_ADABIN_AVX2 1
#endif

#include "common.h"

namespace onebit {
namespace {

constexpr int kLanes = 8;                // SUM_LANES in src/backends/ref/channel_act.ts
constexpr int64_t kBlock = 4096;         // ADABIN_BLOCK in src/backends/ref/adabin_act.ts
constexpr int64_t kParallel = 1 << 18;   // ~256k elements, as eltwise.cc

inline double LaneTotal(const double* l) {
  return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

Napi::Value AdabinActF32(const Napi::CallbackInfo& info) {
  float* out;
  const float* x;
  size_t nout, nx;
  if (!GetArray(info, 0, napi_float32_array, out, nout) || !GetArray(info, 1, napi_float32_array, x, nx)) return info.Env().Undefined();
  if (nout != nx) return Fail(info.Env(), "adabinActF32: out and x must have equal lengths");
  for (size_t i = 2; i < 6; i++)
    if (info.Length() <= i || !info[i].IsNumber()) return Fail(info.Env(), "adabinActF32: a, b, lo and hi must be numbers");
  // Float32 values handed over as numbers: the conversions are exact.
  const float a = static_cast<float>(info[2].As<Napi::Number>().DoubleValue());
  const float b = static_cast<float>(info[3].As<Napi::Number>().DoubleValue());
  const float lo = static_cast<float>(info[4].As<Napi::Number>().DoubleValue());
  const float hi = static_cast<float>(info[5].As<Napi::Number>().DoubleValue());
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const int64_t n = static_cast<int64_t>(nx);
  // Selects, not branches (mixed-sign data would mispredict half the time), so the loop vectorizes.
#pragma omp parallel for schedule(static) if (n >= kParallel)
  for (int64_t i = 0; i < n; i++) {
    const float v = (x[i] - b) / a;
    const float r = v >= 0.f ? hi : lo;
    out[i] = v != v ? nan : r;
  }
  return info.Env().Undefined();
}

// One element: dx and its terms of the four sums (lane arrays of 8).
inline void Step(float* dx, float gi, float xv, float a, float b, bool code, int k, double* ta, double* tp, double* tb, double* tx) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float num = xv - b, v = num / a;
  const float s = v >= 0.f ? 1.f : (v < 0.f ? -1.f : nan);
  const float dBa = gi * a;
  const double raw = 2.0 - 2.0 * std::fabs(static_cast<double>(v));  // ApproxSign': 0 at and beyond ±1 and for NaN
  const float dv = static_cast<float>(static_cast<double>(dBa) * (raw > 0.0 ? raw : 0.0));
  const float dxi = dv / a;
  if (dx) *dx = dxi;
  ta[k] += static_cast<double>(gi) * static_cast<double>(code ? s + b : s);
  tp[k] += static_cast<double>(dv) * static_cast<double>(num);
  tb[k] += static_cast<double>(code ? dBa : gi);
  tx[k] += static_cast<double>(dxi);
}

// One block: dx (when given) and the block's four sums (out[0..3]), element by element (the
// portable path; the scalar loop does not vectorize and runs ~20x slower than the AVX2 one).
void Block(float* dx, const float* g, const float* x, int64_t len, float a, float b, bool code, double out[4]) {
  double ta[kLanes] = {}, tp[kLanes] = {}, tb[kLanes] = {}, tx[kLanes] = {};
  for (int64_t j = 0; j < len; j++) Step(dx ? dx + j : nullptr, g[j], x[j], a, b, code, static_cast<int>(j % kLanes), ta, tp, tb, tx);
  out[0] = LaneTotal(ta);
  out[1] = LaneTotal(tp);
  out[2] = LaneTotal(tb);
  out[3] = LaneTotal(tx);
}

#ifdef ONEBIT_ADABIN_AVX2
// Block with AVX2: 8 elements a round, the lanes of each sum two ymm of doubles (lanes 0-3 low,
// 4-7 high); the same operations per element as Step (float32 sub/div/mul, the float64 ApproxSign'
// product rounded once, exact float64 products, float64 adds in lane order), so the same bits.
// The block's tail (len mod 8) goes through Step on the lanes in memory.
// Elements 0-3 (h = 0) or 4-7 (h = 1) of t, widened to double.
__attribute__((target("avx2"))) inline __m256d HalfPd(__m256 t, int h) {
  return _mm256_cvtps_pd(h ? _mm256_extractf128_ps(t, 1) : _mm256_castps256_ps128(t));
}

__attribute__((target("avx2"))) void BlockAvx2(float* dx, const float* __restrict g, const float* __restrict x, int64_t len,
                                               float a, float b, bool code, double out[4]) {
  __m256d acc[8];  // ta lo/hi, tp lo/hi, tb lo/hi, tx lo/hi
  for (auto& v : acc) v = _mm256_setzero_pd();
  const __m256 va = _mm256_set1_ps(a), vb = _mm256_set1_ps(b), zf = _mm256_setzero_ps();
  const __m256 one = _mm256_set1_ps(1.f), mone = _mm256_set1_ps(-1.f), nan = _mm256_set1_ps(std::numeric_limits<float>::quiet_NaN());
  const __m256d two = _mm256_set1_pd(2.0), zd = _mm256_setzero_pd(), absMask = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7fffffffffffffffLL));
  int64_t j = 0;
  for (; j + kLanes <= len; j += kLanes) {
    const __m256 gv = _mm256_loadu_ps(g + j), num = _mm256_sub_ps(_mm256_loadu_ps(x + j), vb), v = _mm256_div_ps(num, va);
    const __m256 s = _mm256_blendv_ps(_mm256_blendv_ps(nan, mone, _mm256_cmp_ps(v, zf, _CMP_LT_OQ)), one, _mm256_cmp_ps(v, zf, _CMP_GE_OQ));
    const __m256 dBa = _mm256_mul_ps(gv, va);
    __m128 dvh[2];
    for (int h = 0; h < 2; h++) {
      const __m128 vh = h ? _mm256_extractf128_ps(v, 1) : _mm256_castps256_ps128(v);
      const __m128 bh = h ? _mm256_extractf128_ps(dBa, 1) : _mm256_castps256_ps128(dBa);
      const __m256d raw = _mm256_sub_pd(two, _mm256_mul_pd(two, _mm256_and_pd(_mm256_cvtps_pd(vh), absMask)));
      const __m256d d = _mm256_and_pd(_mm256_cmp_pd(raw, zd, _CMP_GT_OQ), raw);
      dvh[h] = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtps_pd(bh), d));
    }
    const __m256 dv = _mm256_set_m128(dvh[1], dvh[0]);
    const __m256 dxi = _mm256_div_ps(dv, va);
    if (dx) _mm256_storeu_ps(dx + j, dxi);
    const __m256 sa = code ? _mm256_add_ps(s, vb) : s, sb = code ? dBa : gv;
    for (int h = 0; h < 2; h++) {
      acc[0 + h] = _mm256_add_pd(acc[0 + h], _mm256_mul_pd(HalfPd(gv, h), HalfPd(sa, h)));
      acc[2 + h] = _mm256_add_pd(acc[2 + h], _mm256_mul_pd(HalfPd(dv, h), HalfPd(num, h)));
      acc[4 + h] = _mm256_add_pd(acc[4 + h], HalfPd(sb, h));
      acc[6 + h] = _mm256_add_pd(acc[6 + h], HalfPd(dxi, h));
    }
  }
  alignas(32) double l[4][kLanes];
  for (int q = 0; q < 4; q++) {
    _mm256_store_pd(l[q], acc[2 * q]);
    _mm256_store_pd(l[q] + 4, acc[2 * q + 1]);
  }
  for (int k = 0; j < len; j++, k++) Step(dx ? dx + j : nullptr, g[j], x[j], a, b, code, k, l[0], l[1], l[2], l[3]);
  for (int q = 0; q < 4; q++) out[q] = LaneTotal(l[q]);
}
#endif

Napi::Value AdabinActBackwardF32(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  float* dx = nullptr;
  double* sums;
  const float *g, *x;
  size_t ndx = 0, nsums, ng, nx;
  const bool wantDx = info.Length() > 0 && !info[0].IsNull() && !info[0].IsUndefined();
  if ((wantDx && !GetArray(info, 0, napi_float32_array, dx, ndx)) || !GetArray(info, 1, napi_float64_array, sums, nsums) ||
      !GetArray(info, 2, napi_float32_array, g, ng) || !GetArray(info, 3, napi_float32_array, x, nx)) {
    return env.Undefined();
  }
  if (ng != nx || (wantDx && ndx != nx) || nsums != 2) {
    return Fail(env, "adabinActBackwardF32: expected dx (or null), g and x of equal lengths and sums of 2");
  }
  if (info.Length() < 7 || !info[4].IsNumber() || !info[5].IsNumber()) return Fail(env, "adabinActBackwardF32: a and b must be numbers");
  const float a = static_cast<float>(info[4].As<Napi::Number>().DoubleValue());
  const float b = static_cast<float>(info[5].As<Napi::Number>().DoubleValue());
  const bool code = info[6].ToBoolean().Value();
  const int64_t n = static_cast<int64_t>(nx), blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> totals(static_cast<size_t>(4 * blocks));
#ifdef ONEBIT_ADABIN_AVX2
  // AVX2 on every CPU the addon's ISA selection (ONEBIT_ISA) allows above the portable variant.
  const bool avx2 = SelectedIsa() != Isa::kRef;
#endif
#pragma omp parallel for schedule(static) if (n >= kParallel)
  for (int64_t k = 0; k < blocks; k++) {
    const int64_t start = k * kBlock, len = n - start < kBlock ? n - start : kBlock;
#ifdef ONEBIT_ADABIN_AVX2
    if (avx2) BlockAvx2(dx ? dx + start : nullptr, g + start, x + start, len, a, b, code, &totals[4 * k]);
    else
#endif
      Block(dx ? dx + start : nullptr, g + start, x + start, len, a, b, code, &totals[4 * k]);
  }
  double t[4] = {0.0, 0.0, 0.0, 0.0};
  for (int64_t k = 0; k < blocks; k++)
    for (int s = 0; s < 4; s++) t[s] += totals[4 * k + s];
  const double da = t[0] - t[1] / (static_cast<double>(a) * static_cast<double>(a)), db = t[2] - t[3];
  sums[0] = da;
  sums[1] = db;
  return env.Undefined();
}

Napi::Value TwoValuesF32(const Napi::CallbackInfo& info) {
  const float* x;
  double* out;
  size_t nx, nout;
  if (!GetArray(info, 0, napi_float32_array, x, nx) || !GetArray(info, 1, napi_float64_array, out, nout)) return info.Env().Undefined();
  if (nout != 2) return Fail(info.Env(), "twoValuesF32: out must have 2 elements");
  const Napi::Boolean no = Napi::Boolean::New(info.Env(), false);
  const int64_t n = static_cast<int64_t>(nx);
  if (n == 0 || !std::isfinite(x[0])) return no;
  const float v0 = x[0];
  int64_t j = 1;
  while (j < n && x[j] == v0) j++;  // the first other value (usually within a few elements)
  if (j == n || !std::isfinite(x[j])) return no;
  const float v1 = x[j];
  int bad = 0;
#pragma omp parallel for schedule(static) reduction(| : bad) if (n >= kParallel)
  for (int64_t i = j + 1; i < n; i++) bad |= (x[i] != v0) & (x[i] != v1);
  if (bad) return no;
  out[0] = v0 < v1 ? v0 : v1;
  out[1] = v0 < v1 ? v1 : v0;
  return Napi::Boolean::New(info.Env(), true);
}

Napi::Value AffineCombineF32(const Napi::CallbackInfo& info) {
  float *out;
  const float* p;
  const double *f1, *f2, *c2;
  size_t nout, np, n1, n2, nc;
  if (!GetArray(info, 0, napi_float32_array, out, nout) || !GetArray(info, 1, napi_float32_array, p, np) ||
      !GetArray(info, 5, napi_float64_array, f1, n1) || !GetArray(info, 6, napi_float64_array, f2, n2) ||
      !GetArray(info, 7, napi_float64_array, c2, nc)) {
    return info.Env().Undefined();
  }
  const int64_t N = GetInt(info, 2), O = GetInt(info, 3), HW = GetInt(info, 4);
  if (N < 0 || O < 1 || HW < 1 || static_cast<int64_t>(nout) != N * O * HW || static_cast<int64_t>(np) != N * (O + 1) * HW ||
      static_cast<int64_t>(n1) != O || static_cast<int64_t>(n2) != O || static_cast<int64_t>(nc) != O * HW) {
    return Fail(info.Env(), "affineCombineF32: expected out [N·O·HW], p [N·(O+1)·HW], f1 and f2 [O], c2 [O·HW]");
  }
#pragma omp parallel for schedule(static) if (N * O * HW >= kParallel)
  for (int64_t r = 0; r < N * O; r++) {
    const int64_t n = r / O, o = r % O;
    const float* pr = p + (n * (O + 1) + o) * HW;
    const float* sr = p + (n * (O + 1) + O) * HW;
    const double* cr = c2 + o * HW;
    float* yr = out + r * HW;
    const double a = f1[o], b = f2[o];
    for (int64_t q = 0; q < HW; q++) yr[q] = static_cast<float>((a * static_cast<double>(pr[q]) + b * static_cast<double>(sr[q])) + cr[q]);
  }
  return info.Env().Undefined();
}

}  // namespace

void RegisterAdabinActKernels(Napi::Env env, Napi::Object exports) {
  exports.Set("adabinActF32", Napi::Function::New(env, AdabinActF32));
  exports.Set("adabinActBackwardF32", Napi::Function::New(env, AdabinActBackwardF32));
  exports.Set("twoValuesF32", Napi::Function::New(env, TwoValuesF32));
  exports.Set("affineCombineF32", Napi::Function::New(env, AffineCombineF32));
}

}  // namespace onebit
