// Prepared binary conv2d: weights packed once, then per call bit planes of the input, a bit-im2col
// panel of OB_PB output pixels, and the binary GEMM (bgemm.h) with the output transform fused.
// Contract: PreparedBinaryConv2d in src/backends/native/binary.ts; the native version is
// native/bconv/bconv.cc, whose results these equal exactly.
//
// Bit layout. A patch is a dense bit string of K = Cg·taps bits, bit t·Cg + c = sign bit of
// channel c at tap t = i·kw + j (1 = −1), packed LSB-first into ceil(K/32) words (padded with zero
// words to kwp): dense rather than one word per tap, so Cg = 16 costs 4.5 words per patch, not 9.
//  1. Prepare: weight row co = the patch string of sign(w[co]); and, when padValue ≠ +1 and there
//     is padding, the integer border corrections corr[co][p] (step 4).
//  2. Run, per (image, group): bit planes [Cw][Hp][Wp] (Cw = ceil(Cg/32) words per pixel) of the
//     input zero-bordered to Hp = H + 2ph, Wp = W + 2pw: bit c%32 of word c/32 = x[c] < thr[c]
//     (the bit of sign(x − thr); thr = 0 without thresholds). Border words are 0, i.e. +1.
//  3. Per panel: gather each output pixel's patch string from the planes (a bit writer appends the
//     Cg bits of each tap; plain word copies when Cg % 32 == 0), then the GEMM writes
//     y[n, g·Cog + m, p0 ..] for the group's Cog rows.
//  4. Padding: step 3 computed the conv with a +1 border. A border tap of row co adds
//     S(co, t) = Σ_c sign(w[co, c, t]) there, the contract wants padValue·S(co, t), so output pixels
//     whose window leaves the image get (padValue − 1)·Σ_{taps outside} S(co, t): integers, added
//     before the float conversion, exactly as the native kernel adds them.
//  5. Epilogue: ·scale[co], + bias[co], + residual (ResNet's add fused in), one float32 op each.
// Threads (the onebit-simd-threads.wasm build, src/infer/wasm/pool.ts): ob_bconv_pack fills the
// planes of every (image, group) item, then ob_bconv_gemm runs any [begin, end) of the
// (item, panel, output-channel block) work items, each writing its own disjoint outputs.
#include "bgemm.h"

typedef struct {
  int32_t Ho, Wo, P, taps, Cw, K, kwp, Hp, Wp, plane, Cog;
} Derived;

static Derived derive(const ObConvGeom* g) {
  Derived d;
  d.Ho = ob_ho(g);
  d.Wo = ob_wo(g);
  d.P = d.Ho * d.Wo;
  d.taps = g->kh * g->kw;
  d.Cw = (g->Cg + 31) >> 5;
  d.K = g->Cg * d.taps;
  d.kwp = ob_bgemm_kwp((d.K + 31) >> 5);
  d.Hp = g->H + 2 * g->ph;
  d.Wp = g->W + 2 * g->pw;
  d.plane = d.Hp * d.Wp;
  d.Cog = g->Cout / g->groups;
  return d;
}

static int needs_corr(const ObConvGeom* g, int32_t pad) { return pad != 1 && (g->ph > 0 || g->pw > 0); }

// Words of one (image, group)'s bit planes: the zero-bordered planes plus 8 words of slack.
OB_INLINE size_t planes_words(const Derived* d) { return ob_round_up((size_t)d->Cw * d->plane + 8, 4); }

// sizes[0] = words of the packed weight rows, sizes[1] = int32s of the border corrections (0 when
// none are needed), sizes[2] = int32s of the tap offset table, sizes[3] = words of one
// (image, group)'s bit planes, sizes[4] = words of one GEMM panel (per thread), sizes[5] = pixel
// panels per (image, group), sizes[6] = scratch bytes of ob_bconv_run.
OB_EXPORT(ob_bconv_sizes) void ob_bconv_sizes(const ObConvGeom* g, int32_t pad, int32_t* sizes) {
  const Derived d = derive(g);
  sizes[0] = g->Cout * d.kwp;
  sizes[1] = needs_corr(g, pad) ? g->Cout * d.P + 8 : 0;
  sizes[2] = d.taps * d.Cw;
  sizes[3] = (int32_t)planes_words(&d);
  sizes[4] = OB_PB * d.kwp;
  sizes[5] = (d.P + OB_PB - 1) / OB_PB;
  sizes[6] = (int32_t)(4 * (planes_words(&d) + (size_t)OB_PB * d.kwp));
}

