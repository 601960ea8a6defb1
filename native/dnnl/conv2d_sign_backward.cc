// Backward of a binary conv whose input quantizer is a sign fused into the packed forward
// (ops/binary_forward.ts `packedSignConv2d`): from the layer input x (float, NCHW), dL/dy and the
// quantized weights w it computes, in one call,
//   dw = conv_backward_weights(sign(x), dy)             (zero padding)
//   dx = grad(conv_backward_data(dy, w), x)             grad: the quantizer's pointwise pseudo-gradient
// with the same oneDNN primitives as DnnlConv2dBackwardInput / DnnlConv2dBackwardFilter, so the
// results are bit-identical to those two calls followed by the sign and the gradient kernels.
//
// What it saves is memory traffic around the primitives, which prefer the blocked layout nChw8c
// (AVX2) / nChw16c (AVX-512) while the Backend contract is NCHW:
//   - dy is reordered to the blocked layout once and read by both primitives (two reorders before);
//   - sign(x) is written straight into the blocked source buffer (was: a sign pass into a NCHW
//     buffer, then a reorder);
//   - the blocked dL/d sign(x) is turned back into NCHW with the pseudo-gradient applied in the
//     same pass (was: a reorder, then a separate elementwise pass), and that pass, which reads x
//     for the gradient, also writes the blocked signs (was: a second pass over x).
// The direct paths are used when the primitive picked the plain blocked layout aBcd8b / aBcd16b
// and C is a multiple of the block (no padded channels); otherwise the generic reorders run.
//
//   grad mode 0: clipped STE       out = (-clip <= x <= clip) ? d : 0   (compared as in eltwise.cc)
//   grad mode 1: ApproxSign        out = fl32(d · max(2 − 2|x|, 0))    (in double, as eltwise.cc)
// then, with an addend (the gradient already summed for x on the tape), out = out + addend in
// float32, while the row is still in L1: the tape's separate in-place add, without its pass.
#include <omp.h>

#include <cmath>
#include <limits>

#include "common.h"
#include "dnnl/dnnl_common.h"

namespace onebit {
using namespace dnnlk;

namespace {

struct SignBwdEntry : CacheEntry {
  dnnl::convolution_backward_data data;
  dnnl::convolution_backward_weights weights;
  Staged dyData, w, dx;  // arguments of the data primitive
  Staged src, dyWeights, dw;  // arguments of the weights primitive
  bool shareDy = false;  // both primitives read dy in the same layout: reorder once
  int srcBlock = 0;      // 8 or 16 when src is aBcd{8,16}b with C % block == 0: signs written directly
  int dxBlock = 0;       // likewise for diff_src: unblocked with the gradient applied
};

dnnl::memory::desc Blocked(const ConvGeom& g, int block) {
  return dnnl::memory::desc({g.N, g.C, g.H, g.W}, dt::f32, block == 8 ? tag::aBcd8b : tag::aBcd16b);
}

// 8 or 16 when md is x's shape in aBcd8b / aBcd16b and C is a multiple of the block, else 0.
int BlockOf(const ConvGeom& g, const dnnl::memory::desc& md) {
  for (int b : {8, 16}) {
    if (g.C % b == 0 && md == Blocked(g, b)) return b;
  }
  return 0;
}

struct Grad {
  int mode;
  float hi;  // clipped STE: passes -hi <= x <= hi (ClipBoundF32 in common.h)
};

// The element loops below are written so GCC vectorizes them (branch-free selects over restrict
// pointers, one mode per loop); the layout change goes through a small stack tile, contiguous on
// the NCHW side. A first version with the select and the layout change in one scalar loop spent
// ~110 ms per ResNet-20 step in branch mispredictions (measured).
constexpr int64_t kTile = 256;

void SignRow(const float* __restrict x, float* __restrict out, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    const float v = x[i];
    const float r = v >= 0.f ? 1.f : -1.f;
    out[i] = v != v ? v : r;
  }
}

void SteRow(const float* __restrict d, const float* __restrict x, float* __restrict out, int64_t n, float hi, float lo) {
  for (int64_t i = 0; i < n; i++) {
    const float v = x[i], dv = d[i];
    out[i] = (v <= hi) & (v >= lo) ? dv : 0.f;
  }
}

void ApproxRow(const float* __restrict d, const float* __restrict x, float* __restrict out, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    const double v = x[i], dv = d[i];
    const double raw = 2.0 - 2.0 * std::fabs(v);
    const double k = raw > 0.0 ? raw : 0.0;
    out[i] = static_cast<float>(dv * k);
  }
}

void AddRow(const float* __restrict a, float* __restrict out, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] += a[i];
}

// out = grad(d, x) (+ add when given; out must not alias d or x; add may be out itself: then
// out += grad, the same bits as float addition commutes). n <= kTile.
void GradRow(const Grad& gr, const float* d, const float* x, const float* add, float* out, int64_t n) {
  if (add == out) {
    float g[kTile];
    if (gr.mode == 0) SteRow(d, x, g, n, gr.hi, -gr.hi);
    else ApproxRow(d, x, g, n);
    AddRow(g, out, n);
    return;
  }
  if (gr.mode == 0) SteRow(d, x, out, n, gr.hi, -gr.hi);
  else ApproxRow(d, x, out, n);
  if (add) AddRow(add, out, n);
}

