// oneDNN engine, stream, primitive cache and staged (reordered) arguments: see dnnl_common.h.
#include "dnnl/dnnl_common.h"

#include <omp.h>
#include <cstdlib>
#include <unordered_map>

namespace onebit {
namespace dnnlk {

dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::stream& Stream() {
  static dnnl::stream stream(Engine());
  return stream;
}

std::mutex& KernelMutex() {
  static std::mutex m;
  return m;
}

namespace {
struct ArenaSlot {
  void* data = nullptr;
  size_t bytes = 0;
};
ArenaSlot g_arena[kSlots];

constexpr size_t kMaxCacheEntries = 512;
std::unordered_map<std::string, std::unique_ptr<CacheEntry>>& Cache() {
  static std::unordered_map<std::string, std::unique_ptr<CacheEntry>> cache;
  return cache;
}
}  // namespace

void* Arena(int slot, size_t bytes) {
  ArenaSlot& a = g_arena[slot];
  if (a.bytes < bytes) {
    std::free(a.data);
    size_t rounded = (bytes + 63) / 64 * 64;
    a.data = std::aligned_alloc(64, rounded);
    a.bytes = a.data ? rounded : 0;
  }
  return a.data;
}

CacheEntry* CacheFind(const std::string& key) {
  auto& c = Cache();
  auto it = c.find(key);
  return it == c.end() ? nullptr : it->second.get();
}

CacheEntry* CacheInsert(const std::string& key, std::unique_ptr<CacheEntry> entry) {
  auto& c = Cache();
  if (c.size() >= kMaxCacheEntries) c.clear();
  CacheEntry* p = entry.get();
  c[key] = std::move(entry);
  return p;
}

size_t CacheSize() { return Cache().size(); }

std::string Key(const char* kernel, std::initializer_list<int64_t> params) {
  std::string k(kernel);
  k += ':';
  for (int64_t v : params) {
    k += std::to_string(v);
    k += ',';
  }
  // oneDNN's OpenMP kernels fix their work split for the thread count at creation: a primitive
  // made under setThreads(1) would keep one thread busy after setThreads(2).
  k += "t";
  k += std::to_string(omp_get_max_threads());
  return k;
}

Staged MakeStaged(const dnnl::memory::desc& user_md, const dnnl::memory::desc& prim_md, bool is_input, int slot) {
  Staged s;
  s.slot = slot;
  s.user = dnnl::memory(user_md, Engine(), DNNL_MEMORY_NONE);
  if (user_md == prim_md) {
    s.inner = s.user;
    return s;
  }
  s.reorders = true;
  s.inner = dnnl::memory(prim_md, Engine(), DNNL_MEMORY_NONE);
  s.inner_bytes = prim_md.get_size();
  s.reorder = is_input ? dnnl::reorder(s.user, s.inner) : dnnl::reorder(s.inner, s.user);
  return s;
}

static void BindInner(Staged& s) {
  void* buf = Arena(s.slot, s.inner_bytes);
  if (!buf) throw dnnl::error(dnnl_out_of_memory, "could not allocate a reorder buffer");
  s.inner.set_data_handle(buf);
}

dnnl::memory& BindInput(Staged& s, const float* data) {
  s.user.set_data_handle(const_cast<float*>(data));
  if (s.reorders) {
    BindInner(s);
    s.reorder.execute(Stream(), s.user, s.inner);
  }
  return s.inner;
}

dnnl::memory& BindOutput(Staged& s, float* data) {
  s.user.set_data_handle(data);
  if (s.reorders) BindInner(s);
  return s.inner;
}

void FinishOutput(Staged& s) {
  if (s.reorders) s.reorder.execute(Stream(), s.inner, s.user);
}

dnnl::memory::desc PlainDesc(const dnnl::memory::dims& dims) {
  static const tag tags[] = {tag::a, tag::ab, tag::abc, tag::abcd, tag::abcde};
  return dnnl::memory::desc(dims, dt::f32, tags[dims.size() - 1]);
}

std::string ErrorText(const char* kernel, const dnnl::error& e) {
  return std::string(kernel) + ": oneDNN error " + std::to_string(static_cast<int>(e.status)) + " (" + e.what() + ")";
}

}  // namespace dnnlk
}  // namespace onebit