OB_EXPORT(ob_bconv_prepare)
void ob_bconv_prepare(const ObConvGeom* g, const float* w, int32_t pad, uint32_t* rows, int32_t* corr, int32_t* toff) {
  const Derived d = derive(g);
  const int32_t Cg = g->Cg, taps = d.taps;
  for (int32_t i = 0; i < g->kh; i++) {
    for (int32_t j = 0; j < g->kw; j++) {
      for (int32_t cw = 0; cw < d.Cw; cw++) toff[(i * g->kw + j) * d.Cw + cw] = cw * d.plane + i * g->dh * d.Wp + j * g->dw;
    }
  }
  ob_zero_u32(rows, (size_t)g->Cout * d.kwp);
  for (int32_t co = 0; co < g->Cout; co++) {
    uint32_t* row = rows + (size_t)co * d.kwp;
    for (int32_t c = 0; c < Cg; c++) {
      for (int32_t t = 0; t < taps; t++) {
        const int32_t bit = t * Cg + c;
        if (w[((size_t)co * Cg + c) * taps + t] < 0.0f) row[bit >> 5] |= 1u << (bit & 31);
      }
    }
  }
  if (!needs_corr(g, pad)) return;
  const int32_t P = d.P;
  for (int32_t i = 0; i < g->Cout * P + 8; i++) corr[i] = 0;
  for (int32_t p = 0; p < P; p++) {
    const int32_t ih0 = (p / d.Wo) * g->sh - g->ph, iw0 = (p % d.Wo) * g->sw - g->pw;
    for (int32_t i = 0; i < g->kh; i++) {
      for (int32_t j = 0; j < g->kw; j++) {
        const int32_t ih = ih0 + i * g->dh, iw = iw0 + j * g->dw;
        if (ih >= 0 && ih < g->H && iw >= 0 && iw < g->W) continue;
        const int32_t t = i * g->kw + j;
        for (int32_t co = 0; co < g->Cout; co++) {
          int32_t s = 0;  // S(co, t) = Σ_c sign(w[co, c, t])
          for (int32_t c = 0; c < Cg; c++) s += w[((size_t)co * Cg + c) * taps + t] < 0.0f ? -1 : 1;
          corr[(size_t)co * P + p] += (pad - 1) * s;
        }
      }
    }
  }
}

// Step 2: the bit planes of channels gr·Cg .. of image x (planes already zeroed).
static void pack_planes(const ObConvGeom* g, const Derived* d, const float* x, const float* thr, uint32_t* planes) {
  const int32_t H = g->H, W = g->W, HW = H * W;
  for (int32_t cw = 0; cw < d->Cw; cw++) {
    const int32_t c0 = 32 * cw, c1 = OB_MIN(g->Cg, c0 + 32);
    for (int32_t h = 0; h < H; h++) {
      uint32_t* dst = planes + (size_t)cw * d->plane + (size_t)(h + g->ph) * d->Wp + g->pw;
      const float* src = x + (size_t)h * W;
      int32_t w = 0;
#ifdef __wasm_simd128__
      for (; w + 8 <= W; w += 8) {
        v128_t acc0 = wasm_i32x4_splat(0), acc1 = acc0;
        for (int32_t c = c0; c < c1; c++) {
          const float* s = src + (size_t)c * HW + w;
          const v128_t t = wasm_f32x4_splat(thr ? thr[c] : 0.0f), bit = wasm_i32x4_splat((int32_t)(1u << (c & 31)));
          acc0 = wasm_v128_or(acc0, wasm_v128_and(wasm_f32x4_lt(wasm_v128_load(s), t), bit));
          acc1 = wasm_v128_or(acc1, wasm_v128_and(wasm_f32x4_lt(wasm_v128_load(s + 4), t), bit));
        }
        wasm_v128_store(dst + w, acc0);
        wasm_v128_store(dst + w + 4, acc1);
      }
      for (; w + 4 <= W; w += 4) {
        v128_t acc = wasm_i32x4_splat(0);
        for (int32_t c = c0; c < c1; c++) {
          const v128_t t = wasm_f32x4_splat(thr ? thr[c] : 0.0f), bit = wasm_i32x4_splat((int32_t)(1u << (c & 31)));
          acc = wasm_v128_or(acc, wasm_v128_and(wasm_f32x4_lt(wasm_v128_load(src + (size_t)c * HW + w), t), bit));
        }
        wasm_v128_store(dst + w, acc);
      }
#endif
      for (; w < W; w++) {
        uint32_t acc = 0;
        for (int32_t c = c0; c < c1; c++) acc |= (uint32_t)(src[(size_t)c * HW + w] < (thr ? thr[c] : 0.0f)) << (c & 31);
        dst[w] = acc;
      }
    }
  }
}

