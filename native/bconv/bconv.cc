// Binary conv2d by bit-im2col + the binary GEMM (contract in bconv.h; GEMM in bgemm/bgemm.h).
//
// 1. Weights → A [Cout, Kw]: row co holds, tap by tap (t = i·kw + j), the Cw = ceil(Cg/32) words of
//    the signs of w[co, :, i, j] (channel c → word c/32, bit c%32; tail bits 0). Kw = taps·Cw and
//    the logical K = Cg·taps.
// 2. Input → per (image, group) Cw bit planes of the zero-bordered image, [Cw][H+2ph][W+2pw]:
//    border words are 0, i.e. +1 in every channel. Each interior word is built whole, 64 pixels at
//    a time: the 32 channels' compares are shifted into eight vector accumulators (no read-modify-
//    write passes), so the interior needs no zero-fill; a prepared plan keeps the planes between
//    runs and writes their zero border once.
// 3. Per (image, group, panel of `lanes` output pixels, chunk of output channels): bit-im2col = the
//    variant's panel gather, bblk[k][l] = plane word under output pixel p0+l for patch word k, then
//    the selected bgemm writes y[n, co .. , p0 .. p0+lanes) for the chunk's output channels (rows
//    of y are contiguous output pixels: NCHW directly, no transpose). The per-channel affine map
//    (scale, bias) and, for a plan run, the engine's residual add + channel activation
//    (BinaryConvAct) are applied in the GEMM epilogue, in registers, before the only store.
// 4. Padding. Step 3 computed the conv with a +1 border. A border tap of output channel co adds
//    S(co, t) = Σ_c sign(w[co, c, t]) = Cg − 2·popcount(A word(s) of tap t) there, while the
//    contract wants padValue·S(co, t) (0: the tap contributes nothing; −1: −S). So output pixels
//    whose window leaves the image get (padValue − 1)·Σ_{taps outside} S(co, t) added (in the GEMM
//    epilogue, from a [Cout][P] table; a plan keeps it panel-major, [border panel][Cout][lanes], so
//    the epilogue reads it contiguously): exact, and nothing to do for padValue = +1.
// Threads: one OpenMP team per run (BgemmThreads decides) does step 2 (static split over plane
// words and pixel ranges) and, after its barrier, step 3 (dynamic chunks of items). Items are
// split over output-channel chunks too when there are few panels (small images at batch 1), so
// both threads get work and a preempted thread does not hold the other up.
#include <immintrin.h>
#include <omp.h>
#include <algorithm>
#include <new>
#include <vector>
#include "bconv/bconv.h"
#include "bgemm/bgemm.h"
#include "bitpack/bitpack.h"

