// The onebit native addon: binary and elementwise kernels (always) and oneDNN float kernels (when built with
// oneDNN). `info()` reports what this build has; `setThreads(n)` sets the OpenMP thread count used
// by both our kernels and oneDNN (one runtime, libgomp: see the engine study on competing pools).
#include <omp.h>
#include <cstdlib>
#include <cstring>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
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

// Training allocates and drops megabyte-sized Float32Arrays every step. With glibc's defaults each
// one above the (dynamic) mmap threshold is a fresh mapping, so every first touch of a page is a
// page fault (~2 us per 4 KiB page on this VM: filling a new 8 MiB array took 5.5 ms vs 1.1 ms on
// reused heap memory, measured). Serving them from the heap and not trimming it keeps the pages
// mapped between steps. Process-wide, so it can be turned off: ONEBIT_MALLOC_TUNE=0.
static void TuneMalloc() {
#if defined(__GLIBC__)
  const char* env = std::getenv("ONEBIT_MALLOC_TUNE");
  if (env && std::strcmp(env, "0") == 0) return;
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's maximum on 64-bit
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  TuneMalloc();
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
