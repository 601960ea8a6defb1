/**
 * Reference 2-D convolution (cross-correlation, as in every DL framework) by im2col + GEMM.
 *
 * Layout: x [N, C, H, W], w [Cout, C/groups, kh, kw], y [N, Cout, Ho, Wo], all row-major, with
 * Ho = floor((H + 2·padH − dilH·(kh−1) − 1) / strideH) + 1 (likewise Wo). Padding is zeros.
 *
 * Method, per image n and group g (Cg = C/groups input channels, Cog = Cout/groups outputs,
 * K = Cg·kh·kw the patch length, P = Ho·Wo the output pixels):
 *  - im2col builds colT [P, K]: row p holds the input patch under output pixel p, in the same
 *    (c, i, j) order as a weight row, so the weight block of the group, w_g [Cog, K], is used as is.
 *  - forward:          y_g[Cog, P]  = w_g · colTᵀ          (matmulNT(w_g, colT))
 *  - backward input:   dcolT[P, K]  = dy_gᵀ · w_g          (matmulNT(dy_gᵀ, w_gᵀ)), then col2im
 *                      scatter-adds every patch entry back onto the input pixel it was read from.
 *  - backward filter:  dw_g[Cog, K] += dy_g · colT         (matmulNT(dy_g, colTᵀ)), summed over n
 *                      in float64.
 * The GEMM is the shared JS kernel of ./matmul.ts (4x4 register tiles, float64 accumulation).
 * 1x1 convolutions with stride 1 and no padding skip im2col (the patch matrix is xᵀ).
 */
import type { Conv2dParams, Shape } from '../../core/backend.js';
import { matmulNT, transpose2d } from './matmul.js';

interface Geom {
  N: number; C: number; H: number; W: number;
  Cout: number; Cg: number; Cog: number; kh: number; kw: number;
  Ho: number; Wo: number;
  sh: number; sw: number; ph: number; pw: number; dh: number; dw: number;
  groups: number;
  /** Patch length Cg·kh·kw. */
  K: number;
  /** Output pixels per image Ho·Wo. */
  P: number;
  /** True when the patch matrix is just the transposed input block (1x1, stride 1, no padding). */
  pointwise: boolean;
}

function geometry(xShape: Shape, wShape: Shape, p: Conv2dParams): Geom {
  const [N, C, H, W] = xShape as [number, number, number, number];
  const [Cout, Cg, kh, kw] = wShape as [number, number, number, number];
  const [sh, sw] = p.stride, [ph, pw] = p.padding, [dh, dw] = p.dilation;
  const Ho = Math.floor((H + 2 * ph - dh * (kh - 1) - 1) / sh) + 1;
  const Wo = Math.floor((W + 2 * pw - dw * (kw - 1) - 1) / sw) + 1;
  const pointwise = kh === 1 && kw === 1 && sh === 1 && sw === 1 && ph === 0 && pw === 0;
  return {
    N, C, H, W, Cout, Cg, Cog: Cout / p.groups, kh, kw, Ho, Wo, sh, sw, ph, pw, dh, dw,
    groups: p.groups, K: Cg * kh * kw, P: Ho * Wo, pointwise,
  };
}

/** colT[p, (c, i, j)] = x[xOff + c·H·W + ih·W + iw] (0 outside the image), for one image and group. */
function im2colT(x: Float32Array, xOff: number, g: Geom, col: Float32Array): void {
  const { Cg, H, W, kh, kw, Ho, Wo, sh, sw, ph, pw, dh, dw } = g;
  const HW = H * W;
  let r = 0;
  for (let oh = 0; oh < Ho; oh++) {
    const ih0 = oh * sh - ph;
    for (let ow = 0; ow < Wo; ow++) {
      const iw0 = ow * sw - pw;
      for (let c = 0; c < Cg; c++) {
        const base = xOff + c * HW;
        for (let i = 0; i < kh; i++) {
          const ih = ih0 + i * dh;
          if (ih < 0 || ih >= H) {
            for (let j = 0; j < kw; j++) col[r++] = 0;
            continue;
          }
          const row = base + ih * W;
          for (let j = 0, iw = iw0; j < kw; j++, iw += dw) col[r++] = iw >= 0 && iw < W ? x[row + iw]! : 0;
        }
      }
    }
  }
}

