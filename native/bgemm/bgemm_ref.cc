// Scalar reference of the binary GEMM panel (contract in bgemm.h), lanes = 1: the panel is one
// packed b row, so c[m * ldc] = K − 2·popcount(a_m XOR b) (+ add) for every row m. Pairs of 32-bit words
// are read as one 64-bit word (on little-endian, words w and w+1 are its low and high halves, so
// the bit order does not matter to a popcount); an odd last word is counted on its own.
#include <cstring>
#include "bgemm/bgemm.h"

// popcnt instruction where the CPU has it (ifunc clone), the portable builtin otherwise.
#if defined(__x86_64__) && defined(__linux__) && !defined(__clang__)
#define ONEBIT_POPCNT_CLONES __attribute__((target_clones("popcnt", "default")))
#else
#define ONEBIT_POPCNT_CLONES
#endif

namespace onebit {

ONEBIT_POPCNT_CLONES
void BgemmBlockRef(const uint32_t* a, size_t lda, int M, const uint32_t* bblk, int kw, int K, const BgemmOut& out,
                   int nl) {
  (void)nl;  // always 1
  const int pairs = kw / 2;
  for (int m = 0; m < M; m++) {
    const uint32_t* row = a + m * lda;
    int64_t diff = 0;
    for (int p = 0; p < pairs; p++) {
      uint64_t x, y;
      std::memcpy(&x, row + 2 * p, 8);
      std::memcpy(&y, bblk + 2 * p, 8);
      diff += __builtin_popcountll(x ^ y);
    }
    if (kw & 1) diff += __builtin_popcount(row[kw - 1] ^ bblk[kw - 1]);
    float y = static_cast<float>(K - 2 * diff);
    if (out.add) y = y + out.add[m * out.ldadd];
    if (out.scale) y = y * out.scale[m];
    if (out.bias) y = y + out.bias[m];
    if (const BgemmAct* act = out.act) {
      if (act->res) y = y + act->res[m * act->ldres];
      if (act->neg) {
        const float u = y + (act->b0 ? act->b0[m] : 0.0f);
        y = u * (u >= 0.0f ? (act->pos ? act->pos[m] : 1.0f) : act->neg[m]) + (act->b1 ? act->b1[m] : 0.0f);
      }
    }
    out.c[m * out.ldc] = y;
  }
}

void BgemmGatherRef(const uint32_t* src, const int32_t* lane_off, const int32_t* word_off, int kw, int nl,
                    uint32_t* bblk) {
  for (int w = 0; w < kw; w++) bblk[w] = nl > 0 ? src[lane_off[0] + word_off[w]] : 0u;
}

}  // namespace onebit
