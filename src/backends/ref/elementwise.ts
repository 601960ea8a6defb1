import type { BinaryKernel, Shape, UnaryKernel } from '../../core/backend.js';
import { broadcastStrides, collapseBroadcast3, shapesEqual, sizeOf } from '../../core/shape.js';

/** Reference elementwise kernels. Same-shape operands take a flat loop; others walk broadcast strides. */

const BIN: Record<BinaryKernel, (x: number, y: number) => number> = {
  add: (x, y) => x + y,
  sub: (x, y) => x - y,
  mul: (x, y) => x * y,
  div: (x, y) => x / y,
  maximum: (x, y) => (x >= y ? x : y),
  minimum: (x, y) => (x <= y ? x : y),
  greater: (x, y) => (x > y ? 1 : 0),
  greaterEqual: (x, y) => (x >= y ? 1 : 0),
  equal: (x, y) => (x === y ? 1 : 0),
  pow: (x, y) => Math.pow(x, y),
};

export function binary(op: BinaryKernel, a: Float32Array, aShape: Shape, b: Float32Array, bShape: Shape, outShape: Shape): Float32Array {
  const f = BIN[op];
  const n = sizeOf(outShape);
  const out = new Float32Array(n);
  if (shapesEqual(aShape, outShape) && shapesEqual(bShape, outShape)) {
    switch (op) { // hot cases without the closure call
      case 'add': for (let i = 0; i < n; i++) out[i] = a[i]! + b[i]!; return out;
      case 'sub': for (let i = 0; i < n; i++) out[i] = a[i]! - b[i]!; return out;
      case 'mul': for (let i = 0; i < n; i++) out[i] = a[i]! * b[i]!; return out;
      default: for (let i = 0; i < n; i++) out[i] = f(a[i]!, b[i]!); return out;
    }
  }
  if (b.length === 1 && a.length === n) {
    const y = b[0]!;
    if (op === 'mul') for (let i = 0; i < n; i++) out[i] = a[i]! * y;
    else for (let i = 0; i < n; i++) out[i] = f(a[i]!, y);
    return out;
  }
  if (a.length === 1 && b.length === n) {
    const x = a[0]!;
    if (op === 'greaterEqual') for (let i = 0; i < n; i++) out[i] = x >= b[i]! ? 1 : 0;
    else for (let i = 0; i < n; i++) out[i] = f(x, b[i]!);
    return out;
  }
  const c = collapseBroadcast3(aShape, bShape, outShape);
  if (c) {
    binary3(op, out, a, b, c.dims, c.sa, c.sb);
    return out;
  }
  const rank = outShape.length;
  const sa = broadcastStrides(aShape, outShape);
  const sb = broadcastStrides(bShape, outShape);
  const last = rank - 1;
  const inner = rank ? outShape[last]! : 1;
  const ia = rank ? sa[last]! : 0;
  const ib = rank ? sb[last]! : 0;
  const idx = new Array<number>(rank).fill(0);
  let oa = 0, ob = 0;
  for (let o = 0; o < n; o += inner) {
    for (let t = 0; t < inner; t++) out[o + t] = f(a[oa + t * ia]!, b[ob + t * ib]!);
    // advance the outer index (all dims but the last)
    for (let d = last - 1; d >= 0; d--) {
      idx[d]!++;
      oa += sa[d]!;
      ob += sb[d]!;
      if (idx[d]! < outShape[d]!) break;
      oa -= sa[d]! * outShape[d]!;
      ob -= sb[d]! * outShape[d]!;
      idx[d] = 0;
    }
  }
  return out;
}

/**
 * out = a ∘ b over 3 collapsed dims with element strides (0 = broadcast): the loop broadcasting
 * ops take after collapseBroadcast (per-channel scales and biases, row/column vectors). Hot ops
 * get their own inner loop; results equal the strided walk exactly (same float operations).
 */
