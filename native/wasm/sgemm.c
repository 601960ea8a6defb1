// Float32 GEMM kernels (layout in sgemm.h) and the matmul entry point (contract: Backend.matmul in
// src/core/backend.ts).
#include "sgemm.h"

#ifdef __wasm_simd128__

// c[0..nl) = lo, hi (+ r[0..nl) when r is given).
OB_INLINE void store8(float* c, v128_t lo, v128_t hi, int32_t nl, const float* r) {
  if (nl == 8) {
    if (r) {
      lo = wasm_f32x4_add(lo, wasm_v128_load(r));
      hi = wasm_f32x4_add(hi, wasm_v128_load(r + 4));
    }
    wasm_v128_store(c, lo);
    wasm_v128_store(c + 4, hi);
  } else {
    float t[8];
    wasm_v128_store(t, lo);
    wasm_v128_store(t + 4, hi);
    if (r) {
      for (int32_t i = 0; i < nl; i++) c[i] = t[i] + r[i];
    } else {
      for (int32_t i = 0; i < nl; i++) c[i] = t[i];
    }
  }
}

#define OB_MAC(acc, a, b) acc = wasm_f32x4_add(acc, wasm_f32x4_mul(a, b))

// R rows (1..4) starting at row m0.
OB_INLINE void block(const float* A, int32_t lda, int32_t R, const float* Bp, int32_t K, float* C, int32_t ldc,
                     int32_t nl, const float* bias, const float* res, int32_t m0) {
  const float* a0 = A + (size_t)m0 * lda;
  const float* a1 = a0 + (R > 1 ? lda : 0);
  const float* a2 = a0 + (R > 2 ? 2 * lda : 0);
  const float* a3 = a0 + (R > 3 ? 3 * lda : 0);
  v128_t c00 = wasm_f32x4_splat(0.0f), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  for (int32_t k = 0; k < K; k++) {
    const v128_t b0 = wasm_v128_load(Bp + 8 * k), b1 = wasm_v128_load(Bp + 8 * k + 4);
    v128_t x = wasm_v128_load32_splat(a0 + k);
    OB_MAC(c00, x, b0);
    OB_MAC(c01, x, b1);
    if (R > 1) {
      x = wasm_v128_load32_splat(a1 + k);
      OB_MAC(c10, x, b0);
      OB_MAC(c11, x, b1);
    }
    if (R > 2) {
      x = wasm_v128_load32_splat(a2 + k);
      OB_MAC(c20, x, b0);
      OB_MAC(c21, x, b1);
    }
    if (R > 3) {
      x = wasm_v128_load32_splat(a3 + k);
      OB_MAC(c30, x, b0);
      OB_MAC(c31, x, b1);
    }
  }
#define OB_ROW(r, lo, hi)                                                              \
  {                                                                                    \
    v128_t l = lo, h = hi;                                                             \
    if (bias) {                                                                        \
      const v128_t bb = wasm_f32x4_splat(bias[m0 + r]);                                \
      l = wasm_f32x4_add(l, bb);                                                       \
      h = wasm_f32x4_add(h, bb);                                                       \
    }                                                                                  \
    store8(C + (size_t)(m0 + r) * ldc, l, h, nl, res ? res + (size_t)(m0 + r) * ldc : 0); \
  }
  OB_ROW(0, c00, c01)
  if (R > 1) OB_ROW(1, c10, c11)
  if (R > 2) OB_ROW(2, c20, c21)
  if (R > 3) OB_ROW(3, c30, c31)
#undef OB_ROW
}

void ob_sgemm_panel(const float* A, int32_t lda, int32_t M, const float* Bp, int32_t K, float* C, int32_t ldc,
                    int32_t nl, const float* bias, const float* res) {
  int32_t m = 0;
  for (; m + 4 <= M; m += 4) block(A, lda, 4, Bp, K, C, ldc, nl, bias, res, m);
  switch (M - m) {
    case 3: block(A, lda, 3, Bp, K, C, ldc, nl, bias, res, m); break;
    case 2: block(A, lda, 2, Bp, K, C, ldc, nl, bias, res, m); break;
    case 1: block(A, lda, 1, Bp, K, C, ldc, nl, bias, res, m); break;
    default: break;
  }
}