namespace onebit {
namespace {

const float kZeroThr[32] = {};

// Plane words for pixels [p0, p1) of one plane word (channels c0 .. c0+nj−1, nj ≤ 32, read from
// xc = x + c0·HW with channel stride HW): word(p) bit j = xc[j·HW + p] < thr[j] (thr = zeros for
// plain signs; ordered compare: −0 and NaN give 0). dst = the plane's interior origin (row stride
// Wp); pixel p = h·W + w goes to dst[h·Wp + w]. With NaNs = true, *nan is set to 1 when one of
// the values read is NaN (a sign the bits cannot carry), in the same pass.
template <bool NaNs>
void PackScalar(const float* xc, int64_t HW, int nj, const float* thr, int64_t p0, int64_t p1, int64_t W, int64_t Wp,
                uint32_t* dst, int* nan) {
  bool seen = false;
  for (int64_t p = p0; p < p1; p++) {
    uint32_t word = 0;
    for (int j = nj - 1; j >= 0; j--) {
      const float v = xc[j * HW + p];
      if (NaNs) seen |= v != v;
      word = (word << 1) | (v < thr[j] ? 1u : 0u);
    }
    dst[(p / W) * Wp + p % W] = word;
  }
  if (NaNs && seen) *nan = 1;
}

// 8·V pixels from p: V vectors of 8 words, each written to its row (or word by word when its 8
// pixels span rows). Wide blocks read each channel's 32·V contiguous bytes per visit: the
// channels are HW floats apart (often a multiple of 4 KiB), so 32 narrow streams thrash L1.
template <int V, int PF, bool NaNs>
__attribute__((target("avx2"), always_inline)) inline void PackBlockAvx2(const float* xc, int64_t HW, int nj,
                                                                         const float* thr, int64_t p, int64_t W,
                                                                         int64_t Wp, uint32_t* dst, __m256& nanAcc) {
  __m256i acc[V];
#pragma GCC unroll 8
  for (int k = 0; k < V; k++) acc[k] = _mm256_setzero_si256();
  for (int j = nj - 1; j >= 0; j--) {  // bit j, shifted in last-first, ends at position j
    const float* s = xc + j * HW + p;
    if (PF > 0) {  // the same channel's block PF blocks ahead (may run past the plane: harmless)
#pragma GCC unroll 8
      for (int q = 0; q < V / 2; q++) _mm_prefetch(reinterpret_cast<const char*>(s + PF * 8 * V + 16 * q), _MM_HINT_T0);
    }
    const __m256 t = _mm256_broadcast_ss(thr + j);
#pragma GCC unroll 8
    for (int k = 0; k < V; k++) {
      const __m256 v = _mm256_loadu_ps(s + 8 * k);
      if (NaNs) nanAcc = _mm256_or_ps(nanAcc, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
      const __m256i m = _mm256_castps_si256(_mm256_cmp_ps(v, t, _CMP_LT_OQ));
      acc[k] = _mm256_sub_epi32(_mm256_add_epi32(acc[k], acc[k]), m);  // 2a + 1 where the mask is −1
    }
  }
#pragma GCC unroll 8
  for (int k = 0; k < V; k++) {
    const int64_t pk = p + 8 * k, h = pk / W, w = pk - h * W;
    if (w + 8 <= W) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + h * Wp + w), acc[k]);
    } else {  // the 8 pixels span rows
      alignas(32) uint32_t tmp[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), acc[k]);
      int64_t hh = h, ww = w;
      for (int l = 0; l < 8; l++) {
        dst[hh * Wp + ww] = tmp[l];
        if (++ww == W) ww = 0, hh++;
      }
    }
  }
}

// prefetch: read the next block's lines early (inputs larger than L2: they come from L3 or memory,
// and 32 interleaved short streams defeat the hardware prefetcher; measured 10-25 % faster there,
// ~10 % slower on L2-resident inputs, so off for those).
template <int PF, bool NaNs>
__attribute__((target("avx2"))) void PackAvx2(const float* xc, int64_t HW, int nj, const float* thr, int64_t p0,
                                              int64_t p1, int64_t W, int64_t Wp, uint32_t* dst, int* nan) {
  __m256 nanAcc = _mm256_setzero_ps();
  int64_t p = p0;
  for (; p + 64 <= p1; p += 64) PackBlockAvx2<8, PF, NaNs>(xc, HW, nj, thr, p, W, Wp, dst, nanAcc);
  for (; p + 8 <= p1; p += 8) PackBlockAvx2<1, 0, NaNs>(xc, HW, nj, thr, p, W, Wp, dst, nanAcc);
  if (p < p1) PackScalar<NaNs>(xc, HW, nj, thr, p, p1, W, Wp, dst, nan);
  if (NaNs && _mm256_movemask_ps(nanAcc)) *nan = 1;
}

using PackFn = void (*)(const float*, int64_t, int, const float*, int64_t, int64_t, int64_t, int64_t, uint32_t*, int*);
// All exact (the same bits); `large`: the input is larger than L2; `nans`: also report NaN inputs.
PackFn SelectedPack(bool large, bool nans) {
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (!avx2) return nans ? PackScalar<true> : PackScalar<false>;
  if (nans) return large ? PackAvx2<1, true> : PackAvx2<0, true>;
  return large ? PackAvx2<1, false> : PackAvx2<0, false>;
}

