// Binary GEMM: the choice of variant and the driver over panels and threads (contract in bgemm.h).
//
// Rule (table below, best first): avx512 when the CPU has AVX-512 F + BW + VPOPCNTDQ, else avx2,
// else the scalar reference. SelectedIsa() (addon.cc) applies it and honours ONEBIT_ISA=ref|avx2|
// avx512 to force a lower variant; binaryMatmulIsa runs any one the CPU supports (tests).
// Threads: one OpenMP team (libgomp, shared with oneDNN), over independent panels, when the
// product would take more than ~20 µs on one core by the variant's rough speed; below that one
// thread. A fork/join of the warm team (libgomp spins between regions) costs a few µs, so every
// batch-1 ResNet-18 CIFAR layer uses both cores: the stride-2 ones (37.7 M binary ops, ~50-60 µs
// on one core, estimated 75 µs) went from one thread to two at 1.7-2x (the old 0.1 ms rule kept
// them on one).
#include <omp.h>
#include <algorithm>
#include <new>
#include <vector>
#include "bgemm/bgemm.h"

namespace onebit {
namespace {

constexpr double kParallelMinSeconds = 2e-5;

bool CpuHas(Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vpopcntdq");
    case Isa::kAvx2:
      return __builtin_cpu_supports("avx2");
    default:
      return true;
  }
}

// Best first. gops_per_core: rough single-core binary GOP/s (engine study), for threading only.
const BgemmVariant kVariants[] = {
    {Isa::kAvx512, "avx512", 16, 1, BgemmBlockAvx512, BgemmGatherAvx512, 1500.0},
    {Isa::kAvx2, "avx2", 8, 2, BgemmBlockAvx2, BgemmGatherAvx2, 500.0},
    {Isa::kRef, "ref", 1, 1, BgemmBlockRef, BgemmGatherRef, 100.0},
};

constexpr uint32_t kLowNibbles = 0x0f0f0f0fu;

}  // namespace

const BgemmVariant* BgemmFind(Isa isa) {
  for (const BgemmVariant& v : kVariants) {
    if (v.isa == isa) return CpuHas(isa) ? &v : nullptr;
  }
  return nullptr;
}

const BgemmVariant& BgemmSelected() {
  const BgemmVariant* v = BgemmFind(SelectedIsa());
  return v ? *v : kVariants[2];
}

int BgemmThreads(const BgemmVariant& v, double ops, int64_t items) {
  if (ops / (v.gops_per_core * 1e9) < kParallelMinSeconds) return 1;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(omp_get_max_threads(), items)));
}

void SplitRows(const BgemmVariant& v, const uint32_t* a, int64_t rows, int64_t kw, uint32_t* out) {
  if (v.split == 1) {
    std::copy(a, a + rows * kw, out);
    return;
  }
  for (int64_t i = 0; i < rows * kw; i++) {
    out[2 * i] = a[i] & kLowNibbles;
    out[2 * i + 1] = (a[i] >> 4) & kLowNibbles;
  }
}

AlignedWords::AlignedWords(int64_t words) : words_(words) {
  if (words == 0) return;
  base_ = new (std::nothrow) uint32_t[words + 16];
  if (!base_) return;
  const uintptr_t p = reinterpret_cast<uintptr_t>(base_);
  aligned_ = reinterpret_cast<uint32_t*>((p + 63) & ~uintptr_t{63});
}

AlignedWords::~AlignedWords() { delete[] base_; }

namespace {

std::string Matmul(const BgemmVariant& v, const uint32_t* a, const uint32_t* b, int64_t m, int64_t n, int64_t k,
                   float* c) {
  if (m <= 0 || n <= 0) return "";
  const int64_t kw = (k + 31) / 32;
  const int lanes = v.lanes;
  const int64_t panels = (n + lanes - 1) / lanes;
  // Rows of A per chunk: ≤ 128 KiB of A stays in L2 while a thread walks its panels.
  const int64_t chunk = std::max<int64_t>(16, (32768 / std::max<int64_t>(kw * v.split, 1)) / 16 * 16);
  const int64_t chunks = (m + chunk - 1) / chunk;
  const int64_t items = chunks * panels;  // chunk-major: a thread's consecutive items share A
  const int threads = BgemmThreads(v, 2.0 * m * n * k, items);
  // Panels (lanes > 1) are built per thread in 64-byte-aligned slices of one scratch buffer.
  const int64_t slice = lanes > 1 ? (kw * lanes * v.split + 15) / 16 * 16 : 0;
  AlignedWords scratch(threads * slice);
  AlignedWords split(v.split > 1 ? m * kw * v.split : 0);
  if (!scratch.ok() || !split.ok()) return "binaryMatmul: out of memory for the panel scratch";
  if (16 * kw >= (int64_t{1} << 31)) return "binaryMatmul: k too large";
  const uint32_t* rows = a;
  if (v.split > 1) {
    SplitRows(v, a, m, kw, split.data());
    rows = split.data();
  }
  const size_t lda = kw * v.split;
  // Panel gather offsets: column l of a panel is the b row at lane_off[l] words, word w at +w.
  std::vector<int32_t> lane_off(lanes), word_off(kw);
  for (int l = 0; l < lanes; l++) lane_off[l] = static_cast<int32_t>(l * kw);
  for (int64_t w = 0; w < kw; w++) word_off[w] = static_cast<int32_t>(w);
  // Dynamic chunks of items: a thread the OS preempts (shared host) does not hold the others up.
  const int64_t grain = std::max<int64_t>(1, items / (int64_t{16} * threads));
#pragma omp parallel for num_threads(threads) schedule(dynamic, grain) if (threads > 1)
  for (int64_t t = 0; t < items; t++) {
    const int64_t m0 = (t / panels) * chunk, n0 = (t % panels) * lanes;
    const int mr = static_cast<int>(std::min(chunk, m - m0));
    const int nl = static_cast<int>(std::min<int64_t>(lanes, n - n0));
    const uint32_t* panel = b + n0 * kw;  // lanes == 1: the b row is the panel
    if (lanes > 1) {
      uint32_t* buf = scratch.data() + omp_get_thread_num() * slice;
      v.gather(b + n0 * kw, lane_off.data(), word_off.data(), static_cast<int>(kw), nl, buf);
      panel = buf;
    }
    const BgemmOut out{c + m0 * n + n0, static_cast<size_t>(n), nullptr, 0};
    v.block(rows + m0 * lda, lda, mr, panel, static_cast<int>(kw), static_cast<int>(k), out, nl);
  }
  return "";
}

}  // namespace

std::string BinaryMatmul(const BgemmVariant& v, const uint32_t* a, const uint32_t* b, int64_t m, int64_t n, int64_t k,
                         float* c) {
  try {
    return Matmul(v, a, b, m, n, k, c);
  } catch (const std::bad_alloc&) {  // the small offset vectors; nothing else throws
    return "binaryMatmul: out of memory";
  }
}

}  // namespace onebit
