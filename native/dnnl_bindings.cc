// N-API bindings of the float kernels (native/dnnl/). Every function writes into output typed
// arrays allocated (zero-filled) by the caller in JS and passed first — zero copy both ways — and
// returns undefined; on bad arguments or a kernel failure it throws one JS Error. Array lengths are
// checked against the shapes here (the kernels trust them). Booleans are passed as 0/1.
//
// Argument order (F32 = Float32Array, I32 = Int32Array, the rest numbers):
//   conv2d(y F32, x F32, w F32, ...G)                      G = N, C, H, W, Cout, kh, kw, sh, sw, ph, pw, dh, dw, groups
//   conv2dBackwardInput(dx F32, dy F32, w F32, ...G)       (dilation: 1 = dense, as in the Backend)
//   conv2dBackwardFilter(dw F32, x F32, dy F32, ...G)
//   conv2dBackwardSign(dx F32, dw F32, x F32, dy F32, w F32, mode, clip, ...G)   groups 1: dw = dW(sign(x), dy),
//       dx = grad(dX(dy, w), x), grad mode 0 clipped STE (|x| <= clip), 1 ApproxSign (conv2d_sign_backward.cc);
//       an optional 22nd argument dxAddend F32 (x's size) is added to dx in the same pass
//   conv2dCreate(w F32, bias F32 | null, ...G, layout?) → handle   inference conv prepared once (N in G
//       ignored): weights copied and reordered once per primitive, bias fused; layout 0 auto (default),
//       1 blocked with NCHW reorders, 2 plain NCHW (see native/dnnl/conv2d_prepared.cc). Freed by GC.
//   conv2dExec(handle, y F32, x F32, n)                    y = conv(x, w) + bias for a batch of n
//   matmul(c F32, a F32, b F32, m, k, n, transA, transB)
//   batchNormStats(mean F32, variance F32, x F32, N, C, S)                        S = product of spatial dims
//   batchNormApply(y F32, x F32, mean F32, invStd F32, gamma F32, beta F32, N, C, S[, residual F32])
//        residual (optional, N·C·S): y = apply(x) + residual, the add in float32
//   batchNormBackward(dx F32, dgamma F32, dbeta F32, dy F32, x F32, mean F32, invStd F32, gamma F32, N, C, S)
//   maxPool2d(y F32, argmax I32, x F32, ...P)              P = N, C, H, W, kh, kw, sh, sw, ph, pw
//   maxPool2dBackward(dx F32, dy F32, argmax I32)          (xSize = dx.length)
//   avgPool2d(y F32, x F32, ...P)
//   avgPool2dBackward(dx F32, dy F32, ...P)
#include "common.h"
#include "dnnl/dnnl_common.h"

