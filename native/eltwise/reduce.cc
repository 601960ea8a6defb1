// N-API bindings of the float32 reductions the training step runs on large arrays: the global
// average pool's sum and the spread of its gradient (ops/reduce.ts). Results equal the TypeScript
// reference (src/backends/ref/reduce.ts) exactly: the same float64 accumulation order, rounded once.
// Outputs are allocated in JavaScript and passed first.
//
//   sumAxisF32(out, x, outer, len, inner)      x viewed as [outer, len, inner]: out[o, i] = the sum
//        over l of x[o, l, i], accumulated in float64 in order l = 0, 1, … and rounded once (as
//        the reference's sumAxis)
//   spreadF32(out, g, spread, div)             out[i·spread + j] = g[i] (div = 0), or fl32(g[i] / div)
//        with the division in float64 (a sum's / mean's gradient over trailing axes)
//
// Large arrays (>= kParallel elements) are split over the OpenMP threads; each output element is
// computed by one thread, in the reference's order.
#include <cstdint>

#include "common.h"

namespace onebit {
namespace {

constexpr int64_t kParallel = 1 << 18;  // ~256k elements, as eltwise.cc

Napi::Value SumAxisF32(const Napi::CallbackInfo& info) {
  float* out;
  const float* x;
  size_t nout, nx;
  if (!GetArray(info, 0, napi_float32_array, out, nout) || !GetArray(info, 1, napi_float32_array, x, nx)) {
    return info.Env().Undefined();
  }
  const int64_t outer = GetInt(info, 2), len = GetInt(info, 3), inner = GetInt(info, 4);
  if (outer < 0 || len < 0 || inner < 0 || static_cast<int64_t>(nout) != outer * inner ||
      static_cast<int64_t>(nx) != outer * len * inner) {
    return Fail(info.Env(), "sumAxisF32: expected out of outer·inner and x of outer·len·inner elements");
  }
  const int64_t n = outer * len * inner;
  if (inner == 1) {
#pragma omp parallel for schedule(static) if (n >= kParallel)
    for (int64_t o = 0; o < outer; o++) {
      const float* row = x + o * len;
      double acc = 0.0;
      for (int64_t l = 0; l < len; l++) acc += row[l];
      out[o] = static_cast<float>(acc);
    }
    return info.Env().Undefined();
  }
  // Column blocks of inner so the float64 accumulators stay in registers / L1.
  constexpr int64_t kBlock = 64;
  const int64_t blocks = (inner + kBlock - 1) / kBlock;
#pragma omp parallel for collapse(2) schedule(static) if (n >= kParallel)
  for (int64_t o = 0; o < outer; o++) {
    for (int64_t b = 0; b < blocks; b++) {
      const int64_t i0 = b * kBlock, i1 = i0 + kBlock < inner ? i0 + kBlock : inner;
      double acc[kBlock];
      for (int64_t i = i0; i < i1; i++) acc[i - i0] = 0.0;
      for (int64_t l = 0; l < len; l++) {
        const float* row = x + (o * len + l) * inner;
        for (int64_t i = i0; i < i1; i++) acc[i - i0] += row[i];
      }
      for (int64_t i = i0; i < i1; i++) out[o * inner + i] = static_cast<float>(acc[i - i0]);
    }
  }
  return info.Env().Undefined();
}

Napi::Value SpreadF32(const Napi::CallbackInfo& info) {
  float* out;
  const float* g;
  size_t nout, ng;
  if (!GetArray(info, 0, napi_float32_array, out, nout) || !GetArray(info, 1, napi_float32_array, g, ng)) {
    return info.Env().Undefined();
  }
  const int64_t spread = GetInt(info, 2);
  const double div = info[3].As<Napi::Number>().DoubleValue();
  if (spread < 1 || static_cast<int64_t>(nout) != static_cast<int64_t>(ng) * spread) {
    return Fail(info.Env(), "spreadF32: expected spread >= 1 and out of g.length·spread elements");
  }
  const int64_t n = static_cast<int64_t>(ng);
#pragma omp parallel for schedule(static) if (static_cast<int64_t>(nout) >= kParallel)
  for (int64_t i = 0; i < n; i++) {
    const float v = div != 0.0 ? static_cast<float>(static_cast<double>(g[i]) / div) : g[i];
    float* o = out + i * spread;
    for (int64_t j = 0; j < spread; j++) o[j] = v;
  }
  return info.Env().Undefined();
}

}  // namespace

void RegisterReduceKernels(Napi::Env env, Napi::Object exports) {
  exports.Set("sumAxisF32", Napi::Function::New(env, SumAxisF32));
  exports.Set("spreadF32", Napi::Function::New(env, SpreadF32));
}

}  // namespace onebit
