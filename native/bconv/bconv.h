// Exact ±1 convolution: y = conv2d(sign(x) padded with padValue, sign(w)) (contract in
// core/backend.ts: binaryConv2d). x [N, C, H, W], w [Cout, C/groups, kh, kw], y [N, Cout, Ho, Wo]
// float32, all row-major; only the signs of x and w are read (bit 1 = −1 = x < 0).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace onebit {

struct BinaryConvGeom {
  int64_t N, C, H, W;        // input
  int64_t Cout, Cg, kh, kw;  // weights (Cg = C / groups)
  int64_t sh, sw, ph, pw, dh, dw, groups;
};

// Output spatial size (0 when the kernel does not fit the padded input).
inline int64_t BinaryConvOut(int64_t in, int64_t pad, int64_t k, int64_t stride, int64_t dil) {
  const int64_t span = in + 2 * pad - dil * (k - 1) - 1;
  return span < 0 || stride < 1 ? 0 : span / stride + 1;
}
inline int64_t BinaryConvHo(const BinaryConvGeom& g) { return BinaryConvOut(g.H, g.ph, g.kh, g.sh, g.dh); }
inline int64_t BinaryConvWo(const BinaryConvGeom& g) { return BinaryConvOut(g.W, g.pw, g.kw, g.sw, g.dw); }

// Returns "" or an error message (never throws). y must hold N·Cout·Ho·Wo floats. padValue is
// exact for 0 and ±1 (the contract's values); any other value is applied as the same formula.
// scale (Cout floats, may be null): y[n, co, :] = fl32(conv · scale[co]), applied in the GEMM
// epilogue (the same bits as the unscaled conv followed by that multiply). With sawNaN: the bit
// packing also checks x for NaN (no extra pass); on one, *sawNaN = 1 and y is left unspecified
// (the GEMM is skipped), else 0.
std::string BinaryConv2d(const float* x, const float* w, const BinaryConvGeom& g, double padValue, float* y,
                         const float* scale = nullptr, int* sawNaN = nullptr);

// Weights packed once for repeated forward passes (inference): rows in the selected GEMM variant's
// layout, and the border corrections for the geometry's H×W (corr empty when none are needed).
struct PreparedBinaryConv {
  std::vector<uint32_t> rows;
  std::vector<float> corr;        // [Cout][Ho·Wo], or empty
  std::vector<uint8_t> hasBorder; // [Ho·Wo]
};
std::string PrepareBinaryConv2d(const float* w, const BinaryConvGeom& g, double padValue, PreparedBinaryConv& prep);
// y = binaryConv2d(x) with prepared weights (g.N may differ from preparation; H, W must not), then
// y = y·scale[co] + bias[co] when scale / bias are given (either may be null).
std::string RunBinaryConv2d(const float* x, const PreparedBinaryConv& prep, const BinaryConvGeom& g, const float* scale,
                            const float* bias, float* y);
// The same with the prepared arrays held elsewhere (JavaScript typed arrays); corr may be null;
// thr (per input channel, may be null): the input bits are sign(x − thr[c]) instead of sign(x).
std::string RunBinaryConv2dRaw(const float* x, const uint32_t* rows, const float* corr, const uint8_t* hasBorder,
                               const BinaryConvGeom& g, const float* scale, const float* bias, float* y,
                               const float* thr = nullptr);

// What a run derives from the geometry alone (N aside) and the selected GEMM variant: the
// bit-im2col offsets (toff: patch word → plane offset; poff: output pixel → plane offset, padded
// to whole panels) and where each panel's border corrections are.
struct BinaryConvTables {
  int64_t Ho = 0, Wo = 0, P = 0, taps = 0, Cw = 0, Kw = 0, K = 0, Cog = 0, Hp = 0, Wp = 0, plane = 0, panels = 0;
  std::vector<int32_t> toff, poff;
  // Where panel pn's border corrections start in the corrections array (−1: the panel has none),
  // and the array's stride between output channels: p0 and P for the dense [Cout][P] table;
  // slot·Cout·lanes and lanes for a plan's panel-major copy (one [Cout][lanes] block per border
  // panel: the epilogue's reads are contiguous instead of P floats apart, like the stores).
  std::vector<int64_t> corrBase;
  int64_t corrRowStride = 0;
};

// A prepared conv that owns everything a forward pass needs besides x and y (the handle the N-API
// binding gives JavaScript): packed weights, border corrections, the tables, and a bit-plane
// workspace (grown to the largest batch seen; its zero border is written once, the interior is
// fully rewritten by every run). Not safe to run from two threads at once.
struct BinaryConvPlan {
  BinaryConvGeom g{};  // g.N unused
  PreparedBinaryConv prep;           // rows, hasBorder (corr is moved into corrPanels)
  std::vector<float> corrPanels;     // the same corrections, panel-major (see corrBase)
  BinaryConvTables tables;
  std::vector<uint32_t> xb;
  int64_t xbImages = 0;
};
std::string CreateBinaryConvPlan(const float* w, const BinaryConvGeom& g, double padValue, BinaryConvPlan& plan);

// The inference engine's `add` and `channel_act` after a binary conv, fused into the conv's
// epilogue: per output element of channel co, in float32 (each step rounded, no contraction),
// after the affine map: y = y + res (res [N, Cout, Ho, Wo], when given); then, when neg is given,
// u = y + b0[co], y = u·(u >= 0 ? pos[co] : neg[co]) + b1[co] (absent b0 / b1: 0, absent pos: 1)
// — exactly what the separate add and channelActF32 (native/eltwise) compute on the conv's output.
struct BinaryConvAct {
  const float* res;                  // or null
  const float *b0, *pos, *neg, *b1;  // [Cout] or null; no activation without neg
};

// y [N, Cout, Ho, Wo] = conv(sign(x − thr[c]), sign(w))·scale[co] + bias[co] for x [N, C, H, W]
// (thr, scale, bias each optional, as RunBinaryConv2dRaw; bit-identical to it), then the `act`
// tail when given.
std::string RunBinaryConvPlan(BinaryConvPlan& plan, const float* x, int64_t N, const float* scale, const float* bias,
                              const float* thr, float* y, const BinaryConvAct* act = nullptr);

}  // namespace onebit
