// oneDNN plumbing shared by the float kernels: one CPU engine + stream, a cache of primitives keyed
// by kernel + shapes + parameters (nothing is re-created per call), and "staged" arguments that
// wrap the caller's float32 buffers (the JS typed arrays, zero copy, any alignment) and reorder
// them to/from the blocked layout a primitive prefers.
//
// Layout policy. The Backend contract hands kernels plain row-major NCHW / OIHW / [M, K] arrays.
// Conv primitives are created with format_tag::any (oneDNN is fast only in its blocked layouts,
// see the engine study), so when the chosen layout differs from the user's, the argument is
// reordered per call into an internal buffer (and outputs back). The reorder primitives are
// cached with the conv primitive; the internal buffers come from a small grow-only arena shared by
// all kernels (kernels run one at a time under one mutex), so memory stays bounded by the largest
// kernel instead of growing with the number of cached shapes.
//
// Kernels never throw, print or exit: every entry point returns a status string (empty = ok); a
// dnnl::error is caught and turned into that string.
#pragma once
#include <oneapi/dnnl/dnnl.hpp>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>

namespace onebit {
namespace dnnlk {

using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

dnnl::engine& Engine();
dnnl::stream& Stream();
// Held for the whole of a kernel call (cache, arena and stream are shared).
std::mutex& KernelMutex();

// A 64-byte aligned, grow-only scratch buffer; `slot` 0..kSlots-1 (one per staged argument of a call).
constexpr int kSlots = 6;
void* Arena(int slot, size_t bytes);

// Cache of per-shape state (primitives, reorders, memory objects). Entries derive from CacheEntry.
struct CacheEntry {
  virtual ~CacheEntry() = default;
};
CacheEntry* CacheFind(const std::string& key);
// Takes ownership; returns the stored pointer. Evicts everything when the cache is full (simple
// and rare: a training run uses a few dozen shapes).
CacheEntry* CacheInsert(const std::string& key, std::unique_ptr<CacheEntry> entry);
size_t CacheSize();

// "conv_fwd:1,2,3,...,t2" from a kernel name, integer parameters and the current OpenMP thread count.
std::string Key(const char* kernel, std::initializer_list<int64_t> params);

template <class E, class Make>
E& Cached(const std::string& key, Make make) {
  if (CacheEntry* e = CacheFind(key)) return *static_cast<E*>(e);
  std::unique_ptr<E> fresh = make();
  return *static_cast<E*>(CacheInsert(key, std::move(fresh)));
}

// One argument of a primitive: the user's buffer in its plain layout and, when the primitive chose
// another layout, an internal buffer (arena slot) plus the cached reorder between the two.
struct Staged {
  dnnl::memory user;       // wraps the caller's buffer; handle set per call
  dnnl::memory inner;      // what the primitive reads/writes: == user when no reorder is needed
  dnnl::reorder reorder;   // user -> inner for inputs, inner -> user for outputs
  bool reorders = false;
  int slot = 0;
  size_t inner_bytes = 0;
};
// `is_input` selects the reorder direction; `slot` the arena buffer used when a reorder is needed.
Staged MakeStaged(const dnnl::memory::desc& user_md, const dnnl::memory::desc& prim_md, bool is_input, int slot);
// Points the argument at this call's buffer; for inputs also runs the reorder. Returns the memory
// to pass to the primitive.
dnnl::memory& BindInput(Staged& s, const float* data);
dnnl::memory& BindOutput(Staged& s, float* data);
// For outputs: copies the primitive's result back to the user's buffer (no-op without reorder).
void FinishOutput(Staged& s);

// A plain dense f32 descriptor of `dims` in row-major order (tag a, ab, abc, abcd, abcde).
dnnl::memory::desc PlainDesc(const dnnl::memory::dims& dims);

// Status text of a caught oneDNN error.
std::string ErrorText(const char* kernel, const dnnl::error& e);

}  // namespace dnnlk

// ---- the float kernels (row-major float32, outputs pre-zeroed by the caller) ----
// Conv geometry: x [N, C, H, W], w [Cout, C/groups, kh, kw], y [N, Cout, Ho, Wo];
// Ho = (H + 2·ph − dh·(kh−1) − 1)/sh + 1 (floor); dilation as in the Backend (1 = dense).
struct ConvGeom {
  int64_t N, C, H, W, Cout, kh, kw, sh, sw, ph, pw, dh, dw, groups;
  int64_t Ho() const { return (H + 2 * ph - dh * (kh - 1) - 1) / sh + 1; }
  int64_t Wo() const { return (W + 2 * pw - dw * (kw - 1) - 1) / sw + 1; }
};
std::string DnnlConv2d(const ConvGeom& g, const float* x, const float* w, float* y);

// A forward conv prepared once for inference (conv2d_prepared.cc): y = conv(x, w) + bias[co]
// (bias optional, fused into the primitive), x / y plain NCHW, w plain OIHW. The weights are
// copied at preparation and reordered into each primitive's layout once; the primitive (and its
// src / dst reorders, when the chosen layout is blocked) is created on the first run for each
// (batch size, thread count) and kept. Layout: kPreparedAuto picks per shape (see the .cc);
// kPreparedBlocked forces oneDNN's preferred (blocked) layouts with NCHW reorders in and out;
// kPreparedPlain forces plain NCHW src / dst (no reorders; oneDNN's GEMM-based conv).
enum PreparedConvLayout { kPreparedAuto = 0, kPreparedBlocked = 1, kPreparedPlain = 2 };
struct PreparedConv2d;
// Returns "" or an error; on success `out` owns the prepared conv (free with DeletePreparedConv2d).
std::string CreatePreparedConv2d(const ConvGeom& g, const float* w, const float* bias, int layout, PreparedConv2d*& out);
std::string RunPreparedConv2d(PreparedConv2d& pc, const float* x, int64_t N, float* y);
void DeletePreparedConv2d(PreparedConv2d* pc);
const ConvGeom& PreparedConv2dGeom(const PreparedConv2d& pc);  // N = 0
std::string DnnlConv2dBackwardInput(const ConvGeom& g, const float* dy, const float* w, float* dx);
std::string DnnlConv2dBackwardFilter(const ConvGeom& g, const float* x, const float* dy, float* dw);
// The backward of a conv on sign(x) with a pointwise pseudo-gradient (conv2d_sign_backward.cc):
// dw = backward_weights(sign(x), dy), dx = grad(backward_data(dy, w), x); mode 0 clipped STE (clip),
// 1 ApproxSign. groups 1 only. With dxAddend (x's size, may be null): dx = grad(…) + dxAddend,
// the add in float32 (what the tape would otherwise do in a separate pass).
std::string DnnlConv2dBackwardSign(const ConvGeom& g, const float* x, const float* dy, const float* w, int mode,
                                   double clip, float* dx, float* dw, const float* dxAddend = nullptr);

// C[M, N] = op(A)·op(B); A is [M, K] (or [K, M] if transA), B is [K, N] (or [N, K] if transB).
std::string DnnlMatmul(const float* a, const float* b, float* c, int64_t m, int64_t k, int64_t n, bool transA, bool transB);

// Batch norm over x [N, C, S] (S = product of the spatial dims), channel axis 1.
std::string BatchNormStats(const float* x, int64_t N, int64_t C, int64_t S, float* mean, float* variance);
std::string BatchNormApply(const float* x, int64_t N, int64_t C, int64_t S, const float* mean, const float* invStd,
                           const float* gamma, const float* beta, const float* residual, float* y);
std::string BatchNormBackward(const float* dy, const float* x, int64_t N, int64_t C, int64_t S, const float* mean,
                              const float* invStd, const float* gamma, float* dx, float* dgamma, float* dbeta);

// Pooling over x [N, C, H, W]; Ho = (H + 2·ph − kh)/sh + 1 (floor).
struct PoolGeom {
  int64_t N, C, H, W, kh, kw, sh, sw, ph, pw;
  int64_t Ho() const { return (H + 2 * ph - kh) / sh + 1; }
  int64_t Wo() const { return (W + 2 * pw - kw) / sw + 1; }
};
std::string MaxPool2d(const PoolGeom& g, const float* x, float* y, int32_t* argmax);
std::string MaxPool2dBackward(const float* dy, const int32_t* argmax, int64_t n, float* dx, int64_t xSize);
std::string AvgPool2d(const PoolGeom& g, const float* x, float* y);
std::string AvgPool2dBackward(const PoolGeom& g, const float* dy, float* dx);

}  // namespace onebit
