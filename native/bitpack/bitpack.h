// Sign + bit-pack of float rows (the contract's packed format, see core/backend.ts):
// bit 1 = −1 (x < 0; 0, −0 and NaN count as +1), 32 values per 32-bit word, LSB first, each row
// padded to whole words with 0 bits. bitpack_ref.cc is the scalar reference; bitpack_select.cc
// holds the AVX2 / AVX-512 variants and picks one at run time.
#pragma once
#include <cstdint>
#include "common.h"

// Per-function clones for the plain loops that g++ vectorizes well on its own (packing, im2col):
// the ifunc resolver picks the widest the CPU has at load time. Linux/x86-64 only (ifunc).
#if defined(__x86_64__) && defined(__linux__) && !defined(__clang__)
#define ONEBIT_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define ONEBIT_CLONES
#endif

namespace onebit {

// Words per packed row of k bits.
inline int64_t WordsFor(int64_t k) { return (k + 31) / 32; }

// out[r * WordsFor(k) + j / 32] bit j % 32 = x[r * k + j] < 0, for r < rows, j < k.
void BitpackRef(const float* x, int64_t rows, int64_t k, uint32_t* out);

// The same with the variant `isa`, which the CPU must support (SelectedIsa() only returns such).
void Bitpack(Isa isa, const float* x, int64_t rows, int64_t k, uint32_t* out);

}  // namespace onebit
