// Scalar reference of the sign + bit-pack kernel (convention in bitpack.h).
#include "bitpack/bitpack.h"

namespace onebit {

void BitpackRef(const float* x, int64_t rows, int64_t k, uint32_t* out) {
  const int64_t words = WordsFor(k);
  for (int64_t r = 0; r < rows; r++) {
    const float* src = x + r * k;
    uint32_t* dst = out + r * words;
    for (int64_t w = 0; w < words; w++) {
      const int64_t n = k - 32 * w < 32 ? k - 32 * w : 32;
      uint32_t bits = 0;
      for (int64_t j = 0; j < n; j++) bits |= static_cast<uint32_t>(src[32 * w + j] < 0.0f) << j;
      dst[w] = bits;
    }
  }
}

}  // namespace onebit