#else  // scalar: 2 rows × 8 columns

void ob_sgemm_panel(const float* A, int32_t lda, int32_t M, const float* Bp, int32_t K, float* C, int32_t ldc,
                    int32_t nl, const float* bias, const float* res) {
  int32_t m = 0;
  for (; m + 2 <= M; m += 2) {
    const float *a0 = A + (size_t)m * lda, *a1 = a0 + lda;
    float c0[8] = {0}, c1[8] = {0};
    for (int32_t k = 0; k < K; k++) {
      const float x0 = a0[k], x1 = a1[k];
      const float* b = Bp + 8 * k;
      for (int32_t l = 0; l < 8; l++) {
        c0[l] += x0 * b[l];
        c1[l] += x1 * b[l];
      }
    }
    const float s0 = bias ? bias[m] : 0.0f, s1 = bias ? bias[m + 1] : 0.0f;
    float *y0 = C + (size_t)m * ldc, *y1 = y0 + ldc;
    for (int32_t l = 0; l < nl; l++) {
      const float v0 = bias ? c0[l] + s0 : c0[l], v1 = bias ? c1[l] + s1 : c1[l];
      y0[l] = res ? v0 + res[(size_t)m * ldc + l] : v0;
      y1[l] = res ? v1 + res[(size_t)(m + 1) * ldc + l] : v1;
    }
  }
  for (; m < M; m++) {
    const float* a0 = A + (size_t)m * lda;
    float c0[8] = {0};
    for (int32_t k = 0; k < K; k++) {
      const float x0 = a0[k];
      for (int32_t l = 0; l < 8; l++) c0[l] += x0 * Bp[8 * k + l];
    }
    float* y0 = C + (size_t)m * ldc;
    for (int32_t l = 0; l < nl; l++) {
      const float v = bias ? c0[l] + bias[m] : c0[l];
      y0[l] = res ? v + res[(size_t)m * ldc + l] : v;
    }
  }
}

#endif

// Scratch bytes of ob_matmul: A transposed (transA), one B panel.
OB_EXPORT(ob_matmul_scratch) int32_t ob_matmul_scratch(int32_t m, int32_t k, int32_t transA) {
  return (int32_t)(4 * ((transA ? ob_round_up((size_t)m * k, 4) : 0) + (size_t)OB_NR * k));
}

// c [m, n] = op(a)·op(b); a is [m, k] ([k, m] if transA), b is [k, n] ([n, k] if transB).
OB_EXPORT(ob_matmul)
void ob_matmul(const float* a, const float* b, int32_t m, int32_t k, int32_t n, int32_t transA, int32_t transB, float* c,
               float* scratch) {
  const float* A = a;
  if (transA) {
    float* At = scratch;
    for (int32_t i = 0; i < m; i++) {
      for (int32_t p = 0; p < k; p++) At[(size_t)i * k + p] = a[(size_t)p * m + i];
    }
    A = At;
    scratch += ob_round_up((size_t)m * k, 4);
  }
  float* panel = scratch;
  for (int32_t j0 = 0; j0 < n; j0 += OB_NR) {
    const int32_t nl = OB_MIN(OB_NR, n - j0);
    for (int32_t p = 0; p < k; p++) {
      float* dst = panel + 8 * p;
      for (int32_t l = 0; l < 8; l++) {
        dst[l] = l >= nl ? 0.0f : transB ? b[(size_t)(j0 + l) * k + p] : b[(size_t)p * n + j0 + l];
      }
    }
    ob_sgemm_panel(A, k, m, panel, k, c + j0, n, nl, 0, 0);
  }
}