namespace onebit {

namespace {

constexpr napi_typedarray_type kF32 = napi_float32_array;
constexpr napi_typedarray_type kI32 = napi_int32_array;

// Reads `count` integer arguments starting at `first` into out[]; false (JS error pending) if any is
// missing, not a number, or negative.
bool GetInts(const Napi::CallbackInfo& info, size_t first, size_t count, int64_t* out, const char* fn) {
  for (size_t i = 0; i < count; i++) {
    out[i] = GetInt(info, first + i);
    if (out[i] < 0) {
      Fail(info.Env(), std::string(fn) + ": argument " + std::to_string(first + i) + " must be a non-negative integer");
      return false;
    }
  }
  return true;
}

bool CheckLen(Napi::Env env, const char* fn, const char* what, size_t got, int64_t want) {
  if (static_cast<int64_t>(got) == want) return true;
  Fail(env, std::string(fn) + ": " + what + " has " + std::to_string(got) + " elements, expected " + std::to_string(want));
  return false;
}

Napi::Value Done(Napi::Env env, const std::string& status) {
  if (!status.empty()) return Fail(env, status);
  return env.Undefined();
}

// Conv kernels share the argument layout (out, in1, in2, ...G); `which` selects the kernel.
enum class ConvKind { kForward, kBackwardInput, kBackwardFilter };

Napi::Value ConvCommon(const Napi::CallbackInfo& info, ConvKind kind, const char* fn) {
  Napi::Env env = info.Env();
  float *out, *a, *b;
  size_t nOut, nA, nB;
  if (!GetArray(info, 0, kF32, out, nOut) || !GetArray(info, 1, kF32, a, nA) || !GetArray(info, 2, kF32, b, nB)) return env.Undefined();
  int64_t v[14];
  if (!GetInts(info, 3, 14, v, fn)) return env.Undefined();
  ConvGeom g{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13]};
  if (g.groups < 1 || g.C % g.groups != 0 || g.Cout % g.groups != 0 || g.sh < 1 || g.sw < 1 || g.dh < 1 || g.dw < 1) {
    return Fail(env, std::string(fn) + ": invalid geometry (groups must divide C and Cout; stride and dilation >= 1)");
  }
  const int64_t Ho = g.Ho(), Wo = g.Wo();
  if (g.H + 2 * g.ph - g.dh * (g.kh - 1) - 1 < 0 || g.W + 2 * g.pw - g.dw * (g.kw - 1) - 1 < 0) {
    return Fail(env, std::string(fn) + ": the dilated kernel is larger than the padded input");
  }
  const int64_t xSize = g.N * g.C * g.H * g.W, wSize = g.Cout * (g.C / g.groups) * g.kh * g.kw, ySize = g.N * g.Cout * Ho * Wo;
  switch (kind) {
    case ConvKind::kForward:
      if (!CheckLen(env, fn, "y", nOut, ySize) || !CheckLen(env, fn, "x", nA, xSize) || !CheckLen(env, fn, "w", nB, wSize)) return env.Undefined();
      return Done(env, DnnlConv2d(g, a, b, out));
    case ConvKind::kBackwardInput:
      if (!CheckLen(env, fn, "dx", nOut, xSize) || !CheckLen(env, fn, "dy", nA, ySize) || !CheckLen(env, fn, "w", nB, wSize)) return env.Undefined();
      return Done(env, DnnlConv2dBackwardInput(g, a, b, out));
    case ConvKind::kBackwardFilter:
      if (!CheckLen(env, fn, "dw", nOut, wSize) || !CheckLen(env, fn, "x", nA, xSize) || !CheckLen(env, fn, "dy", nB, ySize)) return env.Undefined();
      return Done(env, DnnlConv2dBackwardFilter(g, a, b, out));
  }
  return env.Undefined();
}

Napi::Value Conv2d(const Napi::CallbackInfo& info) { return ConvCommon(info, ConvKind::kForward, "conv2d"); }
Napi::Value Conv2dBackwardInput(const Napi::CallbackInfo& info) { return ConvCommon(info, ConvKind::kBackwardInput, "conv2dBackwardInput"); }
Napi::Value Conv2dBackwardFilter(const Napi::CallbackInfo& info) { return ConvCommon(info, ConvKind::kBackwardFilter, "conv2dBackwardFilter"); }

// Marks the externals conv2dCreate returns, so conv2dExec rejects any other value.
const napi_type_tag kPreparedConvTag = {0x6f6e656269746463ULL, 0x6f6e767072657061ULL};

// Geometry check shared with ConvCommon's: false with a JS error pending.
bool ConvGeomOk(Napi::Env env, const ConvGeom& g, const char* fn) {
  if (g.groups < 1 || g.C % g.groups != 0 || g.Cout % g.groups != 0 || g.sh < 1 || g.sw < 1 || g.dh < 1 || g.dw < 1 ||
      g.C < 1 || g.H < 1 || g.W < 1 || g.kh < 1 || g.kw < 1) {
    Fail(env, std::string(fn) + ": invalid geometry (positive sizes; groups must divide C and Cout; stride and dilation >= 1)");
    return false;
  }
  if (g.H + 2 * g.ph - g.dh * (g.kh - 1) - 1 < 0 || g.W + 2 * g.pw - g.dw * (g.kw - 1) - 1 < 0) {
    Fail(env, std::string(fn) + ": the dilated kernel is larger than the padded input");
    return false;
  }
  return true;
}

Napi::Value Conv2dBackwardSign(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* fn = "conv2dBackwardSign";
  float *dx, *dw, *x, *dy, *w;
  size_t ndx, ndw, nx, ndy, nw;
  if (!GetArray(info, 0, kF32, dx, ndx) || !GetArray(info, 1, kF32, dw, ndw) || !GetArray(info, 2, kF32, x, nx) ||
      !GetArray(info, 3, kF32, dy, ndy) || !GetArray(info, 4, kF32, w, nw)) {
    return env.Undefined();
  }
  if (info.Length() < 21 || !info[5].IsNumber() || !info[6].IsNumber()) return Fail(env, std::string(fn) + ": expected mode, clip and 14 geometry numbers");
  const int64_t mode = GetInt(info, 5);
  const double clip = info[6].As<Napi::Number>().DoubleValue();
  int64_t v[14];
  if (!GetInts(info, 7, 14, v, fn)) return env.Undefined();
  ConvGeom g{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13]};
  if (!ConvGeomOk(env, g, fn)) return env.Undefined();
  const int64_t xSize = g.N * g.C * g.H * g.W, wSize = g.Cout * (g.C / g.groups) * g.kh * g.kw, ySize = g.N * g.Cout * g.Ho() * g.Wo();
  if (!CheckLen(env, fn, "dx", ndx, xSize) || !CheckLen(env, fn, "dw", ndw, wSize) || !CheckLen(env, fn, "x", nx, xSize) ||
      !CheckLen(env, fn, "dy", ndy, ySize) || !CheckLen(env, fn, "w", nw, wSize)) {
    return env.Undefined();
  }
  float* addend = nullptr;
  if (info.Length() > 21 && !info[21].IsNull() && !info[21].IsUndefined()) {
    size_t na;
    if (!GetArray(info, 21, kF32, addend, na) || !CheckLen(env, fn, "dxAddend", na, xSize)) return env.Undefined();
  }
  return Done(env, DnnlConv2dBackwardSign(g, x, dy, w, static_cast<int>(mode), clip, dx, dw, addend));
}

