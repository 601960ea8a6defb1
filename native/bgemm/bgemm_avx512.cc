// AVX-512 binary GEMM panel (contract in bgemm.h), lanes = 16: one zmm holds word w of 16
// columns; each A word is broadcast (folded into VPXORD as an {1to16} memory operand), XORed,
// counted per 32-bit lane with VPOPCNTD and added: 3 vector ops per 512 bits. A tile is R = 8 rows
// (8 accumulators stay in registers thanks to the unroll pragmas; without them g++ keeps them on
// the stack, 1.5x slower). Needs AVX-512 F + VPOPCNTDQ (checked by the select file). Panels are
// built by BgemmGatherAvx512 (masked VPGATHERDD, or one load for 16 consecutive words).
#include <immintrin.h>
#include "bgemm/bgemm.h"

namespace onebit {
namespace {

constexpr int kLanes = 16;
constexpr int kRows = 8;

// Rows m0 .. m0+R−1 of the block (a already points at row m0) against one panel; results to `out`.
template <int R>
__attribute__((target("avx512f,avx512vpopcntdq"), always_inline)) inline void Tile(const uint32_t* a, size_t lda,
                                                                                    const uint32_t* bblk, int kw,
                                                                                    int K, const BgemmOut& out, int m0,
                                                                                    __mmask16 store) {
  __m512i acc[R];
#pragma GCC unroll 16
  for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_si512();
#pragma GCC unroll 2
  for (int w = 0; w < kw; w++) {
    const __m512i b = _mm512_loadu_si512(bblk + w * kLanes);
#pragma GCC unroll 16
    for (int r = 0; r < R; r++) {
      const __m512i x = _mm512_xor_si512(b, _mm512_set1_epi32(static_cast<int>(a[r * lda + w])));
      acc[r] = _mm512_add_epi32(acc[r], _mm512_popcnt_epi32(x));
    }
  }
  const __m512i kv = _mm512_set1_epi32(K);
  const BgemmAct* act = out.act;
#pragma GCC unroll 16
  for (int r = 0; r < R; r++) {
    const int m = m0 + r;
    // K − 2·acc; the masked convert sidesteps a g++ 12 false -Wmaybe-uninitialized in the plain one.
    __m512 y = _mm512_maskz_cvtepi32_ps(store, _mm512_sub_epi32(_mm512_sub_epi32(kv, acc[r]), acc[r]));
    if (out.add) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(store, out.add + m * out.ldadd));
    if (out.scale) y = _mm512_mul_ps(y, _mm512_set1_ps(out.scale[m]));
    if (out.bias) y = _mm512_add_ps(y, _mm512_set1_ps(out.bias[m]));
    if (act) {
      if (act->res) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(store, act->res + m * act->ldres));
      if (act->neg) {
        y = _mm512_add_ps(y, _mm512_set1_ps(act->b0 ? act->b0[m] : 0.0f));
        const __mmask16 ge = _mm512_cmp_ps_mask(y, _mm512_setzero_ps(), _CMP_GE_OQ);  // NaN: false (neg), as u >= 0
        const __m512 slope = _mm512_mask_blend_ps(ge, _mm512_set1_ps(act->neg[m]), _mm512_set1_ps(act->pos ? act->pos[m] : 1.0f));
        y = _mm512_add_ps(_mm512_mul_ps(y, slope), _mm512_set1_ps(act->b1 ? act->b1[m] : 0.0f));
      }
    }
    _mm512_mask_storeu_ps(out.c + m * out.ldc, store, y);
  }
}

}  // namespace

__attribute__((target("avx512f,avx512vpopcntdq"))) void BgemmBlockAvx512(const uint32_t* a, size_t lda, int M,
                                                                         const uint32_t* bblk, int kw, int K,
                                                                         const BgemmOut& out, int nl) {
  const __mmask16 store = static_cast<__mmask16>((1u << nl) - 1u);
  int m = 0;
  for (; m + kRows <= M; m += kRows) Tile<kRows>(a + m * lda, lda, bblk, kw, K, out, m, store);
  const uint32_t* am = a + m * lda;
  switch (M - m) {
    case 7: Tile<7>(am, lda, bblk, kw, K, out, m, store); break;
    case 6: Tile<6>(am, lda, bblk, kw, K, out, m, store); break;
    case 5: Tile<5>(am, lda, bblk, kw, K, out, m, store); break;
    case 4: Tile<4>(am, lda, bblk, kw, K, out, m, store); break;
    case 3: Tile<3>(am, lda, bblk, kw, K, out, m, store); break;
    case 2: Tile<2>(am, lda, bblk, kw, K, out, m, store); break;
    case 1: Tile<1>(am, lda, bblk, kw, K, out, m, store); break;
    default: break;
  }
}

__attribute__((target("avx512f"))) void BgemmGatherAvx512(const uint32_t* src, const int32_t* lane_off,
                                                          const int32_t* word_off, int kw, int nl, uint32_t* bblk) {
  const __m512i idx = _mm512_loadu_si512(lane_off);
  const __mmask16 live = static_cast<__mmask16>((1u << nl) - 1u);
  const bool run = nl == kLanes && lane_off[kLanes - 1] - lane_off[0] == kLanes - 1;  // 16 consecutive words
  for (int w = 0; w < kw; w++) {
    const uint32_t* base = src + word_off[w];
    const __m512i v = run ? _mm512_loadu_si512(base + lane_off[0])
                          : _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), live, idx, base, 4);
    _mm512_storeu_si512(bblk + w * kLanes, v);
  }
}

}  // namespace onebit
