// N-API binding of the backward of the per-channel activation the ReActNet / AdaBin blocks train
// with (PReLU, RPReLU, Maxout in one op; src/ops/channel_act.ts). Its forward is channelActF32
// (eltwise.cc). Results equal the TypeScript reference (src/backends/ref/channel_act.ts) exactly:
// the same float32 steps for dx and the same float64 lane order for the parameter sums.
//
//   channelActBackwardF32(dx, dparams, g, x, n, C, inner, b0, pos, neg)
//     x, g, dx: [n, C, inner];  b0, pos: C elements or null (0 / 1);  neg: C elements.
//     u = fl32(x + b0[c]);  dx = fl32(g · (u >= 0 ? pos[c] : neg[c]))
//     dparams (4·C): db0 = Σ dx | dpos = Σ_{u>=0} g·u | dneg = Σ_{u<0} g·u | db1 = Σ g, per channel,
//     each accumulated in float64 over kLanes lanes (element j of every row (b, c) into lane
//     j mod kLanes, rows in order b), lanes added pairwise, rounded once.
//
// The AVX2 variant runs unless the addon's ISA selection is the portable one (ONEBIT_ISA=ref).
// Channels are split over the OpenMP threads (each channel's sums are one thread's), so the result
// does not depend on the thread count.
#include <cstdint>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define ONEBIT_ACT_GRAD_AVX2 1
#endif

#include "common.h"