// Steps 1 and 4 (set-up) above: the weights in the selected variant's row layout, and the border
// corrections (empty when padValue = +1 or there is no padding).
std::string Prepare(const float* w, const BinaryConvGeom& g, double padValue, PreparedBinaryConv& prep) {
  const int64_t Ho = BinaryConvHo(g), Wo = BinaryConvWo(g), P = Ho * Wo;
  if (Ho < 1 || Wo < 1) return "binaryConv2d: the kernel does not fit the padded input";
  const int64_t taps = g.kh * g.kw, Cw = WordsFor(g.Cg), Kw = taps * Cw;
  const int64_t Hp = g.H + 2 * g.ph, Wp = g.W + 2 * g.pw, plane = Hp * Wp;
  if (Cw * plane >= (int64_t{1} << 31) || Kw >= (int64_t{1} << 31)) return "binaryConv2d: input too large";

  // 1. Weights.
  std::vector<uint32_t> A(g.Cout * Kw, 0u);
  for (int64_t co = 0; co < g.Cout; co++) {
    for (int64_t c = 0; c < g.Cg; c++) {
      for (int64_t t = 0; t < taps; t++) {
        if (w[(co * g.Cg + c) * taps + t] < 0.0f) A[co * Kw + t * Cw + c / 32] |= 1u << (c % 32);
      }
    }
  }

  // 4 (set-up). Border corrections, dense [Cout][P] (0 inside), added in the GEMM epilogue.
  prep.corr.clear();
  prep.hasBorder.assign(P, 0);
  if (padValue != 1.0 && (g.ph > 0 || g.pw > 0)) {
    std::vector<int64_t> S(g.Cout * taps);
    for (int64_t co = 0; co < g.Cout; co++) {
      for (int64_t t = 0; t < taps; t++) {
        int64_t ones = 0;
        for (int64_t cw = 0; cw < Cw; cw++) ones += __builtin_popcount(A[co * Kw + t * Cw + cw]);
        S[co * taps + t] = g.Cg - 2 * ones;
      }
    }
    prep.corr.assign(g.Cout * P, 0.0f);
    for (int64_t p = 0; p < P; p++) {
      const int64_t ih0 = (p / Wo) * g.sh - g.ph, iw0 = (p % Wo) * g.sw - g.pw;
      for (int64_t i = 0; i < g.kh; i++) {
        for (int64_t j = 0; j < g.kw; j++) {
          const int64_t ih = ih0 + i * g.dh, iw = iw0 + j * g.dw;
          if (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W) continue;
          prep.hasBorder[p] = 1;
          for (int64_t co = 0; co < g.Cout; co++) prep.corr[co * P + p] += static_cast<float>(S[co * taps + i * g.kw + j]);
        }
      }
    }
    for (float& v : prep.corr) v = static_cast<float>((padValue - 1.0) * v);
  }
  const BgemmVariant& v = BgemmSelected();
  if (v.split > 1) {
    prep.rows.assign(A.size() * v.split, 0u);
    SplitRows(v, A.data(), g.Cout, Kw, prep.rows.data());
  } else {
    prep.rows = std::move(A);
  }
  return "";
}

// The geometry's tables (see BinaryConvTables); hasBorder [P] may be null (no border corrections).
std::string MakeTables(const BinaryConvGeom& g, const BgemmVariant& v, const uint8_t* hasBorder, BinaryConvTables& t) {
  t.Ho = BinaryConvHo(g);
  t.Wo = BinaryConvWo(g);
  t.P = t.Ho * t.Wo;
  if (t.Ho < 1 || t.Wo < 1) return "binaryConv2d: the kernel does not fit the padded input";
  t.taps = g.kh * g.kw;
  t.Cw = WordsFor(g.Cg);
  t.Kw = t.taps * t.Cw;
  t.K = g.Cg * t.taps;
  t.Cog = g.Cout / g.groups;
  t.Hp = g.H + 2 * g.ph;
  t.Wp = g.W + 2 * g.pw;
  t.plane = t.Hp * t.Wp;
  if (t.Cw * t.plane >= (int64_t{1} << 31) || t.Kw >= (int64_t{1} << 31)) return "binaryConv2d: input too large";
  t.toff.assign(t.Kw, 0);
  for (int64_t i = 0; i < g.kh; i++) {
    for (int64_t j = 0; j < g.kw; j++) {
      for (int64_t cw = 0; cw < t.Cw; cw++) {
        t.toff[(i * g.kw + j) * t.Cw + cw] = static_cast<int32_t>(cw * t.plane + i * g.dh * t.Wp + j * g.dw);
      }
    }
  }
  const int lanes = v.lanes;
  t.panels = (t.P + lanes - 1) / lanes;
  t.poff.assign(t.panels * lanes, 0);  // the gather reads `lanes` offsets per panel
  for (int64_t oh = 0, p = 0; oh < t.Ho; oh++) {
    for (int64_t ow = 0; ow < t.Wo; ow++, p++) t.poff[p] = static_cast<int32_t>(oh * g.sh * t.Wp + ow * g.sw);
  }
  t.corrBase.assign(t.panels, -1);  // dense [Cout][P] layout
  t.corrRowStride = t.P;
  if (hasBorder) {
    for (int64_t p = 0; p < t.P; p++) {
      if (hasBorder[p]) t.corrBase[p / lanes] = (p / lanes) * lanes;
    }
  }
  return "";
}