Napi::Value Conv2dCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* fn = "conv2dCreate";
  float *w, *bias = nullptr;
  size_t nw, nb = 0;
  if (!GetArray(info, 0, kF32, w, nw)) return env.Undefined();
  const bool hasBias = info.Length() > 1 && !info[1].IsNull() && !info[1].IsUndefined();
  if (hasBias && !GetArray(info, 1, kF32, bias, nb)) return env.Undefined();
  int64_t v[14];
  if (!GetInts(info, 2, 14, v, fn)) return env.Undefined();
  ConvGeom g{0, v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13]};
  if (!ConvGeomOk(env, g, fn)) return env.Undefined();
  int64_t layout = 0;
  if (info.Length() > 16 && !info[16].IsUndefined()) {
    layout = GetInt(info, 16);
    if (layout < 0 || layout > 2) return Fail(env, "conv2dCreate: layout must be 0 (auto), 1 (blocked) or 2 (plain)");
  }
  if (!CheckLen(env, fn, "w", nw, g.Cout * (g.C / g.groups) * g.kh * g.kw) || (hasBias && !CheckLen(env, fn, "bias", nb, g.Cout))) {
    return env.Undefined();
  }
  PreparedConv2d* pc = nullptr;
  const std::string status = CreatePreparedConv2d(g, w, bias, static_cast<int>(layout), pc);
  if (!status.empty()) return Fail(env, status);
  auto handle = Napi::External<PreparedConv2d>::New(env, pc, [](Napi::Env, PreparedConv2d* p) { DeletePreparedConv2d(p); });
  if (napi_type_tag_object(env, handle, &kPreparedConvTag) != napi_ok) return Fail(env, "conv2dCreate: could not tag the handle");
  return handle;
}