export function binary3(op: BinaryKernel, out: Float32Array, a: Float32Array, b: Float32Array, dims: readonly number[], sa: readonly number[], sb: readonly number[]): void {
  const [d0, d1, d2] = dims as [number, number, number];
  const [a0, a1, a2] = sa as [number, number, number];
  const [b0, b1, b2] = sb as [number, number, number];
  const f = BIN[op];
  let o = 0;
  for (let i0 = 0; i0 < d0; i0++) {
    for (let i1 = 0; i1 < d1; i1++) {
      let pa = i0 * a0 + i1 * a1, pb = i0 * b0 + i1 * b1;
      if (a2 === 1 && b2 === 0) {
        const y = b[pb]!;
        switch (op) {
          case 'add': for (let t = 0; t < d2; t++) out[o++] = a[pa++]! + y; break;
          case 'sub': for (let t = 0; t < d2; t++) out[o++] = a[pa++]! - y; break;
          case 'mul': for (let t = 0; t < d2; t++) out[o++] = a[pa++]! * y; break;
          case 'div': for (let t = 0; t < d2; t++) out[o++] = a[pa++]! / y; break;
          default: for (let t = 0; t < d2; t++) out[o++] = f(a[pa++]!, y);
        }
      } else if (a2 === 0 && b2 === 1) {
        const x = a[pa]!;
        switch (op) {
          case 'add': for (let t = 0; t < d2; t++) out[o++] = x + b[pb++]!; break;
          case 'sub': for (let t = 0; t < d2; t++) out[o++] = x - b[pb++]!; break;
          case 'mul': for (let t = 0; t < d2; t++) out[o++] = x * b[pb++]!; break;
          case 'div': for (let t = 0; t < d2; t++) out[o++] = x / b[pb++]!; break;
          default: for (let t = 0; t < d2; t++) out[o++] = f(x, b[pb++]!);
        }
      } else {
        switch (op) {
          case 'add': for (let t = 0; t < d2; t++, pa += a2, pb += b2) out[o++] = a[pa]! + b[pb]!; break;
          case 'sub': for (let t = 0; t < d2; t++, pa += a2, pb += b2) out[o++] = a[pa]! - b[pb]!; break;
          case 'mul': for (let t = 0; t < d2; t++, pa += a2, pb += b2) out[o++] = a[pa]! * b[pb]!; break;
          case 'div': for (let t = 0; t < d2; t++, pa += a2, pb += b2) out[o++] = a[pa]! / b[pb]!; break;
          default: for (let t = 0; t < d2; t++, pa += a2, pb += b2) out[o++] = f(a[pa]!, b[pb]!);
        }
      }
    }
  }
}

const UN: Record<UnaryKernel, (x: number) => number> = {
  neg: (x) => -x,
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  abs: Math.abs,
  // sign(0) = +1: the binary convention (methods.md §1.1), not Math.sign's 0.
  sign: (x) => (x >= 0 ? 1 : x < 0 ? -1 : NaN),
  relu: (x) => (x > 0 ? x : 0),
  tanh: Math.tanh,
  reciprocal: (x) => 1 / x,
  square: (x) => x * x,
};

export function unary(op: UnaryKernel, x: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  const n = x.length;
  switch (op) { // hot cases (quantizers, STE masks) without the closure call
    case 'sign': for (let i = 0; i < n; i++) { const v = x[i]!; out[i] = v >= 0 ? 1 : v < 0 ? -1 : NaN; } return out;
    case 'abs': for (let i = 0; i < n; i++) out[i] = Math.abs(x[i]!); return out;
    case 'neg': for (let i = 0; i < n; i++) out[i] = -x[i]!; return out;
    default: {
      const f = UN[op];
      for (let i = 0; i < n; i++) out[i] = f(x[i]!);
      return out;
    }
  }
}

export function clamp(x: Float32Array, lo: number, hi: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    out[i] = v < lo ? lo : v > hi ? hi : v;
  }
  return out;
}

export function contiguous(data: Float32Array, shape: Shape, strides: Shape, offset: number): Float32Array {
  const n = sizeOf(shape);
  const out = new Float32Array(n);
  const rank = shape.length;
  if (rank === 0) {
    out[0] = data[offset]!;
    return out;
  }
  const last = rank - 1;
  const inner = shape[last]!;
  const is = strides[last]!;
  const idx = new Array<number>(rank).fill(0);
  let src = offset;
  for (let o = 0; o < n; o += inner) {
    for (let t = 0; t < inner; t++) out[o + t] = data[src + t * is]!;
    for (let d = last - 1; d >= 0; d--) {
      idx[d]!++;
      src += strides[d]!;
      if (idx[d]! < shape[d]!) break;
      src -= strides[d]! * shape[d]!;
      idx[d] = 0;
    }
  }
  return out;
}

/** ApproxSign'(x) (quantizers/approx_sign.ts): 2 + 2x on [−1, 0), 2 − 2x on [0, 1), 0 elsewhere. */
export function approxSignDerivative(x: number): number {
  if (x >= -1 && x < 0) return 2 + 2 * x;
  if (x >= 0 && x < 1) return 2 - 2 * x;
  return 0;
}

/** out = g·ApproxSign'(x): the TypeScript loop of `approxSignBackward` (and the native kernel's oracle). */
export function approxSignBackwardLoop(gv: Float32Array, xv: Float32Array, given?: Float32Array): Float32Array {
  const out = given ?? new Float32Array(xv.length);
  for (let i = 0; i < out.length; i++) out[i] = gv[i]! * approxSignDerivative(xv[i]!);
  return out;
}

/** out = g where −clip <= x <= clip, else 0 (NaN x → 0): the TypeScript loop of `clippedSte` (quantizers/ste_sign.ts). */
export function clippedSteLoop(gv: Float32Array, xv: Float32Array, clip: number, given?: Float32Array): Float32Array {
  const out = given ?? new Float32Array(xv.length);
  for (let i = 0; i < out.length; i++) {
    const v = xv[i]!;
    out[i] = v <= clip && v >= -clip ? gv[i]! : 0;
  }
  return out;
}
