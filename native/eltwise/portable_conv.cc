// The inference engine's fixed-order float conv, natively: the WebAssembly kernel's own C source
// (native/wasm/sgemm.c + conv2d.c: im2col panels of 8 output pixels, per output a float32 sum of
// products in (c, i, j) order, no FMA, then + bias, then + residual) compiled for x86. The same
// source and order give the same bits as the WebAssembly build, so a `.onebit` model predicts
// identically in Node and in the browser (a float conv feeding a binarization must round the same
// way on both, or a value at a threshold flips). g++ vectorizes the 8-lane loops of the scalar
// branch (8 floats per AVX2 register); an AVX2 clone is picked at run time when the CPU has it.
// Panels are independent work items, split over OpenMP threads for large convs.
#include <napi.h>
#include <omp.h>
#include <algorithm>
#include <vector>
#include "common.h"
#include "wasm/common.h"  // ObConvGeom and helpers, global (the includes below see it once)

#include <immintrin.h>

namespace onebit_pconv_avx2 {
#pragma GCC push_options
#pragma GCC target("avx2")
// The AVX2 panel GEMM: the same arithmetic as sgemm.c's (per output a float32 sum of w·x in k
// order — one multiply, then one add, no FMA — then + bias, then + residual), with 6 rows × 8
// pixels in registers instead of the scalar branch's 2 × 8 arrays. The order of every output's
// operations is unchanged, so the results are the same bits.
template <int R>
static inline void Rows(const float* A, int32_t lda, const float* Bp, int32_t K, float* C, int32_t ldc, int32_t nl,
                        const float* bias, const float* res) {
  __m256 acc[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_ps();
  for (int32_t k = 0; k < K; k++) {
    const __m256 b = _mm256_loadu_ps(Bp + 8 * k);
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) acc[r] = _mm256_add_ps(acc[r], _mm256_mul_ps(_mm256_set1_ps(A[(size_t)r * lda + k]), b));
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; r++) {
    if (bias) acc[r] = _mm256_add_ps(acc[r], _mm256_set1_ps(bias[r]));
    float* y = C + (size_t)r * ldc;
    if (nl == 8) {
      if (res) acc[r] = _mm256_add_ps(acc[r], _mm256_loadu_ps(res + (size_t)r * ldc));
      _mm256_storeu_ps(y, acc[r]);
    } else {
      float t[8];
      _mm256_storeu_ps(t, acc[r]);
      for (int32_t l = 0; l < nl; l++) y[l] = res ? t[l] + res[(size_t)r * ldc + l] : t[l];
    }
  }
}

void ob_sgemm_panel(const float* A, int32_t lda, int32_t M, const float* Bp, int32_t K, float* C, int32_t ldc,
                    int32_t nl, const float* bias, const float* res) {
  int32_t m = 0;
  for (; m + 6 <= M; m += 6) Rows<6>(A + (size_t)m * lda, lda, Bp, K, C + (size_t)m * ldc, ldc, nl, bias ? bias + m : nullptr, res ? res + (size_t)m * ldc : nullptr);
  const float* bm = bias ? bias + m : nullptr;
  const float* rm = res ? res + (size_t)m * ldc : nullptr;
  switch (M - m) {
    case 5: Rows<5>(A + (size_t)m * lda, lda, Bp, K, C + (size_t)m * ldc, ldc, nl, bm, rm); break;
    case 4: Rows<4>(A + (size_t)m * lda, lda, Bp, K, C + (size_t)m * ldc, ldc, nl, bm, rm); break;
    case 3: Rows<3>(A + (size_t)m * lda, lda, Bp, K, C + (size_t)m * ldc, ldc, nl, bm, rm); break;
    case 2: Rows<2>(A + (size_t)m * lda, lda, Bp, K, C + (size_t)m * ldc, ldc, nl, bm, rm); break;
    case 1: Rows<1>(A + (size_t)m * lda, lda, Bp, K, C + (size_t)m * ldc, ldc, nl, bm, rm); break;
    default: break;
  }
}
#include "wasm/conv2d.c"
#pragma GCC pop_options
}  // namespace onebit_pconv_avx2

