// N-API bindings of the float32 elementwise kernels the training step spends its time in (sign,
// abs, neg, relu; same-shape and scalar add/sub/mul; the clipped STE backward; the two-valued
// scale test of binary_forward.ts). Results equal the TypeScript reference (src/backends/ref/
// elementwise.ts) exactly: float32 add/sub/mul/abs/neg are exact roundings, comparisons are
// done as there, NaN handling matches. Outputs are allocated in JavaScript and passed first.
//
//   unaryF32(op, out, x)                       op: 0 sign, 1 abs, 2 neg, 3 relu
//   binarySameF32(op, out, a, b)               op: 0 add, 1 sub, 2 mul; equal lengths
//   binaryScalarF32(op, out, a, y, scalarFirst) out[i] = f(a[i], y), or f(y, a[i]) if scalarFirst
//   binaryStridedF32(op, out, a, b, d0, d1, d2, sa0, sa1, sa2, sb0, sb1, sb2)
//        broadcasting op over 3 collapsed dims with element strides (0 = broadcast); op: 0 add,
//        1 sub, 2 mul, 3 div, 4 maximum, 5 minimum, 6 greater, 7 greaterEqual, 8 equal
//   channelActF32(out, x, r | null, n, C, inner, b0 | null, pos | null, neg, b1 | null)
//        per-channel piecewise-linear activation of x (+ r): u = (x + r) + b0[c]; v = u >= 0 ?
//        pos[c]·u : neg[c]·u; out = v + b1[c] (PReLU, RPReLU, Maxout; absent b0/b1 = 0, pos = 1;
//        float32 arithmetic, no contraction: each step rounds as the TypeScript kernel does)
//   clippedSteF32(out, g, x, clip)             out[i] = -clip <= x[i] <= clip ? g[i] : 0
//   approxSignBackwardF32(out, g, x)           out[i] = g[i]·ApproxSign'(x[i]) (2 + 2x on [−1, 0),
//        2 − 2x on [0, 1), 0 elsewhere), the product in float64 and rounded once, as TypeScript
//   hasNaNF32(x) -> whether any x[i] is NaN
//   shortcutAF32(dir, out, in, N, C, H, W, outC)   the option-A shortcut (models/resnet20.ts), every
//        element of out written: dir 0 out[n, c + p, i, j] = in[n, c, 2i, 2j] with p = (outC − C)/2
//        zero channels each side (out [N, outC, ⌈H/2⌉, ⌈W/2⌉]); dir 1, its gradient, out [N, C, H, W]
//        = in[n, c + p, i/2, j/2] at even (i, j), 0 elsewhere
//   symmetricScaleF32(x) -> s if every x[i] is +s or -s for one s > 0, else -1
//
// Large arrays (>= kParallel elements) are split over the OpenMP threads.
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include "common.h"

