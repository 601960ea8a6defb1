// The onebit native addon: binary and elementwise kernels (always) and oneDNN float kernels (when built with
// oneDNN). `info()` reports what this build has; `setThreads(n)` sets the OpenMP thread count used
// by both our kernels and oneDNN (one runtime, libgomp: see the engine study on competing pools).
#include <omp.h>
#include <cstdlib>
#include <cstring>
#include "common.h"

namespace onebit {
void RegisterBinaryKernels(Napi::Env env, Napi::Object exports);
void RegisterEltwiseKernels(Napi::Env env, Napi::Object exports);
#ifdef ONEBIT_HAVE_DNNL
void RegisterDnnlKernels(Napi::Env env, Napi::Object exports);
#endif

Isa SelectedIsa() {
  static const Isa isa = [] {
    const char* forced = std::getenv("ONEBIT_ISA");
    bool has512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vpopcntdq");
    bool has2 = __builtin_cpu_supports("avx2");
    if (forced && std::strcmp(forced, "ref") == 0) return Isa::kRef;
    if (forced && std::strcmp(forced, "avx2") == 0 && has2) return Isa::kAvx2;
    if (forced && std::strcmp(forced, "avx512") == 0 && has512) return Isa::kAvx512;
    return has512 ? Isa::kAvx512 : has2 ? Isa::kAvx2 : Isa::kRef;
  }();
  return isa;
}

const char* IsaName(Isa isa) {
  return isa == Isa::kAvx512 ? "avx512" : isa == Isa::kAvx2 ? "avx2" : "ref";
}
}  // namespace onebit

static Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = Napi::Object::New(env);
#ifdef ONEBIT_HAVE_DNNL
  o.Set("dnnl", true);
#else
  o.Set("dnnl", false);
#endif
  o.Set("isa", onebit::IsaName(onebit::SelectedIsa()));
  o.Set("threads", omp_get_max_threads());
  return o;
}

static Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  int64_t n = onebit::GetInt(info, 0);
  if (n < 1) return onebit::Fail(info.Env(), "setThreads: expected a positive integer");
  omp_set_num_threads(static_cast<int>(n));
  return info.Env().Undefined();
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("info", Napi::Function::New(env, Info));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  onebit::RegisterBinaryKernels(env, exports);
  onebit::RegisterEltwiseKernels(env, exports);
#ifdef ONEBIT_HAVE_DNNL
  onebit::RegisterDnnlKernels(env, exports);
#endif
  return exports;
}

NODE_API_MODULE(onebit, Init)