Napi::Value Conv2dExec(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* fn = "conv2dExec";
  bool tagged = false;
  if (info.Length() < 1 || !info[0].IsExternal() || napi_check_object_type_tag(env, info[0], &kPreparedConvTag, &tagged) != napi_ok ||
      !tagged) {
    return Fail(env, "conv2dExec: argument 0 must be a handle from conv2dCreate");
  }
  PreparedConv2d& pc = *info[0].As<Napi::External<PreparedConv2d>>().Data();
  float *y, *x;
  size_t ny, nx;
  if (!GetArray(info, 1, kF32, y, ny) || !GetArray(info, 2, kF32, x, nx)) return env.Undefined();
  int64_t n;
  if (!GetInts(info, 3, 1, &n, fn)) return env.Undefined();
  const ConvGeom& g = PreparedConv2dGeom(pc);
  if (!CheckLen(env, fn, "x", nx, n * g.C * g.H * g.W) || !CheckLen(env, fn, "y", ny, n * g.Cout * g.Ho() * g.Wo())) return env.Undefined();
  return Done(env, RunPreparedConv2d(pc, x, n, y));
}

Napi::Value Matmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* fn = "matmul";
  float *c, *a, *b;
  size_t nc, na, nb;
  if (!GetArray(info, 0, kF32, c, nc) || !GetArray(info, 1, kF32, a, na) || !GetArray(info, 2, kF32, b, nb)) return env.Undefined();
  int64_t v[5];
  if (!GetInts(info, 3, 5, v, fn)) return env.Undefined();
  const int64_t m = v[0], k = v[1], n = v[2];
  if (!CheckLen(env, fn, "c", nc, m * n) || !CheckLen(env, fn, "a", na, m * k) || !CheckLen(env, fn, "b", nb, k * n)) return env.Undefined();
  return Done(env, DnnlMatmul(a, b, c, m, k, n, v[3] != 0, v[4] != 0));
}

Napi::Value BatchNormStatsB(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* fn = "batchNormStats";
  float *mean, *var, *x;
  size_t nm, nv, nx;
  if (!GetArray(info, 0, kF32, mean, nm) || !GetArray(info, 1, kF32, var, nv) || !GetArray(info, 2, kF32, x, nx)) return env.Undefined();
  int64_t v[3];
  if (!GetInts(info, 3, 3, v, fn)) return env.Undefined();
  const int64_t N = v[0], C = v[1], S = v[2];
  if (!CheckLen(env, fn, "mean", nm, C) || !CheckLen(env, fn, "variance", nv, C) || !CheckLen(env, fn, "x", nx, N * C * S)) return env.Undefined();
  return Done(env, BatchNormStats(x, N, C, S, mean, var));
}

Napi::Value BatchNormApplyB(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* fn = "batchNormApply";
  float *y, *x, *mean, *invStd, *gamma, *beta;
  size_t ny, nx, nm, ni, ng, nb;
  if (!GetArray(info, 0, kF32, y, ny) || !GetArray(info, 1, kF32, x, nx) || !GetArray(info, 2, kF32, mean, nm) ||
      !GetArray(info, 3, kF32, invStd, ni) || !GetArray(info, 4, kF32, gamma, ng) || !GetArray(info, 5, kF32, beta, nb)) {
    return env.Undefined();
  }
  int64_t v[3];
  if (!GetInts(info, 6, 3, v, fn)) return env.Undefined();
  const int64_t N = v[0], C = v[1], S = v[2];
  if (!CheckLen(env, fn, "y", ny, N * C * S) || !CheckLen(env, fn, "x", nx, N * C * S) || !CheckLen(env, fn, "mean", nm, C) ||
      !CheckLen(env, fn, "invStd", ni, C) || !CheckLen(env, fn, "gamma", ng, C) || !CheckLen(env, fn, "beta", nb, C)) {
    return env.Undefined();
  }
  float* residual = nullptr;
  if (info.Length() > 9 && !info[9].IsUndefined() && !info[9].IsNull()) {
    size_t nr;
    if (!GetArray(info, 9, kF32, residual, nr) || !CheckLen(env, fn, "residual", nr, N * C * S)) return env.Undefined();
  }
  return Done(env, BatchNormApply(x, N, C, S, mean, invStd, gamma, beta, residual, y));
}

