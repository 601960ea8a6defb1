// Sign + bit-pack, fast variants and the choice between them (convention in bitpack.h).
//
// Rule: the variant SelectedIsa() names (the same choice as the binary GEMM, see
// bgemm_select.cc; ONEBIT_ISA forces a lower one): avx512 packs a 32-bit word with two 16-float
// compares into masks, avx2 with four 8-float compares + movemask, ref bit by bit. Each vector
// variant packs the whole words of a row and hands the row's tail (k % 32 values) to the
// reference loop. Compares are x < 0 (ordered), so −0 and NaN give 0 bits like the reference.
// Rows are split over OpenMP threads only above ~4 M values: packing is memory-bound and a
// fork/join costs ~5-10 µs.
#include <immintrin.h>
#include <omp.h>
#include "bitpack/bitpack.h"

namespace onebit {
namespace {

__attribute__((target("avx2"))) void RowAvx2(const float* src, int64_t k, uint32_t* dst) {
  const __m256 zero = _mm256_setzero_ps();
  const int64_t full = k / 32;
  for (int64_t w = 0; w < full; w++) {
    const float* p = src + 32 * w;
    uint32_t bits = 0;
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++) {
      const __m256 lt = _mm256_cmp_ps(_mm256_loadu_ps(p + 8 * q), zero, _CMP_LT_OQ);
      bits |= static_cast<uint32_t>(_mm256_movemask_ps(lt)) << (8 * q);
    }
    dst[w] = bits;
  }
  if (k % 32) BitpackRef(src + 32 * full, 1, k % 32, dst + full);
}

__attribute__((target("avx512f"))) void RowAvx512(const float* src, int64_t k, uint32_t* dst) {
  const __m512 zero = _mm512_setzero_ps();
  const int64_t full = k / 32;
  for (int64_t w = 0; w < full; w++) {
    const float* p = src + 32 * w;
    const uint32_t lo = _mm512_cmp_ps_mask(_mm512_loadu_ps(p), zero, _CMP_LT_OQ);
    const uint32_t hi = _mm512_cmp_ps_mask(_mm512_loadu_ps(p + 16), zero, _CMP_LT_OQ);
    dst[w] = lo | (hi << 16);
  }
  if (k % 32) BitpackRef(src + 32 * full, 1, k % 32, dst + full);
}

void RowRef(const float* src, int64_t k, uint32_t* dst) { BitpackRef(src, 1, k, dst); }

}  // namespace

void Bitpack(Isa isa, const float* x, int64_t rows, int64_t k, uint32_t* out) {
  using RowFn = void (*)(const float*, int64_t, uint32_t*);
  // Indexed by Isa: kRef, kAvx2, kAvx512. SelectedIsa() only returns what the CPU supports.
  static constexpr RowFn kRows[] = {RowRef, RowAvx2, RowAvx512};
  const RowFn row = kRows[static_cast<int>(isa)];
  const int64_t words = WordsFor(k);
  const int threads = rows * k >= (int64_t{1} << 22) ? omp_get_max_threads() : 1;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
  for (int64_t r = 0; r < rows; r++) row(x + r * k, k, out + r * words);
}

}  // namespace onebit
