// 2-D convolution through oneDNN's direct conv primitives: forward, backward data, backward
// weights (no bias). Geometry as in backends/ref/conv2d.ts: stride, zero padding (symmetric; the
// right/bottom pad is the left/top one, oneDNN floors the output size like we do), dilation
// (ours counts the tap spacing, 1 = dense; oneDNN counts the holes, so it gets ours − 1) and
// groups (weights described as [G, Cout/G, C/G, kh, kw], the same bytes as our OIHW).
//
// The primitives are created with format_tag::any, so oneDNN picks its blocked layouts
// (nChw16c / OIhw16i16o on AVX-512); each argument whose chosen layout differs from plain NCHW /
// OIHW is reordered per call (cached reorder primitives, arena buffers), see dnnl_common.h.
#include "dnnl/dnnl_common.h"

namespace onebit {
using namespace dnnlk;

namespace {

struct ConvDescs {
  dnnl::memory::desc x, w, y;          // user (plain) layouts
  dnnl::memory::desc x_any, w_any, y_any;
  dnnl::memory::dims strides, dilates, pad_l, pad_r;
};

ConvDescs Describe(const ConvGeom& g) {
  ConvDescs d;
  const int64_t Cg = g.C / g.groups;
  d.x = PlainDesc({g.N, g.C, g.H, g.W});
  d.y = PlainDesc({g.N, g.Cout, g.Ho(), g.Wo()});
  dnnl::memory::dims wdims = g.groups == 1 ? dnnl::memory::dims{g.Cout, Cg, g.kh, g.kw}
                                           : dnnl::memory::dims{g.groups, g.Cout / g.groups, Cg, g.kh, g.kw};
  d.w = PlainDesc(wdims);
  d.x_any = dnnl::memory::desc({g.N, g.C, g.H, g.W}, dt::f32, tag::any);
  d.y_any = dnnl::memory::desc({g.N, g.Cout, g.Ho(), g.Wo()}, dt::f32, tag::any);
  d.w_any = dnnl::memory::desc(wdims, dt::f32, tag::any);
  d.strides = {g.sh, g.sw};
  d.dilates = {g.dh - 1, g.dw - 1};
  d.pad_l = {g.ph, g.pw};
  d.pad_r = {g.ph, g.pw};
  return d;
}

dnnl::convolution_forward::primitive_desc ForwardPd(const ConvDescs& d) {
  dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, d.x_any,
                                       d.w_any, d.y_any, d.strides, d.dilates, d.pad_l, d.pad_r);
  return dnnl::convolution_forward::primitive_desc(desc, Engine());
}

std::string GeomKey(const char* kernel, const ConvGeom& g) {
  return Key(kernel, {g.N, g.C, g.H, g.W, g.Cout, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.groups});
}

bool Empty(const ConvGeom& g) {
  return g.N == 0 || g.C == 0 || g.Cout == 0 || g.H == 0 || g.W == 0 || g.kh == 0 || g.kw == 0;
}

struct FwdEntry : CacheEntry {
  dnnl::convolution_forward prim;
  Staged x, w, y;
};

struct BwdDataEntry : CacheEntry {
  dnnl::convolution_backward_data prim;
  Staged dy, w, dx;
};

struct BwdWeightsEntry : CacheEntry {
  dnnl::convolution_backward_weights prim;
  Staged x, dy, dw;
};

}  // namespace

std::string DnnlConv2d(const ConvGeom& g, const float* x, const float* w, float* y) {
  if (Empty(g)) return "";  // y is pre-zeroed: an empty sum
  std::lock_guard<std::mutex> lock(KernelMutex());
  try {
    FwdEntry& e = Cached<FwdEntry>(GeomKey("conv_fwd", g), [&] {
      ConvDescs d = Describe(g);
      auto pd = ForwardPd(d);
      auto e = std::make_unique<FwdEntry>();
      e->prim = dnnl::convolution_forward(pd);
      e->x = MakeStaged(d.x, pd.src_desc(), true, 0);
      e->w = MakeStaged(d.w, pd.weights_desc(), true, 1);
      e->y = MakeStaged(d.y, pd.dst_desc(), false, 2);
      return e;
    });
    auto& mx = BindInput(e.x, x);
    auto& mw = BindInput(e.w, w);
    auto& my = BindOutput(e.y, y);
    e.prim.execute(Stream(), {{DNNL_ARG_SRC, mx}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, my}});
    FinishOutput(e.y);
    Stream().wait();
    return "";
  } catch (const dnnl::error& err) {
    return ErrorText("conv2d", err);
  } catch (const std::exception& err) {
    return std::string("conv2d: ") + err.what();
  }
}