namespace onebit {
namespace {

constexpr int64_t kParallel = 1 << 18;  // ~256k elements

bool OpCode(const Napi::CallbackInfo& info, const char* name, int max, int& op) {
  op = static_cast<int>(GetInt(info, 0));
  if (op < 0 || op > max) {
    Fail(info.Env(), std::string(name) + ": unknown op code");
    return false;
  }
  return true;
}

bool SameLength(const Napi::CallbackInfo& info, const char* name, size_t a, size_t b) {
  if (a == b) return true;
  Fail(info.Env(), std::string(name) + ": arrays must have equal lengths, but got " + std::to_string(a) + " and " +
                       std::to_string(b));
  return false;
}

template <typename F>
inline void Map(float* out, int64_t n, F f) {
#pragma omp parallel for schedule(static) if (n >= kParallel)
  for (int64_t i = 0; i < n; i++) out[i] = f(i);
}

Napi::Value UnaryF32(const Napi::CallbackInfo& info) {
  int op;
  float* out;
  const float* x;
  size_t nout, nx;
  if (!OpCode(info, "unaryF32", 3, op) || !GetArray(info, 1, napi_float32_array, out, nout) ||
      !GetArray(info, 2, napi_float32_array, x, nx) || !SameLength(info, "unaryF32", nout, nx)) {
    return info.Env().Undefined();
  }
  const int64_t n = static_cast<int64_t>(nx);
  switch (op) {
    // Selects, not branches, so the loop vectorizes: a branch on the sign of mixed-sign data
    // mispredicts half the time (6.5 ms for 2M elements vs ~1 ms, measured). NaN stays NaN.
    case 0: Map(out, n, [=](int64_t i) { const float v = x[i]; const float r = v >= 0.f ? 1.f : -1.f; return v != v ? v : r; }); break;
    case 1: Map(out, n, [=](int64_t i) { return std::fabs(x[i]); }); break;
    case 2: Map(out, n, [=](int64_t i) { return -x[i]; }); break;
    default: Map(out, n, [=](int64_t i) { const float v = x[i]; return v > 0.f ? v : 0.f; }); break;
  }
  return info.Env().Undefined();
}

Napi::Value BinarySameF32(const Napi::CallbackInfo& info) {
  int op;
  float* out;
  const float *a, *b;
  size_t nout, na, nb;
  if (!OpCode(info, "binarySameF32", 2, op) || !GetArray(info, 1, napi_float32_array, out, nout) ||
      !GetArray(info, 2, napi_float32_array, a, na) || !GetArray(info, 3, napi_float32_array, b, nb) ||
      !SameLength(info, "binarySameF32", nout, na) || !SameLength(info, "binarySameF32", na, nb)) {
    return info.Env().Undefined();
  }
  const int64_t n = static_cast<int64_t>(na);
  switch (op) {
    case 0: Map(out, n, [=](int64_t i) { return a[i] + b[i]; }); break;
    case 1: Map(out, n, [=](int64_t i) { return a[i] - b[i]; }); break;
    default: Map(out, n, [=](int64_t i) { return a[i] * b[i]; }); break;
  }
  return info.Env().Undefined();
}

Napi::Value BinaryScalarF32(const Napi::CallbackInfo& info) {
  int op;
  float* out;
  const float* a;
  size_t nout, na;
  if (!OpCode(info, "binaryScalarF32", 2, op) || !GetArray(info, 1, napi_float32_array, out, nout) ||
      !GetArray(info, 2, napi_float32_array, a, na) || !SameLength(info, "binaryScalarF32", nout, na)) {
    return info.Env().Undefined();
  }
  if (info.Length() < 5 || !info[3].IsNumber()) return Fail(info.Env(), "binaryScalarF32: y must be a number");
  // y comes from a Float32Array element, so the float conversion is exact.
  const float y = static_cast<float>(info[3].As<Napi::Number>().DoubleValue());
  const bool first = info[4].ToBoolean().Value();
  const int64_t n = static_cast<int64_t>(na);
  switch (op) {
    case 0: Map(out, n, [=](int64_t i) { return a[i] + y; }); break;
    case 1:
      if (first) Map(out, n, [=](int64_t i) { return y - a[i]; });
      else Map(out, n, [=](int64_t i) { return a[i] - y; });
      break;
    default: Map(out, n, [=](int64_t i) { return a[i] * y; }); break;
  }
  return info.Env().Undefined();
}

template <typename F>
inline void Strided(float* out, const float* a, const float* b, const int64_t* d, const int64_t* sa, const int64_t* sb, F f) {
  const int64_t rows = d[0] * d[1], n = rows * d[2];
#pragma omp parallel for schedule(static) if (n >= kParallel)
  for (int64_t r = 0; r < rows; r++) {
    const int64_t i0 = r / d[1], i1 = r % d[1];
    const float* pa = a + i0 * sa[0] + i1 * sa[1];
    const float* pb = b + i0 * sb[0] + i1 * sb[1];
    float* po = out + r * d[2];
    if (sa[2] == 1 && sb[2] == 0) {
      const float y = *pb;
      for (int64_t t = 0; t < d[2]; t++) po[t] = f(pa[t], y);
    } else if (sa[2] == 0 && sb[2] == 1) {
      const float x = *pa;
      for (int64_t t = 0; t < d[2]; t++) po[t] = f(x, pb[t]);
    } else {
      for (int64_t t = 0; t < d[2]; t++) po[t] = f(pa[t * sa[2]], pb[t * sb[2]]);
    }
  }
}

Napi::Value BinaryStridedF32(const Napi::CallbackInfo& info) {
  int op;
  float* out;
  const float *a, *b;
  size_t nout, na, nb;
  if (!OpCode(info, "binaryStridedF32", 8, op) || !GetArray(info, 1, napi_float32_array, out, nout) ||
      !GetArray(info, 2, napi_float32_array, a, na) || !GetArray(info, 3, napi_float32_array, b, nb)) {
    return info.Env().Undefined();
  }
  if (info.Length() < 13) return Fail(info.Env(), "binaryStridedF32: expected 13 arguments");
  int64_t d[3], sa[3], sb[3];
  for (int i = 0; i < 3; i++) {
    d[i] = GetInt(info, 4 + i);
    sa[i] = GetInt(info, 7 + i);
    sb[i] = GetInt(info, 10 + i);
    if (d[i] < 1 || sa[i] < 0 || sb[i] < 0) return Fail(info.Env(), "binaryStridedF32: dims must be >= 1 and strides >= 0");
  }
  // Bounds: the output is exactly d0·d1·d2 and the last element each operand reads is inside it.
  const int64_t n = d[0] * d[1] * d[2];
  const int64_t lastA = (d[0] - 1) * sa[0] + (d[1] - 1) * sa[1] + (d[2] - 1) * sa[2];
  const int64_t lastB = (d[0] - 1) * sb[0] + (d[1] - 1) * sb[1] + (d[2] - 1) * sb[2];
  if (static_cast<int64_t>(nout) != n || lastA >= static_cast<int64_t>(na) || lastB >= static_cast<int64_t>(nb)) {
    return Fail(info.Env(), "binaryStridedF32: dims and strides do not fit the arrays");
  }
  switch (op) {
    case 0: Strided(out, a, b, d, sa, sb, [](float x, float y) { return x + y; }); break;
    case 1: Strided(out, a, b, d, sa, sb, [](float x, float y) { return x - y; }); break;
    case 2: Strided(out, a, b, d, sa, sb, [](float x, float y) { return x * y; }); break;
    case 3: Strided(out, a, b, d, sa, sb, [](float x, float y) { return x / y; }); break;
    case 4: Strided(out, a, b, d, sa, sb, [](float x, float y) { return x >= y ? x : y; }); break;
    case 5: Strided(out, a, b, d, sa, sb, [](float x, float y) { return x <= y ? x : y; }); break;
    case 6: Strided(out, a, b, d, sa, sb, [](float x, float y) { return x > y ? 1.f : 0.f; }); break;
    case 7: Strided(out, a, b, d, sa, sb, [](float x, float y) { return x >= y ? 1.f : 0.f; }); break;
    default: Strided(out, a, b, d, sa, sb, [](float x, float y) { return x == y ? 1.f : 0.f; }); break;
  }
  return info.Env().Undefined();
}

Napi::Value ChannelActF32(const Napi::CallbackInfo& info) {
  float* out;
  const float* x;
  size_t nout, nx;
  if (!GetArray(info, 0, napi_float32_array, out, nout) || !GetArray(info, 1, napi_float32_array, x, nx) ||
      !SameLength(info, "channelActF32", nout, nx)) {
    return info.Env().Undefined();
  }
  const int64_t n = GetInt(info, 3), C = GetInt(info, 4), inner = GetInt(info, 5);
  if (n < 0 || C < 1 || inner < 1 || n * C * inner != static_cast<int64_t>(nx)) {
    return Fail(info.Env(), "channelActF32: n·C·inner must equal the array length");
  }
  // Optional arrays: r (nx elements), b0, pos, neg (required), b1 (C elements each).
  const float* opt[5] = {nullptr, nullptr, nullptr, nullptr, nullptr};
  const size_t idx[5] = {2, 6, 7, 8, 9};
  for (int k = 0; k < 5; k++) {
    const size_t i = idx[k];
    if (info.Length() <= i || info[i].IsNull() || info[i].IsUndefined()) {
      if (k == 3) return Fail(info.Env(), "channelActF32: neg is required");
      continue;
    }
    size_t len;
    if (!GetArray(info, i, napi_float32_array, opt[k], len)) return info.Env().Undefined();
    if (len != (k == 0 ? nx : static_cast<size_t>(C))) return Fail(info.Env(), "channelActF32: wrong length of an optional array");
  }
  const float *r = opt[0], *b0 = opt[1], *pos = opt[2], *neg = opt[3], *b1 = opt[4];
  const int64_t rows = n * C;
#pragma omp parallel for schedule(static) if (static_cast<int64_t>(nx) >= kParallel)
  for (int64_t row = 0; row < rows; row++) {
    const int64_t c = row % C;
    const float s0 = b0 ? b0[c] : 0.f, p = pos ? pos[c] : 1.f, q = neg[c], s1 = b1 ? b1[c] : 0.f;
    const float* xr = x + row * inner;
    const float* rr = r ? r + row * inner : nullptr;
    float* o = out + row * inner;
    // Branch-free (a select of the slope, then one multiply) and the residual test hoisted, so the
    // loops vectorize: with a data-dependent branch, mixed-sign inputs ran ~10x slower (measured).
    if (rr) {
      for (int64_t i = 0; i < inner; i++) {
        const float u = (xr[i] + rr[i]) + s0;
        o[i] = u * (u >= 0.f ? p : q) + s1;
      }
    } else {
      for (int64_t i = 0; i < inner; i++) {
        const float u = xr[i] + s0;
        o[i] = u * (u >= 0.f ? p : q) + s1;
      }
    }
  }
  return info.Env().Undefined();
}

// The (out, g, x) float32 arrays of one length that the pseudo-gradient kernels take; false with a
// JS error pending. out may be g (in place).
bool OutGX(const Napi::CallbackInfo& info, const char* name, float*& out, const float*& g, const float*& x, size_t& nx) {
  size_t nout, ng;
  return GetArray(info, 0, napi_float32_array, out, nout) && GetArray(info, 1, napi_float32_array, g, ng) &&
         GetArray(info, 2, napi_float32_array, x, nx) && SameLength(info, name, nout, nx) && SameLength(info, name, ng, nx);
}

Napi::Value ClippedSteF32(const Napi::CallbackInfo& info) {
  float* out;
  const float *g, *x;
  size_t nx;
  if (!OutGX(info, "clippedSteF32", out, g, x, nx)) return info.Env().Undefined();
  if (info.Length() < 4 || !info[3].IsNumber()) return Fail(info.Env(), "clippedSteF32: clip must be a number");
  // Compared in float against ClipBoundF32 (common.h): the same results as TypeScript's double
  // compare, and the loop vectorizes (a double compare per element plus a data-dependent branch
  // ran ~10x slower on batch-norm outputs, measured).
  const float hi = ClipBoundF32(info[3].As<Napi::Number>().DoubleValue()), lo = -hi;
  Map(out, static_cast<int64_t>(nx), [=](int64_t i) {
    const float v = x[i], gv = g[i];  // g loaded unconditionally: a conditional load does not vectorize
    return (v <= hi) & (v >= lo) ? gv : 0.f;
  });
  return info.Env().Undefined();
}

// d = max(2 − 2|x|, 0) (see ApproxSignBackwardF32), the product in double, rounded once.
inline float ApproxGrad(float gv, float xv) {
  const double raw = 2.0 - 2.0 * std::fabs(static_cast<double>(xv));  // <= 0 exactly when |x| >= 1; NaN for NaN x
  const double d = raw > 0.0 ? raw : 0.0;                               // one compare on the value: a max, vectorizes
  return static_cast<float>(static_cast<double>(gv) * d);
}

// Separate loops for out != g and out == g, each with restrict pointers that really do not alias
// (one restrict loop for both would be undefined behaviour in place; without restrict GCC's
// runtime overlap check sends the in-place call to its scalar loop).
void ApproxSignBackward(float* out, const float* g, const float* __restrict x, int64_t n) {
  if (out == g) {
    float* __restrict io = out;
#pragma omp parallel for schedule(static) if (n >= kParallel)
    for (int64_t i = 0; i < n; i++) io[i] = ApproxGrad(io[i], x[i]);
  } else {
    float* __restrict o = out;
    const float* __restrict gi = g;
#pragma omp parallel for schedule(static) if (n >= kParallel)
    for (int64_t i = 0; i < n; i++) o[i] = ApproxGrad(gi[i], x[i]);
  }
}

Napi::Value ApproxSignBackwardF32(const Napi::CallbackInfo& info) {
  float* out;
  const float *g, *x;
  size_t nx;
  if (!OutGX(info, "approxSignBackwardF32", out, g, x, nx)) return info.Env().Undefined();
  // d = max(2 − 2|x|, 0): 2 − 2|x| inside (−1, 1) (= 2 + 2x for x < 0; exact in double), 0 at and
  // beyond ±1, and 0 for NaN x (the compare fails), as the TypeScript comparisons give. Written
  // with the interval tests of the TypeScript loop, GCC kept a branch and the loop did not
  // vectorize (7.8 ms instead of ~1 ms for 2M elements, measured).
  ApproxSignBackward(out, g, x, static_cast<int64_t>(nx));
  return info.Env().Undefined();
}

Napi::Value HasNaNF32(const Napi::CallbackInfo& info) {
  const float* x;
  size_t nx;
  if (!GetArray(info, 0, napi_float32_array, x, nx)) return info.Env().Undefined();
  const int64_t n = static_cast<int64_t>(nx);
  int bad = 0;
#pragma omp parallel for schedule(static) reduction(| : bad) if (n >= kParallel)
  for (int64_t i = 0; i < n; i++) bad |= x[i] != x[i];
  return Napi::Boolean::New(info.Env(), bad != 0);
}

Napi::Value ShortcutAF32(const Napi::CallbackInfo& info) {
  const int64_t dir = GetInt(info, 0);
  float* out;
  const float* in;
  size_t nout, nin;
  if (!GetArray(info, 1, napi_float32_array, out, nout) || !GetArray(info, 2, napi_float32_array, in, nin)) {
    return info.Env().Undefined();
  }
  const int64_t N = GetInt(info, 3), C = GetInt(info, 4), H = GetInt(info, 5), W = GetInt(info, 6), outC = GetInt(info, 7);
  if ((dir != 0 && dir != 1) || N < 0 || C < 0 || H < 0 || W < 0 || outC < C || (outC - C) % 2) {
    return Fail(info.Env(), "shortcutAF32: expected dir 0 or 1 and N, C, H, W >= 0 with outC − C even and >= 0");
  }
  const int64_t Ho = (H + 1) / 2, Wo = (W + 1) / 2, pad = (outC - C) / 2;
  const int64_t nx = N * C * H * W, ny = N * outC * Ho * Wo;
  if (static_cast<int64_t>(dir == 0 ? nin : nout) != nx || static_cast<int64_t>(dir == 0 ? nout : nin) != ny) {
    return Fail(info.Env(), "shortcutAF32: array lengths do not match N, C, H, W and outC");
  }
  const int64_t planes = dir == 0 ? N * outC : N * C;
#pragma omp parallel for schedule(static) if (nx + ny >= kParallel)
  for (int64_t pl = 0; pl < planes; pl++) {
    if (dir == 0) {
      const int64_t n = pl / outC, c = pl % outC - pad;
      float* y = out + pl * Ho * Wo;
      if (c < 0 || c >= C) {
        for (int64_t k = 0; k < Ho * Wo; k++) y[k] = 0.f;
        continue;
      }
      const float* x = in + (n * C + c) * H * W;
      for (int64_t i = 0; i < Ho; i++) {
        for (int64_t j = 0; j < Wo; j++) y[i * Wo + j] = x[2 * i * W + 2 * j];
      }
    } else {
      const int64_t n = pl / C, c = pl % C;
      float* dx = out + pl * H * W;
      const float* g = in + (n * outC + c + pad) * Ho * Wo;
      for (int64_t i = 0; i < H; i++) {
        float* row = dx + i * W;
        if (i % 2) {
          for (int64_t j = 0; j < W; j++) row[j] = 0.f;
          continue;
        }
        const float* gr = g + (i / 2) * Wo;
        for (int64_t j = 0; j < W; j++) row[j] = j % 2 ? 0.f : gr[j / 2];
      }
    }
  }
  return info.Env().Undefined();
}

Napi::Value SymmetricScaleF32(const Napi::CallbackInfo& info) {
  const float* x;
  size_t nx;
  if (!GetArray(info, 0, napi_float32_array, x, nx)) return info.Env().Undefined();
  const Napi::Number none = Napi::Number::New(info.Env(), -1);
  const int64_t n = static_cast<int64_t>(nx);
  if (n == 0) return none;
  const float s = std::fabs(x[0]);
  if (!(s > 0.f)) return none;
  const float m = -s;
  // A short serial prefix rejects most non-two-valued tensors without starting the thread team.
  const int64_t head = n < 256 ? n : 256;
  for (int64_t i = 1; i < head; i++)
    if (x[i] != s && x[i] != m) return none;
  int bad = 0;
#pragma omp parallel for schedule(static) reduction(| : bad) if (n >= kParallel)
  for (int64_t i = head; i < n; i++) bad |= (x[i] != s) & (x[i] != m);
  return bad ? none : Napi::Number::New(info.Env(), static_cast<double>(s));
}

}  // namespace

void RegisterPortableConv(Napi::Env env, Napi::Object exports);  // portable_conv.cc
void RegisterReduceKernels(Napi::Env env, Napi::Object exports);  // reduce.cc
void RegisterActGradKernels(Napi::Env env, Napi::Object exports);  // act_grad.cc
void RegisterAdabinActKernels(Napi::Env env, Napi::Object exports);  // adabin_act.cc

void RegisterEltwiseKernels(Napi::Env env, Napi::Object exports) {
  RegisterPortableConv(env, exports);
  RegisterReduceKernels(env, exports);
  RegisterActGradKernels(env, exports);
  RegisterAdabinActKernels(env, exports);
  exports.Set("unaryF32", Napi::Function::New(env, UnaryF32));
  exports.Set("binarySameF32", Napi::Function::New(env, BinarySameF32));
  exports.Set("binaryScalarF32", Napi::Function::New(env, BinaryScalarF32));
  exports.Set("binaryStridedF32", Napi::Function::New(env, BinaryStridedF32));
  exports.Set("channelActF32", Napi::Function::New(env, ChannelActF32));
  exports.Set("clippedSteF32", Napi::Function::New(env, ClippedSteF32));
  exports.Set("approxSignBackwardF32", Napi::Function::New(env, ApproxSignBackwardF32));
  exports.Set("hasNaNF32", Napi::Function::New(env, HasNaNF32));
  exports.Set("shortcutAF32", Napi::Function::New(env, ShortcutAF32));
  exports.Set("symmetricScaleF32", Napi::Function::New(env, SymmetricScaleF32));
}

}  // namespace onebit