#if OB_BGEMM_SIMD

// Step 3 gather, SIMD panel [kwp][OB_PB]: 4 output pixels per vector; every lane appends the same
// number of bits per tap, so the bit writer's state (fill) is shared by the lanes.
static void gather(const ObConvGeom* g, const Derived* d, const uint32_t* planes, const int32_t* toff, int32_t p0,
                   int32_t nl, uint32_t* panel) {
  const int32_t Cg = g->Cg, Cw = d->Cw, n = d->taps * Cw, rem = Cg & 31;
  for (int32_t l0 = 0; l0 < nl; l0 += 4) {
    int32_t base[4];
    for (int32_t l = 0; l < 4; l++) {
      const int32_t p = p0 + OB_MIN(l0 + l, nl - 1);
      base[l] = (p / d->Wo) * g->sh * d->Wp + (p % d->Wo) * g->sw;
    }
    // 0: 4 lanes at word stride 1, 1: stride 2, 2: anything else
    const int32_t run = base[1] - base[0] == base[2] - base[1] && base[2] - base[1] == base[3] - base[2]
                            ? (base[1] - base[0] == 1 ? 0 : base[1] - base[0] == 2 ? 1 : 2)
                            : 2;
    uint32_t* dst = panel + l0;
    v128_t acc = wasm_i32x4_splat(0);
    int32_t fill = 0;
    for (int32_t e = 0; e < n; e++) {
      const uint32_t* s = planes + toff[e];
      v128_t v;
      if (run == 0) {
        v = wasm_v128_load(s + base[0]);
      } else if (run == 1) {
        v = wasm_i32x4_shuffle(wasm_v128_load(s + base[0]), wasm_v128_load(s + base[0] + 4), 0, 2, 4, 6);
      } else {
        v = wasm_u32x4_make(s[base[0]], s[base[1]], s[base[2]], s[base[3]]);
      }
      const int32_t nb = (e % Cw == Cw - 1 && rem) ? rem : 32;
      if (nb == 32) {
        if (fill == 0) {
          wasm_v128_store(dst, v);
        } else {
          wasm_v128_store(dst, wasm_v128_or(acc, wasm_i32x4_shl(v, fill)));
          acc = wasm_u32x4_shr(v, 32 - fill);
        }
        dst += OB_PB;
      } else {
        acc = wasm_v128_or(acc, wasm_i32x4_shl(v, fill));
        fill += nb;
        if (fill >= 32) {
          wasm_v128_store(dst, acc);
          dst += OB_PB;
          fill -= 32;
          acc = wasm_u32x4_shr(v, nb - fill);
        }
      }
    }
    if (fill) wasm_v128_store(dst, acc);
  }
}

#else

// Step 3 gather, scalar panel [OB_PB][kwp]: one pixel's patch string per panel row.
static void gather(const ObConvGeom* g, const Derived* d, const uint32_t* planes, const int32_t* toff, int32_t p0,
                   int32_t nl, uint32_t* panel) {
  const int32_t Cw = d->Cw, n = d->taps * Cw, rem = g->Cg & 31;
  for (int32_t l = 0; l < nl; l++) {
    const int32_t p = p0 + l;
    const uint32_t* s = planes + (p / d->Wo) * g->sh * d->Wp + (p % d->Wo) * g->sw;
    uint32_t* dst = panel + (size_t)l * d->kwp;
    uint32_t* end = dst + d->kwp;
    if (!rem) {
      for (int32_t e = 0; e < n; e++) *dst++ = s[toff[e]];
    } else {
      uint64_t acc = 0;
      int32_t fill = 0;
      for (int32_t e = 0; e < n; e++) {
        const int32_t nb = e % Cw == Cw - 1 ? rem : 32;
        acc |= (uint64_t)s[toff[e]] << fill;
        fill += nb;
        if (fill >= 32) {
          *dst++ = (uint32_t)acc;
          acc >>= 32;
          fill -= 32;
        }
      }
      if (fill) *dst++ = (uint32_t)acc;
    }
    while (dst < end) *dst++ = 0;
  }
}

#endif

// Step 2 for the (image, group) items [begin, end) (item ig = b·groups + gr): the zero-bordered
// bit planes of x's channels gr·Cg .. into planes + ig·stride words.
static void pack_items(const ObConvGeom* g, const Derived* d, const float* x, const float* thr, uint32_t* planes,
                       size_t stride, int32_t begin, int32_t end) {
  for (int32_t ig = begin; ig < end; ig++) {
    uint32_t* pl = planes + (size_t)ig * stride;
    ob_zero_u32(pl, planes_words(d));
    pack_planes(g, d, x + (size_t)ig * g->Cg * g->H * g->W, thr ? thr + (ig % g->groups) * g->Cg : 0, pl);
  }
}

