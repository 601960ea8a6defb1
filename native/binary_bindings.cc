// N-API bindings of the binary (1-bit) kernels. Outputs are allocated in JavaScript and passed in
// first, as in dnnl_bindings.cc (zero copy: the kernels write into the typed array's memory).
// Argument order:
//
//   bitpack(out: Uint32Array[rows·ceil(k/32)], x: Float32Array[rows·k], rows, k)
//   binaryMatmul(out: Float32Array[m·n], a: Uint32Array[m·W], b: Uint32Array[n·W], m, n, k),
//       W = ceil(k/32); out[i·n + j] = k − 2·popcount(a_i XOR b_j)
//   binaryMatmulIsa(isa: 'ref' | 'avx2' | 'avx512', out, a, b, m, n, k): binaryMatmul with that
//       variant forced (conformance tests, benchmarks); throws when this CPU cannot run it
//   binaryIsas(): string[], the variants this CPU can run (ref first)
//   binaryConv2d(out: Float32Array[N·Cout·Ho·Wo], x: Float32Array[N·C·H·W], w: Float32Array[Cout·Cg·kh·kw],
//       geom: Int32Array [N, C, H, W, Cout, Cg, kh, kw, strideH, strideW, padH, padW, dilH, dilW, groups],
//       padValue: number[, scale: Float32Array[Cout] | null[, checkNaN: boolean]]): with scale, out[n, co] =
//       conv · scale[co] (rounded once; the packed training forward's per-channel weight scale); with
//       checkNaN true it returns whether x holds a NaN (then out is unspecified), found while packing
//   binaryConv2dPrepare(w, geom, padValue) → { rows, corr, hasBorder }: weights packed once
//   binaryConv2dRun(out, x, rows, corr, hasBorder, geom, scale | null, bias | null, thr | null): prepared
//       conv on the bits of sign(x − thr[c]) (sign(x) without thr), then out = out·scale[co] + bias[co]
//       (inference; corr empty when no border correction)
//   binaryConv2dCreate(w, geom, padValue) → handle: a prepared conv owned by the addon (packed
//       weights, border corrections, im2col tables and a bit-plane workspace kept between runs;
//       N in geom is ignored). Freed when the handle is garbage-collected.
//   binaryConv2dExec(handle, out, x, n, scale | null, bias | null, thr | null
//       [, res | null, b0 | null, pos | null, neg | null, b1 | null]): binaryConv2dRun with that handle
//       for a batch of n (bit-identical results; nothing allocated per call), then in the epilogue
//       the engine's fused ops: out += res (res [n·Cout·Ho·Wo]: the `add`), then with neg ([Cout])
//       u = out + b0[co], out = u·(u >= 0 ? pos[co] : neg[co]) + b1[co] (the `channel_act`; absent
//       b0 / b1: 0, pos: 1), float32 step for step as the separate add and channelActF32
//
// Sizes are checked here, once; the kernels trust them and return a status string, thrown here.
#include <cstring>
#include <new>
#include <string>
#include "bconv/bconv.h"
#include "bgemm/bgemm.h"
#include "bitpack/bitpack.h"
#include "common.h"

