// Binary conv2d by bit-im2col + the binary GEMM (contract in bconv.h; GEMM in bgemm/bgemm.h).
//
// 1. Weights → A [Cout, Kw]: row co holds, tap by tap (t = i·kw + j), the Cw = ceil(Cg/32) words of
//    the signs of w[co, :, i, j] (channel c → word c/32, bit c%32; tail bits 0). Kw = taps·Cw and
//    the logical K = Cg·taps.
// 2. Input → per (image, group) Cw bit planes of the zero-bordered image, [Cw][H+2ph][W+2pw]:
//    border words are 0, i.e. +1 in every channel.
// 3. Per (image, group, panel of `lanes` output pixels): bit-im2col = the variant's panel gather,
//    bblk[k][l] = plane word under output pixel p0+l for patch word k, then the selected bgemm
//    writes y[n, g·Cog .. , p0 .. p0+lanes) for all Cog output channels (rows of y are
//    contiguous output pixels: NCHW directly, no transpose).
// 4. Padding. Step 3 computed the conv with a +1 border. A border tap of output channel co adds
//    S(co, t) = Σ_c sign(w[co, c, t]) = Cg − 2·popcount(A word(s) of tap t) there, while the
//    contract wants padValue·S(co, t) (0: the tap contributes nothing; −1: −S). So output pixels
//    whose window leaves the image get (padValue − 1)·Σ_{taps outside} S(co, t) added (in the GEMM
//    epilogue, from a dense [Cout][P] table): exact, and nothing to do for padValue = +1.
// Threads: the panels of all images are independent items (BgemmThreads decides, one OpenMP team,
// dynamic chunks).
#include <omp.h>
#include <algorithm>
#include <new>
#include <vector>
#include "bconv/bconv.h"
#include "bgemm/bgemm.h"
#include "bitpack/bitpack.h"