namespace onebit_pconv_base {
#include "wasm/sgemm.c"
#include "wasm/conv2d.c"
}  // namespace onebit_pconv_base

namespace onebit {
namespace {

// portableConv2dF32(out, x, w, bias | null, residual | null, geom Int32Array[N, C, H, W, Cout, Cg, kh, kw, sh, sw, ph, pw, dh, dw, groups])
Napi::Value PortableConv2dF32(const Napi::CallbackInfo& info) {
  float *out, *x, *w;
  size_t nout, nx, nw;
  int32_t* gv;
  size_t ng;
  if (!GetArray(info, 0, napi_float32_array, out, nout) || !GetArray(info, 1, napi_float32_array, x, nx) ||
      !GetArray(info, 2, napi_float32_array, w, nw) || !GetArray(info, 5, napi_int32_array, gv, ng)) {
    return info.Env().Undefined();
  }
  if (ng != 15) return Fail(info.Env(), "portableConv2dF32: geom must have 15 entries");
  const int32_t n = gv[0];
  ObConvGeom g{gv[1], gv[2], gv[3], gv[4], gv[5], gv[6], gv[7], gv[8], gv[9], gv[10], gv[11], gv[12], gv[13], gv[14]};
  if (n < 0 || g.C < 1 || g.H < 1 || g.W < 1 || g.Cout < 1 || g.groups < 1 || g.C % g.groups || g.Cout % g.groups || g.Cg != g.C / g.groups ||
      g.kh < 1 || g.kw < 1 || g.sh < 1 || g.sw < 1 || g.dh < 1 || g.dw < 1 || g.ph < 0 || g.pw < 0) {
    return Fail(info.Env(), "portableConv2dF32: invalid geometry");
  }
  const int64_t Ho = ob_ho(&g), Wo = ob_wo(&g), K = int64_t{g.Cg} * g.kh * g.kw;
  if (Ho < 1 || Wo < 1) return Fail(info.Env(), "portableConv2dF32: the kernel does not fit the padded input");
  if (nx != static_cast<size_t>(int64_t{n} * g.C * g.H * g.W) || nw != static_cast<size_t>(g.Cout * K) ||
      nout != static_cast<size_t>(int64_t{n} * g.Cout * Ho * Wo)) {
    return Fail(info.Env(), "portableConv2dF32: array lengths do not match the geometry");
  }
  const float* opt[2] = {nullptr, nullptr};
  for (int k = 0; k < 2; k++) {
    const size_t i = 3 + k;
    if (info[i].IsNull() || info[i].IsUndefined()) continue;
    float* p;
    size_t len;
    if (!GetArray(info, i, napi_float32_array, p, len)) return info.Env().Undefined();
    if (len != (k == 0 ? static_cast<size_t>(g.Cout) : nout)) return Fail(info.Env(), "portableConv2dF32: wrong length of bias or residual");
    opt[k] = p;
  }
  const bool avx2 = __builtin_cpu_supports("avx2");
  const int32_t items = onebit_pconv_base::ob_conv_items(&g, n);
  const int64_t macs = int64_t{n} * g.Cout * Ho * Wo * K;
  const int threads = macs >= (int64_t{1} << 21) ? std::max(1, std::min(omp_get_max_threads(), static_cast<int>(items))) : 1;
  const size_t scratch = static_cast<size_t>(onebit_pconv_base::ob_conv_scratch(&g)) / sizeof(float);
  std::vector<float> buf(scratch * threads + 16);
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int32_t begin = static_cast<int32_t>(int64_t{items} * t / nt), end = static_cast<int32_t>(int64_t{items} * (t + 1) / nt);
    float* s = buf.data() + scratch * t;
    if (avx2) onebit_pconv_avx2::ob_conv_run(&g, x, w, opt[0], opt[1], out, s, begin, end);
    else onebit_pconv_base::ob_conv_run(&g, x, w, opt[0], opt[1], out, s, begin, end);
  }
  return info.Env().Undefined();
}

}  // namespace

void RegisterPortableConv(Napi::Env env, Napi::Object exports) {
  exports.Set("portableConv2dF32", Napi::Function::New(env, PortableConv2dF32));
}

}  // namespace onebit