namespace onebit {
namespace {

constexpr int64_t kMaxDim = int64_t{1} << 31;

bool Dim(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name, int64_t& v) {
  v = GetInt(info, i);
  if (v < 0 || v >= kMaxDim) {
    Fail(info.Env(), std::string(op) + ": " + name + " must be an integer in [0, 2^31), but got " +
                         (info.Length() > i ? info[i].ToString().Utf8Value() : "nothing"));
    return false;
  }
  return true;
}

bool Length(const Napi::CallbackInfo& info, const char* op, const char* name, size_t got, int64_t want) {
  if (static_cast<int64_t>(got) == want) return true;
  Fail(info.Env(), std::string(op) + ": " + name + " must have " + std::to_string(want) + " elements, but got " +
                       std::to_string(got));
  return false;
}

Napi::Value BitpackBinding(const Napi::CallbackInfo& info) {
  const float* x;
  uint32_t* out;
  size_t nx, nout;
  int64_t rows, k;
  if (!GetArray(info, 0, napi_uint32_array, out, nout) || !GetArray(info, 1, napi_float32_array, x, nx) ||
      !Dim(info, 2, "bitpack", "rows", rows) || !Dim(info, 3, "bitpack", "k", k) ||
      !Length(info, "bitpack", "x", nx, rows * k) || !Length(info, "bitpack", "out", nout, rows * WordsFor(k))) {
    return info.Env().Undefined();
  }
  onebit::Bitpack(SelectedIsa(), x, rows, k, out);
  return info.Env().Undefined();
}

// binaryMatmul arguments from `first` on (out, a, b, m, n, k) with variant v.
Napi::Value Matmul(const Napi::CallbackInfo& info, size_t first, const BgemmVariant& v) {
  const uint32_t *a, *b;
  float* out;
  size_t na, nb, nout;
  int64_t m, n, k;
  const char* op = "binaryMatmul";
  if (!GetArray(info, first, napi_float32_array, out, nout) || !GetArray(info, first + 1, napi_uint32_array, a, na) ||
      !GetArray(info, first + 2, napi_uint32_array, b, nb) || !Dim(info, first + 3, op, "m", m) ||
      !Dim(info, first + 4, op, "n", n) || !Dim(info, first + 5, op, "k", k) || !Length(info, op, "a", na, m * WordsFor(k)) ||
      !Length(info, op, "b", nb, n * WordsFor(k)) || !Length(info, op, "out", nout, m * n)) {
    return info.Env().Undefined();
  }
  const std::string status = BinaryMatmul(v, a, b, m, n, k, out);
  return status.empty() ? info.Env().Undefined() : Fail(info.Env(), status);
}

Napi::Value BinaryMatmulSelected(const Napi::CallbackInfo& info) { return Matmul(info, 0, BgemmSelected()); }

Napi::Value BinaryMatmulIsa(const Napi::CallbackInfo& info) {
  const std::string isa = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  const Isa want = isa == "avx512" ? Isa::kAvx512 : isa == "avx2" ? Isa::kAvx2 : Isa::kRef;
  if (isa != "ref" && isa != "avx2" && isa != "avx512") {
    return Fail(info.Env(), "binaryMatmulIsa: isa must be 'ref', 'avx2' or 'avx512', but got '" + isa + "'");
  }
  const BgemmVariant* v = BgemmFind(want);
  if (!v) return Fail(info.Env(), "binaryMatmulIsa: this CPU cannot run the " + isa + " variant (see binaryIsas())");
  return Matmul(info, 1, *v);
}

Napi::Value BinaryIsas(const Napi::CallbackInfo& info) {
  auto list = Napi::Array::New(info.Env());
  uint32_t i = 0;
  for (Isa isa : {Isa::kRef, Isa::kAvx2, Isa::kAvx512}) {
    if (BgemmFind(isa)) list.Set(i++, IsaName(isa));
  }
  return list;
}

// geom argument i → g (checked); false with a JS exception pending on a bad geometry.
bool Geometry(const Napi::CallbackInfo& info, size_t i, const char* op, BinaryConvGeom& g) {
  const int32_t* geom;
  size_t ngeom;
  if (!GetArray(info, i, napi_int32_array, geom, ngeom) || !Length(info, op, "geom", ngeom, 15)) return false;
  g = BinaryConvGeom{geom[0], geom[1], geom[2], geom[3], geom[4], geom[5], geom[6], geom[7],
                     geom[8], geom[9], geom[10], geom[11], geom[12], geom[13], geom[14]};
  const bool ok = g.N >= 0 && g.C >= 1 && g.H >= 1 && g.W >= 1 && g.Cout >= 0 && g.Cg >= 1 && g.kh >= 1 && g.kw >= 1 &&
                  g.sh >= 1 && g.sw >= 1 && g.ph >= 0 && g.pw >= 0 && g.dh >= 1 && g.dw >= 1 && g.groups >= 1 &&
                  g.C == g.Cg * g.groups && g.Cout % g.groups == 0;
  if (!ok) {
    std::string s;
    for (int k = 0; k < 15; k++) s += (k ? "," : "") + std::to_string(geom[k]);
    Fail(info.Env(), std::string(op) + ": geometry must be positive with C = Cg·groups and Cout divisible by groups, "
                                       "but got [N,C,H,W,Cout,Cg,kh,kw,sh,sw,ph,pw,dh,dw,groups] = [" + s + "]");
    return false;
  }
  if (BinaryConvHo(g) < 1 || BinaryConvWo(g) < 1) {
    Fail(info.Env(), std::string(op) + ": the kernel does not fit the padded input");
    return false;
  }
  return true;
}

Napi::Value BinaryConv2dBinding(const Napi::CallbackInfo& info) {
  const char* op = "binaryConv2d";
  const float *x, *w;
  float* out;
  size_t nx, nw, nout;
  BinaryConvGeom g;
  if (!GetArray(info, 0, napi_float32_array, out, nout) || !GetArray(info, 1, napi_float32_array, x, nx) ||
      !GetArray(info, 2, napi_float32_array, w, nw) || !Geometry(info, 3, op, g)) {
    return info.Env().Undefined();
  }
  if (info.Length() < 5 || !info[4].IsNumber()) return Fail(info.Env(), "binaryConv2d: padValue must be a number");
  const double padValue = info[4].As<Napi::Number>().DoubleValue();
  const int64_t Ho = BinaryConvHo(g), Wo = BinaryConvWo(g);
  if (!Length(info, op, "x", nx, g.N * g.C * g.H * g.W) || !Length(info, op, "w", nw, g.Cout * g.Cg * g.kh * g.kw) ||
      !Length(info, op, "out", nout, g.N * g.Cout * Ho * Wo)) {
    return info.Env().Undefined();
  }
  const float* scale = nullptr;
  if (info.Length() > 5 && !info[5].IsNull() && !info[5].IsUndefined()) {
    size_t ns;
    if (!GetArray(info, 5, napi_float32_array, scale, ns) || !Length(info, op, "scale", ns, g.Cout)) return info.Env().Undefined();
  }
  const bool checkNaN = info.Length() > 6 && info[6].IsBoolean() && info[6].As<Napi::Boolean>().Value();
  int sawNaN = 0;
  const std::string status = BinaryConv2d(x, w, g, padValue, out, scale, checkNaN ? &sawNaN : nullptr);
  if (!status.empty()) return Fail(info.Env(), status);
  return checkNaN ? Napi::Boolean::New(info.Env(), sawNaN != 0) : info.Env().Undefined();
}

// binaryConv2dPrepare(w, geom, padValue) → { rows: Uint32Array, corr: Float32Array (empty: none),
// hasBorder: Uint8Array }: the weights packed once (inference); N in geom is ignored.
Napi::Value BinaryConv2dPrepareBinding(const Napi::CallbackInfo& info) {
  const char* op = "binaryConv2dPrepare";
  const float* w;
  size_t nw;
  BinaryConvGeom g;
  if (!GetArray(info, 0, napi_float32_array, w, nw) || !Geometry(info, 1, op, g)) return info.Env().Undefined();
  if (info.Length() < 3 || !info[2].IsNumber()) return Fail(info.Env(), "binaryConv2dPrepare: padValue must be a number");
  if (!Length(info, op, "w", nw, g.Cout * g.Cg * g.kh * g.kw)) return info.Env().Undefined();
  PreparedBinaryConv prep;
  const std::string status = PrepareBinaryConv2d(w, g, info[2].As<Napi::Number>().DoubleValue(), prep);
  if (!status.empty()) return Fail(info.Env(), status);
  Napi::Env env = info.Env();
  auto rows = Napi::Uint32Array::New(env, prep.rows.size());
  std::memcpy(rows.Data(), prep.rows.data(), prep.rows.size() * 4);
  auto corr = Napi::Float32Array::New(env, prep.corr.size());
  if (!prep.corr.empty()) std::memcpy(corr.Data(), prep.corr.data(), prep.corr.size() * 4);
  auto border = Napi::Uint8Array::New(env, prep.hasBorder.size());
  std::memcpy(border.Data(), prep.hasBorder.data(), prep.hasBorder.size());
  Napi::Object o = Napi::Object::New(env);
  o.Set("rows", rows);
  o.Set("corr", corr);
  o.Set("hasBorder", border);
  return o;
}

// binaryConv2dRun(out, x, rows, corr, hasBorder, geom, scale | null, bias | null): the conv with
// prepared weights (same geometry but N), then out = out·scale[co] + bias[co].
Napi::Value BinaryConv2dRunBinding(const Napi::CallbackInfo& info) {
  const char* op = "binaryConv2dRun";
  const float *x, *corr;
  const uint32_t* rows;
  const uint8_t* border;
  float* out;
  size_t nx, nrows, ncorr, nborder, nout;
  BinaryConvGeom g;
  if (!GetArray(info, 0, napi_float32_array, out, nout) || !GetArray(info, 1, napi_float32_array, x, nx) ||
      !GetArray(info, 2, napi_uint32_array, rows, nrows) || !GetArray(info, 3, napi_float32_array, corr, ncorr) ||
      !GetArray(info, 4, napi_uint8_array, border, nborder) || !Geometry(info, 5, op, g)) {
    return info.Env().Undefined();
  }
  const float* affine[3] = {nullptr, nullptr, nullptr};  // scale, bias [Cout]; thr [C]
  for (int k = 0; k < 3; k++) {
    const size_t i = 6 + k;
    if (info.Length() <= i || info[i].IsNull() || info[i].IsUndefined()) continue;
    const float* p;
    size_t n;
    if (!GetArray(info, i, napi_float32_array, p, n) ||
        !Length(info, op, k == 0 ? "scale" : k == 1 ? "bias" : "thr", n, k == 2 ? g.C : g.Cout)) {
      return info.Env().Undefined();
    }
    affine[k] = p;
  }
  const int64_t Ho = BinaryConvHo(g), Wo = BinaryConvWo(g), P = Ho * Wo;
  const int64_t Kw = g.kh * g.kw * WordsFor(g.Cg);
  if (!Length(info, op, "x", nx, g.N * g.C * g.H * g.W) || !Length(info, op, "out", nout, g.N * g.Cout * P) ||
      !Length(info, op, "rows", nrows, g.Cout * Kw * BgemmSelected().split) || !Length(info, op, "hasBorder", nborder, P) ||
      (ncorr != 0 && !Length(info, op, "corr", ncorr, g.Cout * P))) {
    return info.Env().Undefined();
  }
  const std::string status =
      RunBinaryConv2dRaw(x, rows, ncorr ? corr : nullptr, border, g, affine[0], affine[1], out, affine[2]);
  return status.empty() ? info.Env().Undefined() : Fail(info.Env(), status);
}

// Marks the externals binaryConv2dCreate returns, so binaryConv2dExec rejects any other value.
const napi_type_tag kPlanTag = {0x6f6e65626974ULL, 0x62636f6e76706c6eULL};

// binaryConv2dCreate(w, geom, padValue) → handle (an External owning a BinaryConvPlan).
Napi::Value BinaryConv2dCreateBinding(const Napi::CallbackInfo& info) {
  const char* op = "binaryConv2dCreate";
  const float* w;
  size_t nw;
  BinaryConvGeom g;
  if (!GetArray(info, 0, napi_float32_array, w, nw) || !Geometry(info, 1, op, g)) return info.Env().Undefined();
  if (info.Length() < 3 || !info[2].IsNumber()) return Fail(info.Env(), "binaryConv2dCreate: padValue must be a number");
  if (!Length(info, op, "w", nw, g.Cout * g.Cg * g.kh * g.kw)) return info.Env().Undefined();
  auto* plan = new (std::nothrow) BinaryConvPlan;
  if (!plan) return Fail(info.Env(), "binaryConv2dCreate: out of memory");
  const std::string status = CreateBinaryConvPlan(w, g, info[2].As<Napi::Number>().DoubleValue(), *plan);
  if (!status.empty()) {
    delete plan;
    return Fail(info.Env(), status);
  }
  Napi::Env env = info.Env();
  auto handle = Napi::External<BinaryConvPlan>::New(env, plan, [](Napi::Env, BinaryConvPlan* p) { delete p; });
  if (napi_type_tag_object(env, handle, &kPlanTag) != napi_ok) return Fail(env, "binaryConv2dCreate: could not tag the handle");
  return handle;
}

// binaryConv2dExec(handle, out, x, n, scale | null, bias | null, thr | null).
Napi::Value BinaryConv2dExecBinding(const Napi::CallbackInfo& info) {
  const char* op = "binaryConv2dExec";
  Napi::Env env = info.Env();
  bool tagged = false;
  if (info.Length() < 1 || !info[0].IsExternal() || napi_check_object_type_tag(env, info[0], &kPlanTag, &tagged) != napi_ok ||
      !tagged) {
    return Fail(env, "binaryConv2dExec: argument 0 must be a handle from binaryConv2dCreate");
  }
  BinaryConvPlan& plan = *info[0].As<Napi::External<BinaryConvPlan>>().Data();
  const float* x;
  float* out;
  size_t nx, nout;
  int64_t n;
  if (!GetArray(info, 1, napi_float32_array, out, nout) || !GetArray(info, 2, napi_float32_array, x, nx) ||
      !Dim(info, 3, op, "n", n)) {
    return env.Undefined();
  }
  const BinaryConvGeom& g = plan.g;
  const float* affine[3] = {nullptr, nullptr, nullptr};  // scale, bias [Cout]; thr [C]
  for (int k = 0; k < 3; k++) {
    const size_t i = 4 + k;
    if (info.Length() <= i || info[i].IsNull() || info[i].IsUndefined()) continue;
    const float* p;
    size_t len;
    if (!GetArray(info, i, napi_float32_array, p, len) ||
        !Length(info, op, k == 0 ? "scale" : k == 1 ? "bias" : "thr", len, k == 2 ? g.C : g.Cout)) {
      return env.Undefined();
    }
    affine[k] = p;
  }
  if (!Length(info, op, "x", nx, n * g.C * g.H * g.W) || !Length(info, op, "out", nout, n * g.Cout * plan.tables.P)) {
    return env.Undefined();
  }
  // The optional tail: res [n·Cout·P] (the add), b0, pos, neg, b1 [Cout] (the activation: on with neg).
  const float* tail[5] = {nullptr, nullptr, nullptr, nullptr, nullptr};
  const char* tailNames[5] = {"res", "b0", "pos", "neg", "b1"};
  for (int k = 0; k < 5; k++) {
    const size_t i = 7 + k;
    if (info.Length() <= i || info[i].IsNull() || info[i].IsUndefined()) continue;
    const float* p;
    size_t len;
    if (!GetArray(info, i, napi_float32_array, p, len) ||
        !Length(info, op, tailNames[k], len, k == 0 ? n * g.Cout * plan.tables.P : g.Cout)) {
      return env.Undefined();
    }
    tail[k] = p;
  }
  if ((tail[1] || tail[2] || tail[4]) && !tail[3]) return Fail(env, "binaryConv2dExec: b0, pos and b1 need neg (the activation)");
  const BinaryConvAct act{tail[0], tail[1], tail[2], tail[3], tail[4]};
  const bool anyTail = tail[0] || tail[3];
  const std::string status = RunBinaryConvPlan(plan, x, n, affine[0], affine[1], affine[2], out, anyTail ? &act : nullptr);
  return status.empty() ? env.Undefined() : Fail(env, status);
}

}  // namespace

void RegisterBinaryKernels(Napi::Env env, Napi::Object exports) {
  exports.Set("bitpack", Napi::Function::New(env, BitpackBinding));
  exports.Set("binaryMatmul", Napi::Function::New(env, BinaryMatmulSelected));
  exports.Set("binaryMatmulIsa", Napi::Function::New(env, BinaryMatmulIsa));
  exports.Set("binaryIsas", Napi::Function::New(env, BinaryIsas));
  exports.Set("binaryConv2d", Napi::Function::New(env, BinaryConv2dBinding));
  exports.Set("binaryConv2dPrepare", Napi::Function::New(env, BinaryConv2dPrepareBinding));
  exports.Set("binaryConv2dRun", Napi::Function::New(env, BinaryConv2dRunBinding));
  exports.Set("binaryConv2dCreate", Napi::Function::New(env, BinaryConv2dCreateBinding));
  exports.Set("binaryConv2dExec", Napi::Function::New(env, BinaryConv2dExecBinding));
}

}  // namespace onebit
