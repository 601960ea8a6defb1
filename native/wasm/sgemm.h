// Float32 GEMM core shared by matmul (sgemm.c) and the float conv (conv2d.c).
//
// C[m, l] = Σ_k A[m·lda + k]·Bp[k·8 + l] (+ bias[m]) (+ R[m·ldc + l]) for m < M, l < nl ≤ 8: one panel of 8 columns
// of B, packed k-major by the caller (im2col for the conv). Each element is one float32 sum in
// k order (0, 1, …, K−1) with no fused multiply-add, then + bias, then + the residual R (laid out
// like C; may be null, as may bias): the SIMD and scalar builds give
// identical results. SIMD: 4 rows × 8 columns of f32x4 accumulators, A broadcast.
#pragma once
#include "common.h"

#define OB_NR 8  // columns per B panel

void ob_sgemm_panel(const float* A, int32_t lda, int32_t M, const float* Bp, int32_t K, float* C, int32_t ldc,
                    int32_t nl, const float* bias, const float* R);
