// Binary GEMM kernels (layouts in bgemm.h) and the binaryMatmul entry point (contract:
// Backend.binaryMatmul in src/core/backend.ts).
#include "bgemm.h"

#if OB_BGEMM_SIMD

// Store the 4 integer results d of row m, columns l0.. l0+4 (n of them valid).
OB_INLINE void store4(v128_t d, const ObBgemmOut* o, int32_t m, int32_t l0, int32_t n) {
  if (o->corr) d = wasm_i32x4_add(d, wasm_v128_load(o->corr + (size_t)m * o->ldcorr + l0));
  v128_t f = wasm_f32x4_convert_i32x4(d);
  if (o->scale) f = wasm_f32x4_mul(f, wasm_f32x4_splat(o->scale[m]));
  if (o->bias) f = wasm_f32x4_add(f, wasm_f32x4_splat(o->bias[m]));
  const size_t at = (size_t)m * o->ldy + l0;
  float* y = o->y + at;
  if (n >= 4) {
    if (o->res) f = wasm_f32x4_add(f, wasm_v128_load(o->res + at));
    wasm_v128_store(y, f);
  } else {
    float t[4];
    wasm_v128_store(t, f);
    if (o->res) {
      for (int32_t i = 0; i < n; i++) y[i] = t[i] + o->res[at + i];
    } else {
      for (int32_t i = 0; i < n; i++) y[i] = t[i];
    }
  }
}

// Byte accumulators → 32-bit lanes (u8 pairs → i16, then i16 pairs → i32 by a dot product with 1s:
// pmaddubsw + pmaddwd on x64, cheaper than the unsigned 16 → 32 pairwise add).
OB_INLINE v128_t widen(v128_t acc8) {
  return wasm_i32x4_dot_i16x8(wasm_u16x8_extadd_pairwise_u8x16(acc8), wasm_i16x8_splat(1));
}

#define OB_POP_ADD(acc, a, b) acc = wasm_i8x16_add(acc, wasm_i8x16_popcnt(wasm_v128_xor(a, b)))

// R rows (1..4) × 8 columns starting at column l0.
OB_INLINE void block(const uint32_t* a, int32_t R, const uint32_t* panel, int32_t kwp, int32_t K, const ObBgemmOut* o,
                     int32_t m0, int32_t l0, int32_t nl) {
  const uint32_t* a0 = a + (size_t)m0 * kwp;
  const uint32_t* a1 = a0 + (R > 1 ? kwp : 0);
  const uint32_t* a2 = a0 + (R > 2 ? 2 * kwp : 0);
  const uint32_t* a3 = a0 + (R > 3 ? 3 * kwp : 0);
  v128_t s00 = wasm_i32x4_splat(0), s01 = s00, s10 = s00, s11 = s00, s20 = s00, s21 = s00, s30 = s00, s31 = s00;
  for (int32_t w0 = 0; w0 < kwp; w0 += 31) {
    const int32_t we = OB_MIN(kwp, w0 + 31);
    v128_t c00 = wasm_i32x4_splat(0), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    const uint32_t* p = panel + (size_t)w0 * OB_PB + l0;
    for (int32_t w = w0; w < we; w++, p += OB_PB) {
      const v128_t b0 = wasm_v128_load(p), b1 = wasm_v128_load(p + 4);
      v128_t x = wasm_v128_load32_splat(a0 + w);
      OB_POP_ADD(c00, x, b0);
      OB_POP_ADD(c01, x, b1);
      if (R > 1) {
        x = wasm_v128_load32_splat(a1 + w);
        OB_POP_ADD(c10, x, b0);
        OB_POP_ADD(c11, x, b1);
      }
      if (R > 2) {
        x = wasm_v128_load32_splat(a2 + w);
        OB_POP_ADD(c20, x, b0);
        OB_POP_ADD(c21, x, b1);
      }
      if (R > 3) {
        x = wasm_v128_load32_splat(a3 + w);
        OB_POP_ADD(c30, x, b0);
        OB_POP_ADD(c31, x, b1);
      }
    }
    s00 = wasm_i32x4_add(s00, widen(c00));
    s01 = wasm_i32x4_add(s01, widen(c01));
    if (R > 1) s10 = wasm_i32x4_add(s10, widen(c10)), s11 = wasm_i32x4_add(s11, widen(c11));
    if (R > 2) s20 = wasm_i32x4_add(s20, widen(c20)), s21 = wasm_i32x4_add(s21, widen(c21));
    if (R > 3) s30 = wasm_i32x4_add(s30, widen(c30)), s31 = wasm_i32x4_add(s31, widen(c31));
  }
  const v128_t k = wasm_i32x4_splat(K);
  const int32_t n0 = nl - l0, n1 = nl - l0 - 4;
#define OB_STORE_ROW(r, sa, sb)                                                    \
  store4(wasm_i32x4_sub(k, wasm_i32x4_shl(sa, 1)), o, m0 + r, l0, n0);             \
  if (n1 > 0) store4(wasm_i32x4_sub(k, wasm_i32x4_shl(sb, 1)), o, m0 + r, l0 + 4, n1);
  OB_STORE_ROW(0, s00, s01)
  if (R > 1) { OB_STORE_ROW(1, s10, s11) }
  if (R > 2) { OB_STORE_ROW(2, s20, s21) }
  if (R > 3) { OB_STORE_ROW(3, s30, s31) }
#undef OB_STORE_ROW
}

