// The inference engine's per-channel activation over [n, C, m] (contract: channelAct in
// src/infer/kernels.ts, the definition, and nativeChannelAct in src/backends/native/eltwise.ts):
// u = (x + r) + b0[c]; v = u >= 0 ? pos[c]·u : neg[c]·u; y = v + b1[c]; absent r: u = x + b0[c];
// absent b0 / b1 = 0 (still added, so −0 becomes +0 as in the TypeScript loop), absent pos = 1.
// Each step is one float32 operation, so results equal the TypeScript loop bit for bit.
#include "common.h"

OB_EXPORT(ob_channel_act)
void ob_channel_act(const float* x, const float* r, int32_t n, int32_t C, int32_t m, const float* b0, const float* pos,
                    const float* neg, const float* b1, float* out) {
  for (int32_t row = 0; row < n * C; row++) {
    const int32_t c = row % C;
    const float s0 = b0 ? b0[c] : 0.0f, p = pos ? pos[c] : 1.0f, q = neg[c], s1 = b1 ? b1[c] : 0.0f;
    const float* xr = x + (size_t)row * m;
    const float* rr = r ? r + (size_t)row * m : 0;
    float* o = out + (size_t)row * m;
    int32_t i = 0;
#ifdef __wasm_simd128__
    const v128_t vs0 = wasm_f32x4_splat(s0), vp = wasm_f32x4_splat(p), vq = wasm_f32x4_splat(q),
                 vs1 = wasm_f32x4_splat(s1), z = wasm_f32x4_splat(0.0f);
    for (; i + 4 <= m; i += 4) {
      v128_t u = wasm_v128_load(xr + i);
      if (rr) u = wasm_f32x4_add(u, wasm_v128_load(rr + i));
      u = wasm_f32x4_add(u, vs0);
      const v128_t slope = wasm_v128_bitselect(vp, vq, wasm_f32x4_ge(u, z));
      wasm_v128_store(o + i, wasm_f32x4_add(wasm_f32x4_mul(u, slope), vs1));
    }
#endif
    for (; i < m; i++) {
      const float u = (rr ? xr[i] + rr[i] : xr[i]) + s0;
      o[i] = u * (u >= 0.0f ? p : q) + s1;
    }
  }
}