// Steps 3-4 for the work items [begin, end): item = (ig·panels + pn)·msplit + mb, where ig =
// b·groups + gr picks the planes (planes + ig·stride words), pn the panel of OB_PB output pixels
// and mb the block of ceil(Cog/msplit) (rounded up to 4) output channels of the group.
static void gemm_items(const ObConvGeom* g, const Derived* d, const uint32_t* planes, size_t stride, const uint32_t* rows,
                       const int32_t* corr, const int32_t* toff, const float* scale, const float* bias, const float* res,
                       float* y, uint32_t* panel, int32_t msplit, int32_t begin, int32_t end) {
  const int32_t P = d->P, Cog = d->Cog, panels = (P + OB_PB - 1) / OB_PB;
  const int32_t mstep = (((Cog + msplit - 1) / msplit) + 3) & ~3;
  int32_t gathered = -1;  // the (ig, pn) whose patches are in `panel`
  for (int32_t it = begin; it < end; it++) {
    const int32_t mb = it % msplit, q = it / msplit, pn = q % panels, ig = q / panels;
    const int32_t m0 = mb * mstep, M = OB_MIN(Cog, m0 + mstep) - m0;
    if (M <= 0) continue;
    const int32_t gr = ig % g->groups, p0 = pn * OB_PB, nl = OB_MIN(OB_PB, P - p0);
    if (gathered != q) {
      gather(g, d, planes + (size_t)ig * stride, toff, p0, nl, panel);
      gathered = q;
    }
    const size_t ch = (size_t)gr * Cog + m0;  // first output channel, within the image
    const size_t yo = ((size_t)(ig / g->groups) * g->Cout + ch) * P + p0;
    const ObBgemmOut out = {
        y + yo, P, corr ? corr + ch * P + p0 : 0, P, scale ? scale + ch : 0, bias ? bias + ch : 0, res ? res + yo : 0,
    };
    ob_bgemm_panel(rows + ch * d->kwp, M, panel, d->kwp, d->K, &out, nl);
  }
}

// Step 2 for the items [begin, end) of a batch: planes of item ig at planes + ig·sizes[3] words.
OB_EXPORT(ob_bconv_pack)
void ob_bconv_pack(const ObConvGeom* g, const float* x, const float* thr, uint32_t* planes, int32_t begin, int32_t end) {
  const Derived d = derive(g);
  pack_items(g, &d, x, thr, planes, planes_words(&d), begin, end);
}

// Steps 3-4 for the items [begin, end) (see gemm_items) of y [n, Cout, Ho, Wo], with the planes of
// ob_bconv_pack; `panel` is this thread's sizes[4] words. scale, bias, res may be null; res (a
// residual laid out like y) is added last.
OB_EXPORT(ob_bconv_gemm)
void ob_bconv_gemm(const ObConvGeom* g, const uint32_t* planes, const uint32_t* rows, const int32_t* corr, const int32_t* toff,
                   const float* scale, const float* bias, const float* res, float* y, uint32_t* panel, int32_t msplit,
                   int32_t begin, int32_t end) {
  const Derived d = derive(g);
  gemm_items(g, &d, planes, planes_words(&d), rows, corr, toff, scale, bias, res, y, panel, msplit, begin, end);
}

// y [n, Cout, Ho, Wo] = binaryConv2d(sign(x − thr), w)·scale + bias (+ res) with the prepared rows /
// corr / toff, single-threaded, one (image, group) at a time in one block of planes (scratch:
// sizes[6] bytes). corr null when ob_bconv_sizes said 0; scale, bias, thr, res may be null.
OB_EXPORT(ob_bconv_run)
void ob_bconv_run(const ObConvGeom* g, int32_t n, const float* x, const uint32_t* rows, const int32_t* corr, const int32_t* toff,
                  const float* scale, const float* bias, const float* thr, const float* res, float* y, uint32_t* scratch) {
  const Derived d = derive(g);
  const int32_t panels = (d.P + OB_PB - 1) / OB_PB;
  uint32_t* planes = scratch;
  uint32_t* panel = scratch + planes_words(&d);
  for (int32_t ig = 0; ig < n * g->groups; ig++) {
    pack_items(g, &d, x, thr, planes, 0, ig, ig + 1);
    gemm_items(g, &d, planes, 0, rows, corr, toff, scale, bias, res, y, panel, 1, ig * panels, (ig + 1) * panels);
  }
}
