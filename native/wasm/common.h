// Shared definitions of onebit's WebAssembly kernels (native/wasm/*.c → build/wasm/onebit*.wasm,
// built by native/build-wasm.cjs; the TypeScript side is src/infer/wasm/).
//
// Freestanding C: no libc, no emscripten. The module exports its memory and plain functions whose
// arguments are byte offsets into it (pointers) and ints; the TypeScript side owns the memory
// layout (src/infer/wasm/memory.ts: persistent blocks for prepared weights, one reusable scratch
// block per call). Kernels never allocate and never fail: the caller validated everything.
//
// One source serves both builds: code under `#ifdef __wasm_simd128__` uses 128-bit SIMD
// (wasm_simd128.h), the #else branch is the scalar build for engines without SIMD. Floating point is
// IEEE float32 with no contraction (-ffp-contract=off; WebAssembly has no FMA without relaxed-simd),
// so every result is reproducible across engines.
#pragma once
#include <stddef.h>
#include <stdint.h>
#ifdef __wasm_simd128__
#include <wasm_simd128.h>
#endif

#ifdef __wasm__
#define OB_EXPORT(name) __attribute__((export_name(#name)))
#else  // compiled natively too (native/eltwise/portable_conv.cc)
#define OB_EXPORT(name)
#endif
#define OB_INLINE static inline __attribute__((always_inline))
#define OB_MIN(a, b) ((a) < (b) ? (a) : (b))
#define OB_MAX(a, b) ((a) > (b) ? (a) : (b))

// Convolution geometry, an int32 array written by the TypeScript side (same field order as the
// native addon's geom, without N): x [N, C, H, W], w [Cout, Cg, kh, kw], y [N, Cout, Ho, Wo].
typedef struct {
  int32_t C, H, W, Cout, Cg, kh, kw, sh, sw, ph, pw, dh, dw, groups;
} ObConvGeom;

OB_INLINE int32_t ob_out_size(int32_t in, int32_t pad, int32_t k, int32_t stride, int32_t dil) {
  return (in + 2 * pad - dil * (k - 1) - 1) / stride + 1;
}
OB_INLINE int32_t ob_ho(const ObConvGeom* g) { return ob_out_size(g->H, g->ph, g->kh, g->sh, g->dh); }
OB_INLINE int32_t ob_wo(const ObConvGeom* g) { return ob_out_size(g->W, g->pw, g->kw, g->sw, g->dw); }

// Round n up to a multiple of m (m a power of two).
OB_INLINE size_t ob_round_up(size_t n, size_t m) { return (n + m - 1) & ~(m - 1); }

OB_INLINE void ob_zero_u32(uint32_t* p, size_t n) {
  for (size_t i = 0; i < n; i++) p[i] = 0;
}
OB_INLINE void ob_zero_f32(float* p, size_t n) {
  for (size_t i = 0; i < n; i++) p[i] = 0.0f;
}
