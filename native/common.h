// Shared helpers for the N-API bindings. C++ kernels never throw, print or exit: they return a
// status (empty string = ok) that the binding turns into one JavaScript Error.
#pragma once
#include <napi.h>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

namespace onebit {

// Throws a JS Error with `msg` and returns undefined (bindings `return Fail(env, "...")`).
inline Napi::Value Fail(Napi::Env env, const std::string& msg) {
  Napi::Error::New(env, "onebit native: " + msg).ThrowAsJavaScriptException();
  return env.Undefined();
}

// Typed-array argument checks; return false (with a JS exception pending) on mismatch.
template <typename T>
inline bool GetArray(const Napi::CallbackInfo& info, size_t i, napi_typedarray_type type, T*& data, size_t& length) {
  if (info.Length() <= i || !info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != type) {
    Fail(info.Env(), "argument " + std::to_string(i) + " has the wrong type (expected a typed array of the kernel's element type)");
    return false;
  }
  auto a = info[i].As<Napi::TypedArray>();
  data = reinterpret_cast<T*>(static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset());
  length = a.ElementLength();
  return true;
}

inline int64_t GetInt(const Napi::CallbackInfo& info, size_t i) {
  return info.Length() > i && info[i].IsNumber() ? info[i].As<Napi::Number>().Int64Value() : -1;
}

// Kernel variant chosen at run time (see bgemm_select.cc): best the CPU supports, or ONEBIT_ISA.
enum class Isa { kRef = 0, kAvx2 = 1, kAvx512 = 2 };
Isa SelectedIsa();
const char* IsaName(Isa isa);

// The clipped STE's bound in float32: for a float v, v <= clip (compared in double, as TypeScript
// does) exactly when v <= ClipBoundF32(clip), the largest float not above clip, and v >= -clip
// exactly when v >= -ClipBoundF32(clip). A NaN clip gives -infinity: no v passes either test.
inline float ClipBoundF32(double clip) {
  if (std::isnan(clip)) return -std::numeric_limits<float>::infinity();
  float hi = static_cast<float>(clip);
  if (static_cast<double>(hi) > clip) hi = std::nextafter(hi, -std::numeric_limits<float>::infinity());
  return hi;
}

}  // namespace onebit