// x NCHW -> sign(x) (±1; sign(0) = +1, NaN stays NaN) in aBcd{B}b.
template <int B>
void SignToBlocked(const ConvGeom& g, const float* x, float* out) {
  const int64_t S = g.H * g.W, CB = g.C / B;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < g.N; n++) {
    for (int64_t cb = 0; cb < CB; cb++) {
      float tile[kTile];
      float* o = out + (n * CB + cb) * S * B;
      const float* xs = x + (n * g.C + cb * B) * S;
      for (int64_t s0 = 0; s0 < S; s0 += kTile) {
        const int64_t len = S - s0 < kTile ? S - s0 : kTile;
        for (int c = 0; c < B; c++) {
          SignRow(xs + c * S + s0, tile, len);
          float* oc = o + s0 * B + c;
          for (int64_t s = 0; s < len; s++) oc[s * B] = tile[s];
        }
      }
    }
  }
}

// d in aBcd{B}b -> out NCHW with out = grad(d, x) (+ add); with `sign`, also SignToBlocked's
// output there, from the x rows this pass reads anyway (one pass over x instead of two). The
// layout change goes through B row tiles, so both the blocked reads and writes are contiguous.
template <int B>
void UnblockGrad(const ConvGeom& g, const float* d, const float* x, const Grad& gr, const float* add, float* out,
                 float* sign) {
  const int64_t S = g.H * g.W, CB = g.C / B;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < g.N; n++) {
    for (int64_t cb = 0; cb < CB; cb++) {
      alignas(32) float rows[B][kTile];
      const float* ds = d + (n * CB + cb) * S * B;
      const int64_t base = (n * g.C + cb * B) * S;
      for (int64_t s0 = 0; s0 < S; s0 += kTile) {
        const int64_t len = S - s0 < kTile ? S - s0 : kTile;
        const float* db = ds + s0 * B;
        for (int64_t s = 0; s < len; s++) {
          for (int j = 0; j < B; j++) rows[j][s] = db[s * B + j];
        }
        for (int j = 0; j < B; j++) {
          const int64_t o = base + j * S + s0;
          GradRow(gr, rows[j], x + o, add ? add + o : nullptr, out + o, len);
        }
        if (sign) {
          for (int j = 0; j < B; j++) SignRow(x + base + j * S + s0, rows[j], len);
          float* sb = sign + (n * CB + cb) * S * B + s0 * B;
          for (int64_t s = 0; s < len; s++) {
            for (int j = 0; j < B; j++) sb[s * B + j] = rows[j][s];
          }
        }
      }
    }
  }
}

std::string ConvKey(const ConvGeom& g) {
  return Key("conv_sign_bwd", {g.N, g.C, g.H, g.W, g.Cout, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.groups});
}

}  // namespace

