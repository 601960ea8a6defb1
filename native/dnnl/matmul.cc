// C[M, N] = op(A)·op(B) through oneDNN's matmul primitive. Transposes are expressed as strides on
// plain descriptors (no copies, no reorders): A is src [M, K] with strides {K, 1}, or {1, M} when
// A is stored [K, M] (transA); B is weights [K, N] with strides {N, 1}, or {1, K} when B is stored
// [N, K] (transB); C is [M, N] row-major. One primitive per (M, K, N, transA, transB), cached.
#include "dnnl/dnnl_common.h"

namespace onebit {
using namespace dnnlk;

namespace {
struct MatmulEntry : CacheEntry {
  dnnl::matmul prim;
  dnnl::memory a, b, c;  // handles set per call
};
}  // namespace

std::string DnnlMatmul(const float* a, const float* b, float* c, int64_t m, int64_t k, int64_t n, bool transA, bool transB) {
  if (m == 0 || n == 0 || k == 0) return "";  // c is pre-zeroed: an empty sum
  std::lock_guard<std::mutex> lock(KernelMutex());
  try {
    MatmulEntry& e = Cached<MatmulEntry>(Key("matmul", {m, k, n, transA, transB}), [&] {
      dnnl::memory::desc a_md({m, k}, dt::f32, transA ? dnnl::memory::dims{1, m} : dnnl::memory::dims{k, 1});
      dnnl::memory::desc b_md({k, n}, dt::f32, transB ? dnnl::memory::dims{1, k} : dnnl::memory::dims{n, 1});
      dnnl::memory::desc c_md({m, n}, dt::f32, dnnl::memory::dims{n, 1});
      dnnl::matmul::desc desc(a_md, b_md, c_md);
      dnnl::matmul::primitive_desc pd(desc, Engine());
      auto e = std::make_unique<MatmulEntry>();
      e->prim = dnnl::matmul(pd);
      e->a = dnnl::memory(a_md, Engine(), DNNL_MEMORY_NONE);
      e->b = dnnl::memory(b_md, Engine(), DNNL_MEMORY_NONE);
      e->c = dnnl::memory(c_md, Engine(), DNNL_MEMORY_NONE);
      return e;
    });
    e.a.set_data_handle(const_cast<float*>(a));
    e.b.set_data_handle(const_cast<float*>(b));
    e.c.set_data_handle(c);
    e.prim.execute(Stream(), {{DNNL_ARG_SRC, e.a}, {DNNL_ARG_WEIGHTS, e.b}, {DNNL_ARG_DST, e.c}});
    Stream().wait();
    return "";
  } catch (const dnnl::error& err) {
    return ErrorText("matmul", err);
  } catch (const std::exception& err) {
    return std::string("matmul: ") + err.what();
  }
}

}  // namespace onebit
