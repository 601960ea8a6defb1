// Binary GEMM: C[m, n] = K − 2·popcount(a_m XOR b_n) over packed rows (bit 1 = −1, 32 bits per
// 32-bit word, LSB first, tail bits 0: see core/backend.ts and bitpack/bitpack.h). Every
// differing bit is a (−1)·(+1) product, every equal bit a +1, so the ±1 dot product of two K-bit
// rows is (K − d) − d with d = popcount(a XOR b). Zero tail bits cancel in the XOR.
//
// Layout. C is row-major [M, N] (output channels × pixels for a convolution: NCHW), so the fast
// variants put N in the vector lanes: the engine study's winning layout (output channels in
// lanes, NHWC output) mirrored to this output order, with contiguous C stores and A (the
// weights) broadcast from cache. B is consumed in blocks of `lanes` columns stored word-major,
// Bblk[w * lanes + l] = word w of column n0 + l (a "panel"; AVX2 keeps each panel word as two
// nibble-split vectors, [kw][2][lanes]: see `split`), and each word of an A row is broadcast
// against a panel word. One tile = R rows of A × `lanes` columns, R accumulators; a C row
// segment of `lanes` floats is stored contiguously. Each panel is gathered into a per-thread L1
// scratch, by the variant's gather: from the row-major b (binaryMatmul) or from the conv's bit
// planes (bit-im2col).
// Variants (one file each): bgemm_ref.cc (scalar popcount64, lanes = 1: the panel is a b row),
// bgemm_avx2.cc (Mula nibble-LUT popcount on nibble-split words, lanes = 8), bgemm_avx512.cc
// (VPOPCNTDQ, lanes = 16).
// bgemm_select.cc picks one and drives the blocks over OpenMP threads.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include "common.h"

namespace onebit {

// An elementwise tail after the affine map (the inference engine's fused add and channel_act), per
// element of row m in float32, each step rounded, no contraction: y = y + res[m * ldres + l] when
// res is set; then, when neg is set, u = y + b0[m], y = u · (u >= 0 ? pos[m] : neg[m]) + b1[m]
// (absent b0 / b1: 0, absent pos: 1) — native/eltwise's channelActF32, step for step.
struct BgemmAct {
  const float* res;  // may be null
  size_t ldres;
  const float *b0, *pos, *neg, *b1;  // [M] or null; no activation without neg
};

// Where a panel's results go: row m, column l of the panel is c[m * ldc + l], plus
// add[m * ldadd + l] when `add` is set (the conv's exact border correction, applied in registers
// before the store instead of a read-modify-write pass over y), then times scale[m] when `scale`
// is set, then plus bias[m] when `bias` is set (the inference engine's per-channel affine map:
// float32 multiply, then float32 add, never contracted into an FMA), then the `act` tail when set.
struct BgemmOut {
  float* c;
  size_t ldc;
  const float* add;  // may be null
  size_t ldadd;
  const float* scale = nullptr;  // [M] or null
  const float* bias = nullptr;   // [M] or null
  const BgemmAct* act = nullptr;  // or null
};

// One panel: out row m, column l = K − 2·Σ_{w < kw} popcount(a[m * lda + w] ^ bblk[w * lanes + l])
// (+ add, · scale, + bias) for m < M, l < nl (nl ≤ lanes; the panel still holds `lanes` columns, the extra ones
// unread or ignored). a rows, c and add may be unaligned (JS memory). For a variant with
// split = 2, a and bblk are in the nibble-split layout made by SplitRows / the variant's gather
// (each word w stored as the pair w & 0x0f0f0f0f, (w >> 4) & 0x0f0f0f0f; lda counts those words).
using BgemmBlockFn = void (*)(const uint32_t* a, size_t lda, int M, const uint32_t* bblk, int kw, int K,
                              const BgemmOut& out, int nl);

void BgemmBlockRef(const uint32_t* a, size_t lda, int M, const uint32_t* bblk, int kw, int K, const BgemmOut& out,
                   int nl);
void BgemmBlockAvx2(const uint32_t* a, size_t lda, int M, const uint32_t* bblk, int kw, int K, const BgemmOut& out,
                    int nl);
void BgemmBlockAvx512(const uint32_t* a, size_t lda, int M, const uint32_t* bblk, int kw, int K, const BgemmOut& out,
                      int nl);

// Panel build: word w of column l is src[lane_off[l] + word_off[w]] for l < nl, 0 for the unused
// columns nl ≤ l < lanes; written in the variant's panel layout (split included). Serves both the
// GEMM (lane_off = l·kw, word_off = w: a transpose of b rows) and the conv's bit-im2col
// (lane_off = output pixel offsets, word_off = patch word offsets). lane_off must be readable for
// `lanes` entries. The vector variants use (masked) gathers, or plain loads when the nl columns
// are consecutive words.
using BgemmGatherFn = void (*)(const uint32_t* src, const int32_t* lane_off, const int32_t* word_off, int kw, int nl,
                               uint32_t* bblk);

void BgemmGatherRef(const uint32_t* src, const int32_t* lane_off, const int32_t* word_off, int kw, int nl,
                    uint32_t* bblk);
void BgemmGatherAvx2(const uint32_t* src, const int32_t* lane_off, const int32_t* word_off, int kw, int nl,
                     uint32_t* bblk);
void BgemmGatherAvx512(const uint32_t* src, const int32_t* lane_off, const int32_t* word_off, int kw, int nl,
                       uint32_t* bblk);

struct BgemmVariant {
  Isa isa;
  const char* name;
  int lanes;              // columns per panel
  int split;              // 1: plain words; 2: nibble-split pairs (AVX2: saves the shift and masks)
  BgemmBlockFn block;
  BgemmGatherFn gather;
  double gops_per_core;   // rough single-core binary GOP/s, only to decide on threading
};

// The variant for `isa`, or null when the CPU cannot run it.
const BgemmVariant* BgemmFind(Isa isa);
// The variant SelectedIsa() names (always available).
const BgemmVariant& BgemmSelected();

// Threads for `ops` binary ops split into `items` independent pieces (see the rule in
// bgemm_select.cc): 1 below ~20 µs of single-thread work, else omp_get_max_threads().
int BgemmThreads(const BgemmVariant& v, double ops, int64_t items);

// A rows [rows, kw] → the variant's layout [rows, kw · split] (out must hold rows · kw · split words).
void SplitRows(const BgemmVariant& v, const uint32_t* a, int64_t rows, int64_t kw, uint32_t* out);

// 64-byte-aligned buffer of `words` 32-bit words, or empty (ok() false) when out of memory.
// Never throws (the kernels return a status instead).
class AlignedWords {
 public:
  explicit AlignedWords(int64_t words);
  ~AlignedWords();
  AlignedWords(const AlignedWords&) = delete;
  AlignedWords& operator=(const AlignedWords&) = delete;
  bool ok() const { return base_ != nullptr || words_ == 0; }
  uint32_t* data() const { return aligned_; }

 private:
  uint32_t* base_ = nullptr;
  uint32_t* aligned_ = nullptr;
  int64_t words_ = 0;
};

// The whole product c [m, n] for row-major packed a [m, ceil(k/32)] and b [n, ceil(k/32)].
// Returns "" or an error message (never throws).
std::string BinaryMatmul(const BgemmVariant& v, const uint32_t* a, const uint32_t* b, int64_t m, int64_t n, int64_t k,
                         float* c);

}  // namespace onebit
