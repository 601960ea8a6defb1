import type { Pool2dParams, Shape } from '../../core/backend.js';

/**
 * Reference 2-D pooling over x [N, C, H, W] -> y [N, C, Ho, Wo], Ho = floor((H + 2·padH − kh) / strideH) + 1.
 * Max pooling treats padding as −inf (a padded cell is never chosen) and records, for each output,
 * the flat index into x of its max (first one on ties) so the backward pass is a scatter.
 * Average pooling excludes padding from the divisor (count_include_pad = false): each output is
 * the mean of the in-image cells of its window. Ops guarantee every window holds an in-image cell.
 */

interface PoolGeom {
  planes: number; H: number; W: number; Ho: number; Wo: number;
  kh: number; kw: number; sh: number; sw: number; ph: number; pw: number;
}

function geometry(xShape: Shape, p: Pool2dParams): PoolGeom {
  const [N, C, H, W] = xShape as [number, number, number, number];
  const [kh, kw] = p.kernel, [sh, sw] = p.stride, [ph, pw] = p.padding;
  const Ho = Math.floor((H + 2 * ph - kh) / sh) + 1;
  const Wo = Math.floor((W + 2 * pw - kw) / sw) + 1;
  return { planes: N * C, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw };
}

/** Calls visit(outIndex, planeOffset, h0, h1, w0, w1) with each window clipped to the image. */
function forEachWindow(g: PoolGeom, visit: (o: number, base: number, h0: number, h1: number, w0: number, w1: number) => void): void {
  const { planes, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw } = g;
  let o = 0;
  for (let pl = 0; pl < planes; pl++) {
    const base = pl * H * W;
    for (let oh = 0; oh < Ho; oh++) {
      const hs = oh * sh - ph;
      const h0 = Math.max(0, hs), h1 = Math.min(H, hs + kh);
      for (let ow = 0; ow < Wo; ow++) {
        const ws = ow * sw - pw;
        visit(o++, base, h0, h1, Math.max(0, ws), Math.min(W, ws + kw));
      }
    }
  }
}

export function maxPool2d(x: Float32Array, xShape: Shape, p: Pool2dParams): { y: Float32Array; argmax: Int32Array } {
  const g = geometry(xShape, p);
  const n = g.planes * g.Ho * g.Wo;
  const y = new Float32Array(n);
  const argmax = new Int32Array(n);
  const W = g.W;
  forEachWindow(g, (o, base, h0, h1, w0, w1) => {
    let best = -Infinity, at = -1;
    for (let h = h0; h < h1; h++) {
      const row = base + h * W;
      for (let w = w0; w < w1; w++) {
        const v = x[row + w]!;
        if (v > best || at < 0) {
          best = v;
          at = row + w;
        }
      }
    }
    y[o] = best;
    argmax[o] = at;
  });
  return { y, argmax };
}

export function maxPool2dBackward(dy: Float32Array, argmax: Int32Array, xSize: number): Float32Array {
  const dx = new Float32Array(xSize);
  for (let i = 0; i < dy.length; i++) dx[argmax[i]!]! += dy[i]!;
  return dx;
}

export function avgPool2d(x: Float32Array, xShape: Shape, p: Pool2dParams): Float32Array {
  const g = geometry(xShape, p);
  const y = new Float32Array(g.planes * g.Ho * g.Wo);
  const W = g.W;
  forEachWindow(g, (o, base, h0, h1, w0, w1) => {
    let s = 0;
    for (let h = h0; h < h1; h++) {
      const row = base + h * W;
      for (let w = w0; w < w1; w++) s += x[row + w]!;
    }
    y[o] = s / ((h1 - h0) * (w1 - w0));
  });
  return y;
}

export function avgPool2dBackward(dy: Float32Array, dyShape: Shape, xShape: Shape, p: Pool2dParams): Float32Array {
  void dyShape; // implied by xShape and p
  const g = geometry(xShape, p);
  const dx = new Float32Array(g.planes * g.H * g.W);
  const W = g.W;
  forEachWindow(g, (o, base, h0, h1, w0, w1) => {
    const d = dy[o]! / ((h1 - h0) * (w1 - w0));
    for (let h = h0; h < h1; h++) {
      const row = base + h * W;
      for (let w = w0; w < w1; w++) dx[row + w]! += d;
    }
  });
  return dx;
}