// Steps 2 and 3 above for a batch of N: xb holds N·groups·Cw planes whose borders are zero (their
// interiors are overwritten here); the input's bits are sign(x − thr[c]) when thr is given (a
// learnable activation threshold folded in); then y = y·scale[co] + bias[co] when given. With
// sawNaN: the packing also looks for NaN in x, and when it finds one sets *sawNaN = 1 and skips the
// GEMM (y is left unspecified: the caller takes its float path); else *sawNaN = 0.
std::string Execute(const float* x, int64_t N, const uint32_t* rows, const float* corr, const BinaryConvGeom& g,
                    const BinaryConvTables& t, uint32_t* xb, const float* scale, const float* bias, const float* thr,
                    float* y, const BinaryConvAct* act = nullptr, int* sawNaN = nullptr) {
  if (sawNaN) *sawNaN = 0;
  if (N == 0 || g.Cout == 0) return "";
  const BgemmVariant& v = BgemmSelected();
  const int lanes = v.lanes;
  const size_t lda = t.Kw * v.split;
  const int64_t images = N * g.groups, HW = g.H * g.W, P = t.P, Cog = t.Cog, panels = t.panels;

  // Items: (image·group, panel, chunk of output channels), chunks fastest (a thread's consecutive
  // items share the gathered panel). Few panels (batch 1, small images): chunks of ≥ 16 channels
  // until there are ~8 items per thread.
  const int maxThreads = std::max(1, omp_get_max_threads());
  int64_t chunks = 1;
  if (maxThreads > 1 && images * panels < 8 * maxThreads) {
    chunks = std::min<int64_t>((8 * maxThreads + images * panels - 1) / (images * panels), std::max<int64_t>(1, Cog / 16));
  }
  int64_t rowChunk = (Cog + chunks - 1) / chunks;
  rowChunk = std::min(Cog, (rowChunk + 7) / 8 * 8);  // whole tiles (4 rows avx2, 8 avx512)
  chunks = (Cog + rowChunk - 1) / rowChunk;
  const int64_t items = images * panels * chunks;
  const int threads = BgemmThreads(v, 2.0 * N * g.Cout * P * t.K, items);

  // Packing units: (image·group, plane word, pixel range), ≥ 2 per thread.
  int64_t pchunks = 1;
  if (threads > 1 && images * t.Cw < 2 * threads) pchunks = (2 * threads + images * t.Cw - 1) / (images * t.Cw);
  int64_t pchunk = (HW + pchunks - 1) / pchunks;
  pchunk = (pchunk + 63) / 64 * 64;  // whole 64-pixel blocks (PackAvx2)
  pchunks = (HW + pchunk - 1) / pchunk;
  const int64_t packUnits = images * t.Cw * pchunks;
  const PackFn pack = SelectedPack(images * g.Cg * HW * 4 > (int64_t{1} << 20), sawNaN != nullptr);
  int nanAny = 0;

  const int64_t slice = (t.Kw * lanes * v.split + 15) / 16 * 16;
  AlignedWords scratch(threads * slice);
  if (!scratch.ok()) return "binaryConv2d: out of memory for the panel scratch";
  const int64_t grain = std::max<int64_t>(1, items / (int64_t{8} * threads));
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
#pragma omp for schedule(static) reduction(| : nanAny)
    for (int64_t u = 0; u < packUnits; u++) {
      const int64_t pc = u % pchunks, rest = u / pchunks, cw = rest % t.Cw, ng = rest / t.Cw;
      const int64_t n = ng / g.groups, gr = ng % g.groups, c0 = gr * g.Cg + cw * 32;
      const int nj = static_cast<int>(std::min<int64_t>(32, g.Cg - cw * 32));
      const int64_t p0 = pc * pchunk, p1 = std::min(HW, p0 + pchunk);
      int nan = 0;
      pack(x + (n * g.C + c0) * HW, HW, nj, thr ? thr + c0 : kZeroThr, p0, p1, g.W, t.Wp,
           xb + (ng * t.Cw + cw) * t.plane + g.ph * t.Wp + g.pw, &nan);
      nanAny |= nan;
    }
    // (implicit barrier: every plane is complete, nanAny reduced; the same value in every thread)
    uint32_t* panel = scratch.data() + omp_get_thread_num() * slice;
    int64_t gathered = -1;
#pragma omp for schedule(dynamic, grain) nowait
    for (int64_t it = 0; it < (nanAny ? 0 : items); it++) {
      const int64_t chunk = it % chunks, pi = it / chunks, ng = pi / panels, pn = pi % panels;
      const int64_t n = ng / g.groups, gr = ng % g.groups, p0 = pn * lanes;
      const int nl = static_cast<int>(std::min<int64_t>(lanes, P - p0));
      if (pi != gathered) {
        v.gather(xb + ng * t.Cw * t.plane, t.poff.data() + p0, t.toff.data(), static_cast<int>(t.Kw), nl, panel);
        gathered = pi;
      }
      const int64_t m0 = chunk * rowChunk, co = gr * Cog + m0;
      const int mr = static_cast<int>(std::min(rowChunk, Cog - m0));
      const int64_t cb = corr ? t.corrBase[pn] : -1;
      BgemmAct tail{};
      if (act) {
        tail = BgemmAct{act->res ? act->res + (n * g.Cout + co) * P + p0 : nullptr, static_cast<size_t>(P),
                        act->b0 ? act->b0 + co : nullptr, act->pos ? act->pos + co : nullptr,
                        act->neg ? act->neg + co : nullptr, act->b1 ? act->b1 + co : nullptr};
      }
      const BgemmOut out{y + (n * g.Cout + co) * P + p0, static_cast<size_t>(P),
                         cb >= 0 ? corr + cb + co * t.corrRowStride : nullptr, static_cast<size_t>(t.corrRowStride),
                         scale ? scale + co : nullptr, bias ? bias + co : nullptr, act ? &tail : nullptr};
      v.block(rows + co * lda, lda, mr, panel, static_cast<int>(t.Kw), static_cast<int>(t.K), out, nl);
    }
  }
  if (sawNaN) *sawNaN = nanAny;
  return "";
}