Napi::Value BatchNormBackwardB(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* fn = "batchNormBackward";
  float *dx, *dgamma, *dbeta, *dy, *x, *mean, *invStd, *gamma;
  size_t ndx, ndg, ndb, ndy, nx, nm, ni, ng;
  if (!GetArray(info, 0, kF32, dx, ndx) || !GetArray(info, 1, kF32, dgamma, ndg) || !GetArray(info, 2, kF32, dbeta, ndb) ||
      !GetArray(info, 3, kF32, dy, ndy) || !GetArray(info, 4, kF32, x, nx) || !GetArray(info, 5, kF32, mean, nm) ||
      !GetArray(info, 6, kF32, invStd, ni) || !GetArray(info, 7, kF32, gamma, ng)) {
    return env.Undefined();
  }
  int64_t v[3];
  if (!GetInts(info, 8, 3, v, fn)) return env.Undefined();
  const int64_t N = v[0], C = v[1], S = v[2], T = N * C * S;
  if (!CheckLen(env, fn, "dx", ndx, T) || !CheckLen(env, fn, "dgamma", ndg, C) || !CheckLen(env, fn, "dbeta", ndb, C) ||
      !CheckLen(env, fn, "dy", ndy, T) || !CheckLen(env, fn, "x", nx, T) || !CheckLen(env, fn, "mean", nm, C) ||
      !CheckLen(env, fn, "invStd", ni, C) || !CheckLen(env, fn, "gamma", ng, C)) {
    return env.Undefined();
  }
  return Done(env, BatchNormBackward(dy, x, N, C, S, mean, invStd, gamma, dx, dgamma, dbeta));
}

// Reads the 10 pooling geometry numbers at `first`; false (JS error pending) when invalid.
bool GetPool(const Napi::CallbackInfo& info, size_t first, PoolGeom& g, const char* fn) {
  int64_t v[10];
  if (!GetInts(info, first, 10, v, fn)) return false;
  g = PoolGeom{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9]};
  if (g.kh < 1 || g.kw < 1 || g.sh < 1 || g.sw < 1 || g.H + 2 * g.ph < g.kh || g.W + 2 * g.pw < g.kw) {
    Fail(info.Env(), std::string(fn) + ": invalid geometry (kernel and stride >= 1, window within the padded input)");
    return false;
  }
  if (g.N * g.C * g.H * g.W > INT32_MAX) {
    Fail(info.Env(), std::string(fn) + ": input too large for int32 argmax indices");
    return false;
  }
  return true;
}

Napi::Value MaxPool2dB(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* fn = "maxPool2d";
  float *y, *x;
  int32_t* am;
  size_t ny, nam, nx;
  if (!GetArray(info, 0, kF32, y, ny) || !GetArray(info, 1, kI32, am, nam) || !GetArray(info, 2, kF32, x, nx)) return env.Undefined();
  PoolGeom g;
  if (!GetPool(info, 3, g, fn)) return env.Undefined();
  const int64_t ySize = g.N * g.C * g.Ho() * g.Wo();
  if (!CheckLen(env, fn, "y", ny, ySize) || !CheckLen(env, fn, "argmax", nam, ySize) || !CheckLen(env, fn, "x", nx, g.N * g.C * g.H * g.W)) return env.Undefined();
  return Done(env, MaxPool2d(g, x, y, am));
}