void ob_bgemm_panel(const uint32_t* a, int32_t M, const uint32_t* panel, int32_t kwp, int32_t K, const ObBgemmOut* out,
                    int32_t nl) {
  for (int32_t l0 = 0; l0 < nl; l0 += 8) {
    int32_t m = 0;
    for (; m + 4 <= M; m += 4) block(a, 4, panel, kwp, K, out, m, l0, nl);
    switch (M - m) {
      case 3: block(a, 3, panel, kwp, K, out, m, l0, nl); break;
      case 2: block(a, 2, panel, kwp, K, out, m, l0, nl); break;
      case 1: block(a, 1, panel, kwp, K, out, m, l0, nl); break;
      default: break;
    }
  }
}

#else  // scalar: i64.popcnt

// Output transform of one value at row m, column l (see ObBgemmOut).
OB_INLINE float ob_bgemm_value(int32_t d, const ObBgemmOut* o, int32_t m, int32_t l) {
  float v = (float)d;
  if (o->scale) v = v * o->scale[m];
  if (o->bias) v = v + o->bias[m];
  if (o->res) v = v + o->res[(size_t)m * o->ldy + l];
  return v;
}

void ob_bgemm_panel(const uint32_t* a, int32_t M, const uint32_t* panel, int32_t kwp, int32_t K, const ObBgemmOut* out,
                    int32_t nl) {
  const int32_t q = kwp >> 1;  // 64-bit words per row
  for (int32_t l = 0; l < nl; l++) {
    const uint64_t* b = (const uint64_t*)(panel + (size_t)l * kwp);
    int32_t m = 0;
    for (; m + 4 <= M; m += 4) {
      const uint64_t* a0 = (const uint64_t*)(a + (size_t)m * kwp);
      const uint64_t *a1 = a0 + q, *a2 = a1 + q, *a3 = a2 + q;
      int32_t d0 = 0, d1 = 0, d2 = 0, d3 = 0;
      for (int32_t w = 0; w < q; w++) {
        const uint64_t x = b[w];
        d0 += __builtin_popcountll(a0[w] ^ x);
        d1 += __builtin_popcountll(a1[w] ^ x);
        d2 += __builtin_popcountll(a2[w] ^ x);
        d3 += __builtin_popcountll(a3[w] ^ x);
      }
      const int32_t* c = out->corr ? out->corr + (size_t)m * out->ldcorr + l : 0;
      float* y = out->y + (size_t)m * out->ldy + l;
      y[0] = ob_bgemm_value(K - 2 * d0 + (c ? c[0] : 0), out, m, l);
      y[out->ldy] = ob_bgemm_value(K - 2 * d1 + (c ? c[out->ldcorr] : 0), out, m + 1, l);
      y[2 * out->ldy] = ob_bgemm_value(K - 2 * d2 + (c ? c[2 * out->ldcorr] : 0), out, m + 2, l);
      y[3 * out->ldy] = ob_bgemm_value(K - 2 * d3 + (c ? c[3 * out->ldcorr] : 0), out, m + 3, l);
    }
    for (; m < M; m++) {
      const uint64_t* a0 = (const uint64_t*)(a + (size_t)m * kwp);
      int32_t d = 0;
      for (int32_t w = 0; w < q; w++) d += __builtin_popcountll(a0[w] ^ b[w]);
      const int32_t c = out->corr ? out->corr[(size_t)m * out->ldcorr + l] : 0;
      out->y[(size_t)m * out->ldy + l] = ob_bgemm_value(K - 2 * d + c, out, m, l);
    }
  }
}

#endif

// Scratch bytes ob_binary_matmul needs: A rows re-laid out when their length changes, one panel.
OB_EXPORT(ob_binary_matmul_scratch) int32_t ob_binary_matmul_scratch(int32_t m, int32_t k) {
  const int32_t words = (k + 31) >> 5, kwp = ob_bgemm_kwp(words);
  const size_t arows = kwp == words ? 0 : (size_t)m * kwp;
  return (int32_t)(4 * (ob_round_up(arows, 4) + (size_t)OB_PB * kwp));
}

// c [m, n] = k − 2·popcount(a_i XOR b_j) for packed rows a [m, words], b [n, words].
OB_EXPORT(ob_binary_matmul)
void ob_binary_matmul(const uint32_t* a, const uint32_t* b, int32_t m, int32_t n, int32_t k, float* c, uint32_t* scratch) {
  const int32_t words = (k + 31) >> 5, kwp = ob_bgemm_kwp(words);
  const uint32_t* A = a;
  if (kwp != words) {  // pad rows to kwp words (zeros cancel in the XOR)
    uint32_t* Ap = scratch;
    for (int32_t i = 0; i < m; i++) {
      for (int32_t w = 0; w < kwp; w++) Ap[(size_t)i * kwp + w] = w < words ? a[(size_t)i * words + w] : 0u;
    }
    A = Ap;
    scratch += ob_round_up((size_t)m * kwp, 4);
  }
  uint32_t* panel = scratch;
  for (int32_t j0 = 0; j0 < n; j0 += OB_PB) {
    const int32_t nl = OB_MIN(OB_PB, n - j0);
    for (int32_t l = 0; l < (OB_BGEMM_SIMD ? OB_PB : nl); l++) {
      const uint32_t* src = b + (size_t)(j0 + l) * words;
      for (int32_t w = 0; w < kwp; w++) *ob_panel_at(panel, kwp, w, l) = l < nl && w < words ? src[w] : 0u;
    }
    const ObBgemmOut out = {c + j0, n, 0, 0, 0, 0, 0};
    ob_bgemm_panel(A, m, panel, kwp, k, &out, nl);
  }
}
