// Float conv2d (contract: Backend.conv2d in src/core/backend.ts: zero padding, stride, dilation,
// groups) with optional per-channel bias, by im2col + the float GEMM (sgemm.h), a panel of 8
// output pixels at a time: per (image, group, panel) the patches [K][8] (K = Cg·kh·kw, in the
// weight's (c, i, j) order) are gathered into L1 scratch and multiplied by the group's weight rows,
// writing y [N, Cout, Ho, Wo] directly. The weights are used in their own layout [Cout, K].
#include "sgemm.h"

OB_EXPORT(ob_conv_scratch) int32_t ob_conv_scratch(const ObConvGeom* g) {
  return (int32_t)(4 * (size_t)OB_NR * g->Cg * g->kh * g->kw);
}

// The patches of output pixels p0 .. p0+nl of one image-group (x at its first channel) → panel [K][8].
static void im2col(const ObConvGeom* g, int32_t Wo, const float* x, int32_t p0, int32_t nl, float* panel) {
  const int32_t H = g->H, W = g->W, kh = g->kh, kw = g->kw;
  int32_t ih0[8], iw0[8];
  for (int32_t l = 0; l < 8; l++) {
    const int32_t p = p0 + OB_MIN(l, nl - 1);
    ih0[l] = (p / Wo) * g->sh - g->ph;
    iw0[l] = (p % Wo) * g->sw - g->pw;
  }
  // One output row, unit stride: the 8 taps of a (c, i, j) are 8 consecutive input floats.
  const int32_t row = nl == 8 && g->sw == 1 && ih0[7] == ih0[0];
  float* dst = panel;
  for (int32_t c = 0; c < g->Cg; c++) {
    const float* xc = x + (size_t)c * H * W;
    for (int32_t i = 0; i < kh; i++) {
      for (int32_t j = 0; j < kw; j++, dst += 8) {
        if (row) {
          const int32_t ih = ih0[0] + i * g->dh, iw = iw0[0] + j * g->dw;
          if (ih < 0 || ih >= H) {
            for (int32_t l = 0; l < 8; l++) dst[l] = 0.0f;
            continue;
          }
          const float* s = xc + (size_t)ih * W + iw;
          if (iw >= 0 && iw + 8 <= W) {
#ifdef __wasm_simd128__
            wasm_v128_store(dst, wasm_v128_load(s));
            wasm_v128_store(dst + 4, wasm_v128_load(s + 4));
#else
            for (int32_t l = 0; l < 8; l++) dst[l] = s[l];
#endif
          } else {
            for (int32_t l = 0; l < 8; l++) dst[l] = iw + l >= 0 && iw + l < W ? s[l] : 0.0f;
          }
          continue;
        }
        for (int32_t l = 0; l < 8; l++) {
          const int32_t ih = ih0[l] + i * g->dh, iw = iw0[l] + j * g->dw;
          dst[l] = l < nl && ih >= 0 && ih < H && iw >= 0 && iw < W ? xc[(size_t)ih * W + iw] : 0.0f;
        }
      }
    }
  }
}

// Panels of OB_NR output pixels per (image, group): the work items of ob_conv_run.
OB_EXPORT(ob_conv_items) int32_t ob_conv_items(const ObConvGeom* g, int32_t n) {
  return n * g->groups * ((ob_ho(g) * ob_wo(g) + OB_NR - 1) / OB_NR);
}

// y [n, Cout, Ho, Wo] = conv2d(x, w) (+ bias[co]) (+ res) for the work items [begin, end) (item =
// (b·groups + gr)·panels + panel); w [Cout, Cg, kh, kw]; bias and res (laid out like y) may be
// null; scratch: ob_conv_scratch bytes (per thread).
OB_EXPORT(ob_conv_run)
void ob_conv_run(const ObConvGeom* g, const float* x, const float* w, const float* bias, const float* res, float* y,
                 float* scratch, int32_t begin, int32_t end) {
  const int32_t Ho = ob_ho(g), Wo = ob_wo(g), P = Ho * Wo, K = g->Cg * g->kh * g->kw, Cog = g->Cout / g->groups;
  const int32_t panels = (P + OB_NR - 1) / OB_NR;
  for (int32_t it = begin; it < end; it++) {
    const int32_t ig = it / panels, gr = ig % g->groups, p0 = (it % panels) * OB_NR, nl = OB_MIN(OB_NR, P - p0);
    const float* xg = x + (size_t)ig * g->Cg * g->H * g->W;
    const size_t yo = ((size_t)(ig / g->groups) * g->Cout + (size_t)gr * Cog) * P + p0;
    im2col(g, Wo, xg, p0, nl, scratch);
    ob_sgemm_panel(w + (size_t)gr * Cog * K, K, Cog, scratch, K, y + yo, P, nl, bias ? bias + gr * Cog : 0, res ? res + yo : 0);
  }
}
