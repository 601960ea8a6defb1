// Sign + bit-pack (contract: Backend.bitpack in src/core/backend.ts). Bit j of a row is 1 when
// x[j] < 0 (−1) and 0 otherwise (+1; 0, −0 and NaN count as +1), packed LSB-first into 32-bit
// words, row by row; the tail bits of a row's last word are 0.
#include "common.h"

// The bits of src[0..32): bit j = src[j] < 0.
OB_INLINE uint32_t pack32(const float* src) {
#ifdef __wasm_simd128__
  const v128_t z = wasm_f32x4_splat(0.0f);
  uint32_t bits = 0;
  for (int q = 0; q < 8; q++) bits |= (uint32_t)wasm_i32x4_bitmask(wasm_f32x4_lt(wasm_v128_load(src + 4 * q), z)) << (4 * q);
  return bits;
#else
  uint32_t bits = 0;
  for (int j = 0; j < 32; j++) bits |= (uint32_t)(src[j] < 0.0f) << j;
  return bits;
#endif
}

// out [rows, ceil(k/32)] = the packed signs of x [rows, k].
OB_EXPORT(ob_bitpack) void ob_bitpack(const float* x, int32_t rows, int32_t k, uint32_t* out) {
  const int32_t words = (k + 31) >> 5, full = k >> 5;
  for (int32_t r = 0; r < rows; r++) {
    const float* src = x + (size_t)r * k;
    uint32_t* dst = out + (size_t)r * words;
    for (int32_t w = 0; w < full; w++) dst[w] = pack32(src + 32 * w);
    if (full < words) {
      uint32_t bits = 0;
      for (int32_t j = 32 * full; j < k; j++) bits |= (uint32_t)(src[j] < 0.0f) << (j & 31);
      dst[full] = bits;
    }
  }
}