std::string DnnlConv2dBackwardSign(const ConvGeom& g, const float* x, const float* dy, const float* w, int mode,
                                   double clip, float* dx, float* dw, const float* dxAddend) {
  if (g.groups != 1) return "conv2dBackwardSign: groups must be 1";
  if (mode != 0 && mode != 1) return "conv2dBackwardSign: unknown gradient mode";
  if (g.N == 0 || g.C == 0 || g.Cout == 0 || g.H == 0 || g.W == 0) return "";
  const Grad gr{mode, mode == 0 ? ClipBoundF32(clip) : 0.f};
  std::lock_guard<std::mutex> lock(KernelMutex());
  try {
    SignBwdEntry& e = Cached<SignBwdEntry>(ConvKey(g), [&] {
      const dnnl::memory::desc xu = PlainDesc({g.N, g.C, g.H, g.W}), yu = PlainDesc({g.N, g.Cout, g.Ho(), g.Wo()}),
                               wu = PlainDesc({g.Cout, g.C, g.kh, g.kw});
      const dnnl::memory::desc xa({g.N, g.C, g.H, g.W}, dt::f32, tag::any), ya({g.N, g.Cout, g.Ho(), g.Wo()}, dt::f32, tag::any),
          wa({g.Cout, g.C, g.kh, g.kw}, dt::f32, tag::any);
      const dnnl::memory::dims strides{g.sh, g.sw}, dil{g.dh - 1, g.dw - 1}, pad{g.ph, g.pw};
      dnnl::convolution_forward::primitive_desc hint(
          dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, xa, wa, ya,
                                          strides, dil, pad, pad),
          Engine());
      dnnl::convolution_backward_data::primitive_desc pdd(
          dnnl::convolution_backward_data::desc(dnnl::algorithm::convolution_direct, xa, wa, ya, strides, dil, pad, pad), Engine(),
          hint);
      dnnl::convolution_backward_weights::primitive_desc pdw(
          dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, xa, wa, ya, strides, dil, pad, pad),
          Engine(), hint);
      auto e = std::make_unique<SignBwdEntry>();
      e->data = dnnl::convolution_backward_data(pdd);
      e->weights = dnnl::convolution_backward_weights(pdw);
      e->dyData = MakeStaged(yu, pdd.diff_dst_desc(), true, 0);
      e->w = MakeStaged(wu, pdd.weights_desc(), true, 1);
      e->dx = MakeStaged(xu, pdd.diff_src_desc(), false, 2);
      e->src = MakeStaged(xu, pdw.src_desc(), true, 3);
      e->shareDy = pdw.diff_dst_desc() == pdd.diff_dst_desc();
      e->dyWeights = MakeStaged(yu, pdw.diff_dst_desc(), true, e->shareDy ? 0 : 4);
      e->dw = MakeStaged(wu, pdw.diff_weights_desc(), false, 5);
      e->srcBlock = BlockOf(g, pdw.src_desc());
      e->dxBlock = BlockOf(g, pdd.diff_src_desc());
      return e;
    });
    // dx == dxAddend (accumulate in place): the generic path below writes the data gradient into
    // dx before adding, so it adds from a copy.
    std::vector<float> addCopy;
    if (dxAddend == dx && !e.dxBlock) {
      addCopy.assign(dx, dx + g.N * g.C * g.H * g.W);
      dxAddend = addCopy.data();
    }
    // dL/d sign(x) = conv_backward_data(dy, w), left in the primitive's layout.
    dnnl::memory& mdy = BindInput(e.dyData, dy);
    dnnl::memory& mw = BindInput(e.w, w);
    dnnl::memory& mdx = BindOutput(e.dx, dx);
    e.data.execute(Stream(), {{DNNL_ARG_DIFF_DST, mdy}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DIFF_SRC, mdx}});
    Stream().wait();
    const float* dq = static_cast<const float*>(mdx.get_data_handle());
    // The blocked sign buffer of the weights primitive, when it can be written directly.
    float* signs = nullptr;
    if (e.srcBlock) {
      e.src.user.set_data_handle(const_cast<float*>(x));  // unused by the primitive; keeps the handle valid
      e.src.inner.set_data_handle(Arena(3, e.src.inner_bytes));
      signs = static_cast<float*>(e.src.inner.get_data_handle());
      if (!signs) return "conv2dBackwardSign: out of memory for the sign buffer";
    }
    // Same block size on both sides (the usual case): the unblocking pass writes the signs too.
    const bool signsInUnblock = signs && e.srcBlock == e.dxBlock;
    if (e.dxBlock == 8) {
      UnblockGrad<8>(g, dq, x, gr, dxAddend, dx, signsInUnblock ? signs : nullptr);
    } else if (e.dxBlock == 16) {
      UnblockGrad<16>(g, dq, x, gr, dxAddend, dx, signsInUnblock ? signs : nullptr);
    } else {
      FinishOutput(e.dx);
      Stream().wait();
      const int64_t n = g.N * g.C * g.H * g.W;
#pragma omp parallel for schedule(static)
      for (int64_t i0 = 0; i0 < n; i0 += kTile) {
        float tile[kTile];  // GradRow's inputs and output must not alias
        const int64_t len = n - i0 < kTile ? n - i0 : kTile;
        for (int64_t i = 0; i < len; i++) tile[i] = dx[i0 + i];
        GradRow(gr, tile, x + i0, dxAddend ? dxAddend + i0 : nullptr, dx + i0, len);
      }
    }
    // dw = conv_backward_weights(sign(x), dy).
    dnnl::memory* msrc;
    std::vector<float> plain;  // the generic path: sign(x) in NCHW, then the primitive's reorder
    if (signs) {
      if (!signsInUnblock) {
        if (e.srcBlock == 8) SignToBlocked<8>(g, x, signs);
        else SignToBlocked<16>(g, x, signs);
      }
      msrc = &e.src.inner;
    } else {
      const int64_t n = g.N * g.C * g.H * g.W;
      plain.resize(static_cast<size_t>(n));
      float* pl = plain.data();
#pragma omp parallel for schedule(static)
      for (int64_t i0 = 0; i0 < n; i0 += kTile) SignRow(x + i0, pl + i0, n - i0 < kTile ? n - i0 : kTile);
      msrc = &BindInput(e.src, plain.data());
    }
    dnnl::memory& mdyw = e.shareDy ? mdy : BindInput(e.dyWeights, dy);
    dnnl::memory& mdw = BindOutput(e.dw, dw);
    e.weights.execute(Stream(), {{DNNL_ARG_SRC, *msrc}, {DNNL_ARG_DIFF_DST, mdyw}, {DNNL_ARG_DIFF_WEIGHTS, mdw}});
    FinishOutput(e.dw);
    Stream().wait();
    return "";
  } catch (const dnnl::error& err) {
    return ErrorText("conv2dBackwardSign", err);
  } catch (const std::exception& err) {
    return std::string("conv2dBackwardSign: ") + err.what();
  }
}

}  // namespace onebit