// One run without a plan: the tables and zero-bordered planes made for this call.
std::string Run(const float* x, const uint32_t* rows, const float* corr, const uint8_t* hasBorder, const BinaryConvGeom& g,
                const float* scale, const float* bias, float* y, const float* thr = nullptr, int* sawNaN = nullptr) {
  BinaryConvTables t;
  const std::string status = MakeTables(g, BgemmSelected(), corr ? hasBorder : nullptr, t);
  if (!status.empty()) return status;
  if (g.N == 0 || g.Cout == 0) return "";
  std::vector<uint32_t> xb(g.N * g.groups * t.Cw * t.plane, 0u);
  return Execute(x, g.N, rows, corr, g, t, xb.data(), scale, bias, thr, y, nullptr, sawNaN);
}

}  // namespace

std::string PrepareBinaryConv2d(const float* w, const BinaryConvGeom& g, double padValue, PreparedBinaryConv& prep) {
  try {
    return Prepare(w, g, padValue, prep);
  } catch (const std::bad_alloc&) {
    return "binaryConv2d: out of memory for the packed weights";
  }
}

std::string RunBinaryConv2d(const float* x, const PreparedBinaryConv& prep, const BinaryConvGeom& g, const float* scale,
                            const float* bias, float* y) {
  try {
    return Run(x, prep.rows.data(), prep.corr.empty() ? nullptr : prep.corr.data(), prep.hasBorder.data(), g, scale, bias, y);
  } catch (const std::bad_alloc&) {
    return "binaryConv2d: out of memory for the packed buffers";
  }
}