std::string DnnlConv2dBackwardInput(const ConvGeom& g, const float* dy, const float* w, float* dx) {
  if (Empty(g)) return "";
  std::lock_guard<std::mutex> lock(KernelMutex());
  try {
    BwdDataEntry& e = Cached<BwdDataEntry>(GeomKey("conv_bwd_data", g), [&] {
      ConvDescs d = Describe(g);
      auto hint = ForwardPd(d);
      dnnl::convolution_backward_data::desc desc(dnnl::algorithm::convolution_direct, d.x_any, d.w_any, d.y_any,
                                                 d.strides, d.dilates, d.pad_l, d.pad_r);
      dnnl::convolution_backward_data::primitive_desc pd(desc, Engine(), hint);
      auto e = std::make_unique<BwdDataEntry>();
      e->prim = dnnl::convolution_backward_data(pd);
      e->dy = MakeStaged(d.y, pd.diff_dst_desc(), true, 0);
      e->w = MakeStaged(d.w, pd.weights_desc(), true, 1);
      e->dx = MakeStaged(d.x, pd.diff_src_desc(), false, 2);
      return e;
    });
    auto& mdy = BindInput(e.dy, dy);
    auto& mw = BindInput(e.w, w);
    auto& mdx = BindOutput(e.dx, dx);
    e.prim.execute(Stream(), {{DNNL_ARG_DIFF_DST, mdy}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DIFF_SRC, mdx}});
    FinishOutput(e.dx);
    Stream().wait();
    return "";
  } catch (const dnnl::error& err) {
    return ErrorText("conv2dBackwardInput", err);
  } catch (const std::exception& err) {
    return std::string("conv2dBackwardInput: ") + err.what();
  }
}

std::string DnnlConv2dBackwardFilter(const ConvGeom& g, const float* x, const float* dy, float* dw) {
  if (Empty(g)) return "";
  std::lock_guard<std::mutex> lock(KernelMutex());
  try {
    BwdWeightsEntry& e = Cached<BwdWeightsEntry>(GeomKey("conv_bwd_weights", g), [&] {
      ConvDescs d = Describe(g);
      auto hint = ForwardPd(d);
      dnnl::convolution_backward_weights::desc desc(dnnl::algorithm::convolution_direct, d.x_any, d.w_any, d.y_any,
                                                    d.strides, d.dilates, d.pad_l, d.pad_r);
      dnnl::convolution_backward_weights::primitive_desc pd(desc, Engine(), hint);
      auto e = std::make_unique<BwdWeightsEntry>();
      e->prim = dnnl::convolution_backward_weights(pd);
      e->x = MakeStaged(d.x, pd.src_desc(), true, 0);
      e->dy = MakeStaged(d.y, pd.diff_dst_desc(), true, 1);
      e->dw = MakeStaged(d.w, pd.diff_weights_desc(), false, 2);
      return e;
    });
    auto& mx = BindInput(e.x, x);
    auto& mdy = BindInput(e.dy, dy);
    auto& mdw = BindOutput(e.dw, dw);
    e.prim.execute(Stream(), {{DNNL_ARG_SRC, mx}, {DNNL_ARG_DIFF_DST, mdy}, {DNNL_ARG_DIFF_WEIGHTS, mdw}});
    FinishOutput(e.dw);
    Stream().wait();
    return "";
  } catch (const dnnl::error& err) {
    return ErrorText("conv2dBackwardFilter", err);
  } catch (const std::exception& err) {
    return std::string("conv2dBackwardFilter: ") + err.what();
  }
}

}  // namespace onebit
