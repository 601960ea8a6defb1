// Binary GEMM core shared by binaryMatmul (bgemm.c) and the prepared binary conv (bconv.c).
//
// out[m, l] = K − 2·popcount(a_m XOR b_l) over packed rows (bit 1 = −1, LSB first, tail bits 0 in
// both operands so they cancel in the XOR): the ±1 dot product of two K-bit rows.
//
// The B operand is consumed a panel of OB_PB columns (output pixels) at a time, built by the
// caller into scratch (bit-im2col for the conv, a copy of b rows for the matmul) in the layout of
// the build's kernel:
//   SIMD  (OB_BGEMM_SIMD = 1): word-major [kwp][OB_PB], pixels in the 4 lanes of a vector; each
//         A word is broadcast against 8 pixels; popcounts with i8x16.popcnt into byte
//         accumulators (widened every 31 words, before a byte can overflow).
//   scalar (OB_BGEMM_SIMD = 0): pixel-major [OB_PB][kwp], kwp even; i64.popcnt over 64-bit
//         words, 4 rows of A per pass over a pixel's words.
// A rows are [M][kwp] words (kwp = ob_bgemm_kwp(words)); words beyond the K bits are 0.
// Measured in Node 20 (V8, x64 AVX2) on the ResNet-20 convs (K = 144, 288, 576 bits, M = 16..64,
// P = 64..1024): the SIMD kernel is 1.3-2x faster than i64.popcnt in the same SIMD build
// (compile with -DOB_BGEMM_SIMD=0 and pass it to bench/wasm_kernels.ts --extra to re-measure).
#pragma once
#include "common.h"

#ifndef OB_BGEMM_SIMD
#ifdef __wasm_simd128__
#define OB_BGEMM_SIMD 1
#else
#define OB_BGEMM_SIMD 0
#endif
#endif

#define OB_PB 64  // columns (pixels) per B panel

// Row length in words of the packed operands for `words` 32-bit words of data.
OB_INLINE int32_t ob_bgemm_kwp(int32_t words) { return OB_BGEMM_SIMD ? words : (words + 1) & ~1; }

// Address of word w of panel column l.
OB_INLINE uint32_t* ob_panel_at(uint32_t* panel, int32_t kwp, int32_t w, int32_t l) {
  return OB_BGEMM_SIMD ? panel + (size_t)w * OB_PB + l : panel + (size_t)l * kwp + w;
}

// Where a panel's results go: row m, column l → y[m·ldy + l] = (K − 2·pop + corr[m·ldcorr + l])
// as float32, then ·scale[m] when scale is given, then + bias[m] when bias is given, then
// + res[m·ldy + l] when res is given (a residual laid out like y; each step one float32 operation,
// never fused; as native/bgemm, so a scale-only −0 stays −0). corr (exact integer border
// corrections of the conv) may be null; when set it must be readable for 8 columns past the last
// one used (the SIMD kernel reads whole vectors).
typedef struct {
  float* y;
  int32_t ldy;
  const int32_t* corr;
  int32_t ldcorr;
  const float* scale;
  const float* bias;
  const float* res;
} ObBgemmOut;

// One panel: rows m < M of A against the nl ≤ OB_PB columns of the panel.
void ob_bgemm_panel(const uint32_t* a, int32_t M, const uint32_t* panel, int32_t kwp, int32_t K, const ObBgemmOut* out,
                    int32_t nl);