std::string RunBinaryConv2dRaw(const float* x, const uint32_t* rows, const float* corr, const uint8_t* hasBorder,
                               const BinaryConvGeom& g, const float* scale, const float* bias, float* y, const float* thr) {
  try {
    return Run(x, rows, corr, hasBorder, g, scale, bias, y, thr);
  } catch (const std::bad_alloc&) {
    return "binaryConv2d: out of memory for the packed buffers";
  }
}

std::string BinaryConv2d(const float* x, const float* w, const BinaryConvGeom& g, double padValue, float* y,
                         const float* scale, int* sawNaN) {
  if (sawNaN) *sawNaN = 0;
  try {
    PreparedBinaryConv prep;
    const std::string status = Prepare(w, g, padValue, prep);
    if (!status.empty()) return status;
    return Run(x, prep.rows.data(), prep.corr.empty() ? nullptr : prep.corr.data(), prep.hasBorder.data(), g, scale, nullptr, y,
               nullptr, sawNaN);
  } catch (const std::bad_alloc&) {  // the std::vector work buffers; nothing else throws
    return "binaryConv2d: out of memory for the packed buffers";
  }
}

std::string CreateBinaryConvPlan(const float* w, const BinaryConvGeom& g, double padValue, BinaryConvPlan& plan) {
  try {
    plan.g = g;
    plan.g.N = 0;
    plan.xb.clear();
    plan.xbImages = 0;
    std::string status = Prepare(w, g, padValue, plan.prep);
    if (!status.empty()) return status;
    BinaryConvTables& t = plan.tables;
    status = MakeTables(g, BgemmSelected(), plan.prep.corr.empty() ? nullptr : plan.prep.hasBorder.data(), t);
    if (!status.empty() || plan.prep.corr.empty()) return status;
    // Panel-major copy of the corrections: [border panel][Cout][lanes] (columns past P stay 0).
    const int64_t lanes = BgemmSelected().lanes, Cout = g.Cout;
    int64_t slots = 0;
    for (int64_t b : t.corrBase) slots += b >= 0;
    plan.corrPanels.assign(slots * Cout * lanes, 0.0f);
    int64_t slot = 0;
    for (int64_t pn = 0; pn < t.panels; pn++) {
      if (t.corrBase[pn] < 0) continue;
      float* dst = plan.corrPanels.data() + slot * Cout * lanes;
      const int64_t p0 = pn * lanes, nl = std::min(lanes, t.P - p0);
      for (int64_t co = 0; co < Cout; co++) {
        for (int64_t l = 0; l < nl; l++) dst[co * lanes + l] = plan.prep.corr[co * t.P + p0 + l];
      }
      t.corrBase[pn] = slot * Cout * lanes;
      slot++;
    }
    t.corrRowStride = lanes;
    plan.prep.corr.clear();  // the plan reads only the panel-major copy
    plan.prep.corr.shrink_to_fit();
    return "";
  } catch (const std::bad_alloc&) {
    return "binaryConv2d: out of memory for the packed weights";
  }
}

std::string RunBinaryConvPlan(BinaryConvPlan& plan, const float* x, int64_t N, const float* scale, const float* bias,
                              const float* thr, float* y, const BinaryConvAct* act) {
  try {
    BinaryConvGeom g = plan.g;
    g.N = N;
    const int64_t images = N * g.groups;
    if (images > plan.xbImages) {  // zero borders written once per size; interiors rewritten by every run
      plan.xb.assign(images * plan.tables.Cw * plan.tables.plane, 0u);
      plan.xbImages = images;
    }
    const float* corr = plan.corrPanels.empty() ? nullptr : plan.corrPanels.data();
    return Execute(x, N, plan.prep.rows.data(), corr, g, plan.tables, plan.xb.data(), scale, bias, thr, y, act);
  } catch (const std::bad_alloc&) {
    return "binaryConv2d: out of memory for the bit planes";
  }
}

}  // namespace onebit