Napi::Value MaxPool2dBackwardB(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* fn = "maxPool2dBackward";
  float *dx, *dy;
  int32_t* am;
  size_t ndx, ndy, nam;
  if (!GetArray(info, 0, kF32, dx, ndx) || !GetArray(info, 1, kF32, dy, ndy) || !GetArray(info, 2, kI32, am, nam)) return env.Undefined();
  if (!CheckLen(env, fn, "argmax", nam, static_cast<int64_t>(ndy))) return env.Undefined();
  return Done(env, MaxPool2dBackward(dy, am, static_cast<int64_t>(ndy), dx, static_cast<int64_t>(ndx)));
}

Napi::Value AvgPool2dB(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* fn = "avgPool2d";
  float *y, *x;
  size_t ny, nx;
  if (!GetArray(info, 0, kF32, y, ny) || !GetArray(info, 1, kF32, x, nx)) return env.Undefined();
  PoolGeom g;
  if (!GetPool(info, 2, g, fn)) return env.Undefined();
  if (!CheckLen(env, fn, "y", ny, g.N * g.C * g.Ho() * g.Wo()) || !CheckLen(env, fn, "x", nx, g.N * g.C * g.H * g.W)) return env.Undefined();
  return Done(env, AvgPool2d(g, x, y));
}

Napi::Value AvgPool2dBackwardB(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* fn = "avgPool2dBackward";
  float *dx, *dy;
  size_t ndx, ndy;
  if (!GetArray(info, 0, kF32, dx, ndx) || !GetArray(info, 1, kF32, dy, ndy)) return env.Undefined();
  PoolGeom g;
  if (!GetPool(info, 2, g, fn)) return env.Undefined();
  if (!CheckLen(env, fn, "dx", ndx, g.N * g.C * g.H * g.W) || !CheckLen(env, fn, "dy", ndy, g.N * g.C * g.Ho() * g.Wo())) return env.Undefined();
  return Done(env, AvgPool2dBackward(g, dy, dx));
}

}  // namespace

void RegisterDnnlKernels(Napi::Env env, Napi::Object exports) {
  exports.Set("conv2d", Napi::Function::New(env, Conv2d, "conv2d"));
  exports.Set("conv2dBackwardInput", Napi::Function::New(env, Conv2dBackwardInput, "conv2dBackwardInput"));
  exports.Set("conv2dBackwardFilter", Napi::Function::New(env, Conv2dBackwardFilter, "conv2dBackwardFilter"));
  exports.Set("conv2dBackwardSign", Napi::Function::New(env, Conv2dBackwardSign, "conv2dBackwardSign"));
  exports.Set("conv2dCreate", Napi::Function::New(env, Conv2dCreate, "conv2dCreate"));
  exports.Set("conv2dExec", Napi::Function::New(env, Conv2dExec, "conv2dExec"));
  exports.Set("matmul", Napi::Function::New(env, Matmul, "matmul"));
  exports.Set("batchNormStats", Napi::Function::New(env, BatchNormStatsB, "batchNormStats"));
  exports.Set("batchNormApply", Napi::Function::New(env, BatchNormApplyB, "batchNormApply"));
  exports.Set("batchNormBackward", Napi::Function::New(env, BatchNormBackwardB, "batchNormBackward"));
  exports.Set("maxPool2d", Napi::Function::New(env, MaxPool2dB, "maxPool2d"));
  exports.Set("maxPool2dBackward", Napi::Function::New(env, MaxPool2dBackwardB, "maxPool2dBackward"));
  exports.Set("avgPool2d", Napi::Function::New(env, AvgPool2dB, "avgPool2d"));
  exports.Set("avgPool2dBackward", Napi::Function::New(env, AvgPool2dBackwardB, "avgPool2dBackward"));
}

}  // namespace onebit