/** The adjoint of im2colT: dx[xOff + …] += dcolT[p, (c, i, j)] for every in-image entry. */
function col2imT(dcol: Float32Array, dx: Float32Array, xOff: number, g: Geom): void {
  const { Cg, H, W, kh, kw, Ho, Wo, sh, sw, ph, pw, dh, dw } = g;
  const HW = H * W;
  let r = 0;
  for (let oh = 0; oh < Ho; oh++) {
    const ih0 = oh * sh - ph;
    for (let ow = 0; ow < Wo; ow++) {
      const iw0 = ow * sw - pw;
      for (let c = 0; c < Cg; c++) {
        const base = xOff + c * HW;
        for (let i = 0; i < kh; i++) {
          const ih = ih0 + i * dh;
          if (ih < 0 || ih >= H) {
            r += kw;
            continue;
          }
          const row = base + ih * W;
          for (let j = 0, iw = iw0; j < kw; j++, iw += dw, r++) {
            if (iw >= 0 && iw < W) dx[row + iw]! += dcol[r]!;
          }
        }
      }
    }
  }
}

export function conv2d(x: Float32Array, xShape: Shape, w: Float32Array, wShape: Shape, p: Conv2dParams): Float32Array {
  const g = geometry(xShape, wShape, p);
  const { N, C, H, W, Cout, Cg, Cog, K, P, groups } = g;
  const y = new Float32Array(N * Cout * P);
  const col = new Float32Array(P * K);
  for (let n = 0; n < N; n++) {
    for (let gr = 0; gr < groups; gr++) {
      const xOff = (n * C + gr * Cg) * H * W;
      let colT: Float32Array = col;
      if (g.pointwise) colT = transpose2d(x.subarray(xOff, xOff + Cg * P), Cg, P);
      else im2colT(x, xOff, g, col);
      const wg = w.subarray(gr * Cog * K, (gr + 1) * Cog * K);
      y.set(matmulNT(wg, colT, Cog, K, P), (n * Cout + gr * Cog) * P);
    }
  }
  return y;
}

export function conv2dBackwardInput(
  dy: Float32Array, dyShape: Shape, w: Float32Array, wShape: Shape, xShape: Shape, p: Conv2dParams,
): Float32Array {
  void dyShape; // implied by xShape, wShape and p
  const g = geometry(xShape, wShape, p);
  const { N, C, H, W, Cout, Cg, Cog, K, P, groups } = g;
  const dx = new Float32Array(N * C * H * W);
  // w_gᵀ [K, Cog] per group, so that both GEMM operands have rows along Cog.
  const wT = Array.from({ length: groups }, (_, gr) => transpose2d(w.subarray(gr * Cog * K, (gr + 1) * Cog * K), Cog, K));
  for (let n = 0; n < N; n++) {
    for (let gr = 0; gr < groups; gr++) {
      const dyOff = (n * Cout + gr * Cog) * P;
      const dyT = transpose2d(dy.subarray(dyOff, dyOff + Cog * P), Cog, P); // [P, Cog]
      const xOff = (n * C + gr * Cg) * H * W;
      if (g.pointwise) {
        dx.set(matmulNT(wT[gr]!, dyT, K, Cog, P), xOff); // [Cg, HW] directly
      } else {
        col2imT(matmulNT(dyT, wT[gr]!, P, Cog, K), dx, xOff, g);
      }
    }
  }
  return dx;
}

export function conv2dBackwardFilter(
  x: Float32Array, xShape: Shape, dy: Float32Array, dyShape: Shape, wShape: Shape, p: Conv2dParams,
): Float32Array {
  void dyShape;
  const g = geometry(xShape, wShape, p);
  const { N, C, H, W, Cout, Cg, Cog, K, P, groups } = g;
  const acc = new Float64Array(Cout * K);
  const col = new Float32Array(P * K);
  for (let n = 0; n < N; n++) {
    for (let gr = 0; gr < groups; gr++) {
      const xOff = (n * C + gr * Cg) * H * W;
      let colKP: Float32Array; // [K, P]
      if (g.pointwise) {
        colKP = x.subarray(xOff, xOff + Cg * P);
      } else {
        im2colT(x, xOff, g, col);
        colKP = transpose2d(col, P, K);
      }
      const dyOff = (n * Cout + gr * Cog) * P;
      const part = matmulNT(dy.subarray(dyOff, dyOff + Cog * P), colKP, Cog, P, K); // [Cog, K]
      const o = gr * Cog * K;
      for (let i = 0; i < part.length; i++) acc[o + i] += part[i]!;
    }
  }
  return Float32Array.from(acc);
}