namespace onebit {
namespace {

// dst[i] |= bit for every src[i] < 0 (vectorized by g++; the AVX2 clone packs 8 floats per op).
ONEBIT_CLONES void OrSignBits(const float* src, int64_t n, uint32_t bit, uint32_t* dst) {
  for (int64_t i = 0; i < n; i++) dst[i] |= src[i] < 0.0f ? bit : 0u;
}

// dst[i] |= bit for every src[i] < thr: the bit of sign(src − thr) (x − t < 0 ⟺ x < t in IEEE floats).
ONEBIT_CLONES void OrBelowBits(const float* src, int64_t n, float thr, uint32_t bit, uint32_t* dst) {
  for (int64_t i = 0; i < n; i++) dst[i] |= src[i] < thr ? bit : 0u;
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

// Steps 2 and 3 above, with prepared weights; the input's bits are sign(x − thr[c]) when thr is
// given (a learnable activation threshold folded in); then y = y·scale[co] + bias[co] when given.
std::string Run(const float* x, const uint32_t* rows, const float* corr, const uint8_t* hasBorder, const BinaryConvGeom& g,
                const float* scale, const float* bias, float* y, const float* thr = nullptr) {
  const int64_t Ho = BinaryConvHo(g), Wo = BinaryConvWo(g), P = Ho * Wo;
  if (Ho < 1 || Wo < 1) return "binaryConv2d: the kernel does not fit the padded input";
  const int64_t taps = g.kh * g.kw, Cw = WordsFor(g.Cg), Kw = taps * Cw, K = g.Cg * taps;
  const int64_t Cog = g.Cout / g.groups, Hp = g.H + 2 * g.ph, Wp = g.W + 2 * g.pw, plane = Hp * Wp;
  if (Cw * plane >= (int64_t{1} << 31) || Kw >= (int64_t{1} << 31)) return "binaryConv2d: input too large";
  if (g.N == 0 || g.Cout == 0) return "";

  // 2. Input bit planes [N][groups][Cw][Hp][Wp].
  const int64_t images = g.N * g.groups;
  std::vector<uint32_t> xb(images * Cw * plane, 0u);
  const int packThreads = images * g.Cg * g.H * g.W >= (int64_t{1} << 20) ? omp_get_max_threads() : 1;
#pragma omp parallel for num_threads(packThreads) schedule(static) if (packThreads > 1)
  for (int64_t ng = 0; ng < images; ng++) {
    const int64_t n = ng / g.groups, gr = ng % g.groups;
    for (int64_t c = 0; c < g.Cg; c++) {
      const float* src = x + ((n * g.C + gr * g.Cg + c) * g.H) * g.W;
      uint32_t* dst = xb.data() + (ng * Cw + c / 32) * plane + g.ph * Wp + g.pw;
      if (thr) {
        for (int64_t h = 0; h < g.H; h++) OrBelowBits(src + h * g.W, g.W, thr[gr * g.Cg + c], 1u << (c % 32), dst + h * Wp);
      } else {
        for (int64_t h = 0; h < g.H; h++) OrSignBits(src + h * g.W, g.W, 1u << (c % 32), dst + h * Wp);
      }
    }
  }

  // 3. Panels.
  const BgemmVariant& v = BgemmSelected();
  const int lanes = v.lanes;
  const size_t lda = Kw * v.split;
  std::vector<int32_t> toff(Kw), poff(P);
  for (int64_t i = 0; i < g.kh; i++) {
    for (int64_t j = 0; j < g.kw; j++) {
      for (int64_t cw = 0; cw < Cw; cw++) toff[(i * g.kw + j) * Cw + cw] = cw * plane + i * g.dh * Wp + j * g.dw;
    }
  }
  const int64_t panels = (P + lanes - 1) / lanes, items = images * panels;
  poff.resize(panels * lanes, 0);  // the gather reads `lanes` offsets per panel
  for (int64_t p = 0; p < P; p++) poff[p] = (p / Wo) * g.sh * Wp + (p % Wo) * g.sw;
  const int threads = BgemmThreads(v, 2.0 * g.N * g.Cout * P * K, items);
  const int64_t slice = (Kw * lanes * v.split + 15) / 16 * 16;
  AlignedWords scratch(threads * slice);
  if (!scratch.ok()) return "binaryConv2d: out of memory for the panel scratch";
  const int64_t grain = std::max<int64_t>(1, items / (int64_t{16} * threads));
#pragma omp parallel for num_threads(threads) schedule(dynamic, grain) if (threads > 1)
  for (int64_t t = 0; t < items; t++) {
    const int64_t ng = t / panels, n = ng / g.groups, gr = ng % g.groups, p0 = (t % panels) * lanes;
    const int nl = static_cast<int>(std::min<int64_t>(lanes, P - p0));
    uint32_t* panel = scratch.data() + omp_get_thread_num() * slice;
    v.gather(xb.data() + ng * Cw * plane, poff.data() + p0, toff.data(), static_cast<int>(Kw), nl, panel);
    const bool border = corr && std::any_of(hasBorder + p0, hasBorder + p0 + nl, [](uint8_t f) { return f; });
    float* yp = y + (n * g.Cout + gr * Cog) * P + p0;
    const BgemmOut out{yp, static_cast<size_t>(P), border ? corr + gr * Cog * P + p0 : nullptr, static_cast<size_t>(P)};
    v.block(rows + gr * Cog * lda, lda, static_cast<int>(Cog), panel, static_cast<int>(Kw), static_cast<int>(K), out,
            nl);
    if (scale || bias) {  // the output transform while the panel's rows are still in cache
      for (int64_t m = 0; m < Cog; m++) {
        const float s = scale ? scale[gr * Cog + m] : 1.0f, b = bias ? bias[gr * Cog + m] : 0.0f;
        float* r = yp + m * P;
        for (int l = 0; l < nl; l++) r[l] = r[l] * s + b;
      }
    }
  }
  return "";
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

std::string BinaryConv2d(const float* x, const float* w, const BinaryConvGeom& g, double padValue, float* y) {
  try {
    PreparedBinaryConv prep;
    const std::string status = Prepare(w, g, padValue, prep);
    if (!status.empty()) return status;
    return Run(x, prep.rows.data(), prep.corr.empty() ? nullptr : prep.corr.data(), prep.hasBorder.data(), g, nullptr, nullptr, y);
  } catch (const std::bad_alloc&) {  // the std::vector work buffers; nothing else throws
    return "binaryConv2d: out of memory for the packed buffers";
  }
}

}  // namespace onebit