namespace onebit {
namespace {

constexpr int kLanes = 8;            // SUM_LANES in ref/channel_act.ts
constexpr int64_t kParallel = 1 << 18;  // ~256k elements, as eltwise.cc

inline double LaneTotal(const double* l) {
  return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

// One element: writes dx and adds its four terms to lane k of the sums (db0 | dpos | dneg | db1).
inline void Step(double (&l)[4][kLanes], int k, float* d, float xv, float gi, float s0, float p, float q) {
  const float u = xv + s0;
  const bool nonneg = u >= 0.f;
  const float dv = gi * (nonneg ? p : q);
  *d = dv;
  const double gu = static_cast<double>(gi) * static_cast<double>(u);
  l[0][k] += dv;
  l[1][k] += nonneg ? gu : 0.0;
  l[2][k] += nonneg ? 0.0 : gu;
  l[3][k] += gi;
}

// The sums of one channel over its n rows, element by element (the portable path).
void Channel(float* dx, const float* g, const float* x, int64_t n, int64_t stride, int64_t len, float s0, float p, float q,
             double out[4]) {
  double l[4][kLanes] = {};
  for (int64_t b = 0; b < n; b++) {
    for (int64_t j = 0; j < len; j++) Step(l, static_cast<int>(j % kLanes), dx + b * stride + j, x[b * stride + j], g[b * stride + j], s0, p, q);
  }
  for (int s = 0; s < 4; s++) out[s] = LaneTotal(l[s]);
}

#ifdef ONEBIT_ACT_GRAD_AVX2
// Channel with AVX2: the 8 lanes are two ymm of doubles per sum (lanes 0-3 low, 4-7 high), the
// same operations per element as the scalar code (compare, select, float32 multiply, exact float64
// product, float64 adds in lane order), so the same bits. A row's tail (len mod 8) goes through
// the lanes in memory, in order.
__attribute__((target("avx2"))) void ChannelAvx2(float* __restrict dx, const float* __restrict g, const float* __restrict x,
                                                 int64_t n, int64_t stride, int64_t len, float s0, float p, float q, double out[4]) {
  __m256d acc[8];  // a0 lo/hi, ap lo/hi, an lo/hi, a1 lo/hi
  for (auto& a : acc) a = _mm256_setzero_pd();
  const __m256 vs0 = _mm256_set1_ps(s0), vp = _mm256_set1_ps(p), vq = _mm256_set1_ps(q), zf = _mm256_setzero_ps();
  const __m256d zd = _mm256_setzero_pd();
  for (int64_t b = 0; b < n; b++) {
    float* __restrict d = dx + b * stride;
    const float* __restrict gr = g + b * stride;
    const float* __restrict xr = x + b * stride;
    int64_t j = 0;
    for (; j + kLanes <= len; j += kLanes) {
      const __m256 u = _mm256_add_ps(_mm256_loadu_ps(xr + j), vs0), gv = _mm256_loadu_ps(gr + j);
      const __m256 m = _mm256_cmp_ps(u, zf, _CMP_GE_OQ);
      const __m256 dv = _mm256_mul_ps(gv, _mm256_blendv_ps(vq, vp, m));
      _mm256_storeu_ps(d + j, dv);
      for (int h = 0; h < 2; h++) {
        const __m128 dh = h ? _mm256_extractf128_ps(dv, 1) : _mm256_castps256_ps128(dv);
        const __m128 uh = h ? _mm256_extractf128_ps(u, 1) : _mm256_castps256_ps128(u);
        const __m128 gh = h ? _mm256_extractf128_ps(gv, 1) : _mm256_castps256_ps128(gv);
        const __m256d ud = _mm256_cvtps_pd(uh), gd = _mm256_cvtps_pd(gh);
        const __m256d gu = _mm256_mul_pd(gd, ud), md = _mm256_cmp_pd(ud, zd, _CMP_GE_OQ);
        acc[0 + h] = _mm256_add_pd(acc[0 + h], _mm256_cvtps_pd(dh));
        acc[2 + h] = _mm256_add_pd(acc[2 + h], _mm256_and_pd(md, gu));
        acc[4 + h] = _mm256_add_pd(acc[4 + h], _mm256_andnot_pd(md, gu));
        acc[6 + h] = _mm256_add_pd(acc[6 + h], gd);
      }
    }
    if (j < len) {
      alignas(32) double l[4][kLanes];
      for (int s = 0; s < 4; s++) {
        _mm256_store_pd(l[s], acc[2 * s]);
        _mm256_store_pd(l[s] + 4, acc[2 * s + 1]);
      }
      for (int k = 0; j < len; j++, k++) Step(l, k, d + j, xr[j], gr[j], s0, p, q);
      for (int s = 0; s < 4; s++) {
        acc[2 * s] = _mm256_load_pd(l[s]);
        acc[2 * s + 1] = _mm256_load_pd(l[s] + 4);
      }
    }
  }
  alignas(32) double l[kLanes];
  for (int s = 0; s < 4; s++) {
    _mm256_store_pd(l, acc[2 * s]);
    _mm256_store_pd(l + 4, acc[2 * s + 1]);
    out[s] = LaneTotal(l);
  }
}

#endif

Napi::Value ChannelActBackwardF32(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  float *dx, *dp;
  const float *g, *x;
  size_t ndx, ndp, ng, nx;
  if (!GetArray(info, 0, napi_float32_array, dx, ndx) || !GetArray(info, 1, napi_float32_array, dp, ndp) ||
      !GetArray(info, 2, napi_float32_array, g, ng) || !GetArray(info, 3, napi_float32_array, x, nx)) {
    return env.Undefined();
  }
  const int64_t n = GetInt(info, 4), C = GetInt(info, 5), inner = GetInt(info, 6);
  if (n < 0 || C < 1 || inner < 1 || n * C * inner != static_cast<int64_t>(nx) || ndx != nx || ng != nx ||
      static_cast<int64_t>(ndp) != 4 * C) {
    return Fail(env, "channelActBackwardF32: expected dx, g, x of n·C·inner elements and dparams of 4·C");
  }
  const float* opt[3] = {nullptr, nullptr, nullptr};  // b0, pos, neg
  for (int k = 0; k < 3; k++) {
    const size_t i = 7 + k;
    if (info.Length() <= i || info[i].IsNull() || info[i].IsUndefined()) {
      if (k == 2) return Fail(env, "channelActBackwardF32: neg is required");
      continue;
    }
    size_t len;
    if (!GetArray(info, i, napi_float32_array, opt[k], len)) return env.Undefined();
    if (static_cast<int64_t>(len) != C) return Fail(env, "channelActBackwardF32: b0, pos and neg must have C elements");
  }
  const float *b0 = opt[0], *pos = opt[1], *neg = opt[2];
#ifdef ONEBIT_ACT_GRAD_AVX2
  // AVX2 on every CPU the addon's ISA selection (ONEBIT_ISA) allows above the portable variant.
  const bool avx2 = SelectedIsa() != Isa::kRef;
#endif
#pragma omp parallel for schedule(static) if (static_cast<int64_t>(nx) >= kParallel)
  for (int64_t c = 0; c < C; c++) {
    const float s0 = b0 ? b0[c] : 0.f, p = pos ? pos[c] : 1.f, q = neg[c];
    double t[4];
#ifdef ONEBIT_ACT_GRAD_AVX2
    if (avx2) ChannelAvx2(dx + c * inner, g + c * inner, x + c * inner, n, C * inner, inner, s0, p, q, t);
    else
#endif
      Channel(dx + c * inner, g + c * inner, x + c * inner, n, C * inner, inner, s0, p, q, t);
    for (int k = 0; k < 4; k++) dp[k * C + c] = static_cast<float>(t[k]);
  }
  return env.Undefined();
}

}  // namespace

void RegisterActGradKernels(Napi::Env env, Napi::Object exports) {
  exports.Set("channelActBackwardF32", Napi::Function::New(env, ChannelActBackwardF32));
}

}  // namespace onebit
