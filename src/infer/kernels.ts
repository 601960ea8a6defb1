import type { InferBackend, PreparedConv2d } from './backend.js';
import { channelAct as refChannelAct } from '../backends/ref/channel_act.js';

/**
 * Float kernels of the inference engine, batched: every function takes per-sample shapes and a
 * batch size N, reads contiguous row-major arrays and returns a new one. Channels are axis 0 of the
 * per-sample shape ([C, H, W] or [F], where a vector's features are its channels). Convolutions,
 * matmuls and pooling run on the engine's InferBackend `be` (oneDNN with the native addon,
 * WebAssembly in browsers); the per-channel ops are plain loops. No autograd anywhere.
 */

/** An output array of a given length whose every element the caller overwrites (the engine's per-predict pool). */
export type Alloc = (length: number) => Float32Array;
const fresh: Alloc = (length) => new Float32Array(length);

/** Elements per channel of a per-sample shape ([C] → 1, [C, H, W] → H·W). */
export const inner = (shape: readonly number[]): number => (shape.length === 1 ? 1 : shape[1]! * shape[2]!);

/** y = x·scale[c] + bias[c]. */
export function scaleBias(x: Float32Array, n: number, shape: readonly number[], scale: Float32Array, bias: Float32Array, alloc = fresh): Float32Array {
  const C = shape[0]!, m = inner(shape), y = alloc(x.length);
  for (let b = 0, i = 0; b < n; b++) {
    for (let c = 0; c < C; c++) {
      const a = scale[c]!, d = bias[c]!;
      for (const e = i + m; i < e; i++) y[i] = x[i]! * a + d;
    }
  }
  return y;
}

/**
 * Batch norm in eval mode exactly as the training graph computes it: the backend's batchNormApply
 * (y = x·(invStd·γ) + (β − mean·invStd·γ), scale and shift in float64), so an `exact` export
 * reproduces the training graph bit for bit.
 */
export function batchNorm(be: InferBackend, x: Float32Array, n: number, shape: readonly number[], mean: Float32Array, invStd: Float32Array, gamma: Float32Array, beta: Float32Array): Float32Array {
  return be.batchNormApply(x, [n, ...shape], mean, invStd, gamma, beta);
}

/**
 * u = x + b0[c]; v = u >= 0 ? pos[c]·u : neg[c]·u; y = v + b1[c] (PReLU, RPReLU, Maxout; absent
 * b0/b1 = 0, absent pos = 1). Each step rounds to float32 as the training graph's ops do. With
 * `residual`, x + residual (rounded) is activated: the engine's fused `add → channel_act`. The
 * native addon's kernel computes the same float32 steps (no contraction), so results are equal.
 */
export function channelAct(
  be: InferBackend, x: Float32Array, n: number, shape: readonly number[], b0: Float32Array | undefined, pos: Float32Array | undefined, neg: Float32Array, b1: Float32Array | undefined,
  residual?: Float32Array, alloc?: (length: number) => Float32Array,
): Float32Array {
  const C = shape[0]!, m = inner(shape);
  if (be.channelAct) return be.channelAct(x, residual ?? null, n, C, m, b0 ?? null, pos ?? null, neg, b1 ?? null, alloc?.(x.length));
  if (residual) x = add(x, residual);
  return refChannelAct(x, n, C, m, b0 ?? null, pos ?? null, neg, b1 ?? null);
}

/** min(max(x, lo), hi). */
export function clamp(x: Float32Array, lo: number, hi: number, alloc = fresh): Float32Array {
  const y = alloc(x.length);
  for (let i = 0; i < x.length; i++) y[i] = Math.min(Math.max(x[i]!, lo), hi);
  return y;
}

export function add(a: Float32Array, b: Float32Array, alloc = fresh): Float32Array {
  const y = alloc(a.length);
  for (let i = 0; i < a.length; i++) y[i] = a[i]! + b[i]!;
  return y;
}

/** Binarization: +1 where x >= thr[c], else −1 (the engine keeps binary values as ±1 floats). */
export function sign(x: Float32Array, n: number, shape: readonly number[], thr: Float32Array, alloc = fresh): Float32Array {
  const C = shape[0]!, m = inner(shape), y = alloc(x.length);
  for (let b = 0, i = 0; b < n; b++) {
    for (let c = 0; c < C; c++) {
      const t = thr[c]!;
      for (const e = i + m; i < e; i++) y[i] = x[i]! >= t ? 1 : -1;
    }
  }
  return y;
}

/** Two-level quantization: x >= thr[c] ? hi[c] : lo[c]. */
export function levels(x: Float32Array, n: number, shape: readonly number[], thr: Float32Array, lo: Float32Array, hi: Float32Array, alloc = fresh): Float32Array {
  const C = shape[0]!, m = inner(shape), y = alloc(x.length);
  for (let b = 0, i = 0; b < n; b++) {
    for (let c = 0; c < C; c++) {
      const t = thr[c]!, l = lo[c]!, h = hi[c]!;
      for (const e = i + m; i < e; i++) y[i] = x[i]! >= t ? h : l;
    }
  }
  return y;
}

/** Option-A shortcut: x[:, ::2, ::2] with (Cout − C)/2 zero channels on each side. */
export function shortcutA(x: Float32Array, n: number, shape: readonly number[], cout: number): Float32Array {
  const [C, H, W] = shape as [number, number, number];
  const Ho = Math.ceil(H / 2), Wo = Math.ceil(W / 2), pad = (cout - C) / 2;
  const y = new Float32Array(n * cout * Ho * Wo);
  for (let b = 0; b < n; b++) {
    for (let c = 0; c < C; c++) {
      const src = (b * C + c) * H * W, dst = (b * cout + c + pad) * Ho * Wo;
      for (let i = 0; i < Ho; i++) for (let j = 0; j < Wo; j++) y[dst + i * Wo + j] = x[src + 2 * i * W + 2 * j]!;
    }
  }
  return y;
}

/** [C, H, W] → [2C, H, W]: the channels twice (ReActNet-A's width-doubling shortcut). */
export function repeatChannels(x: Float32Array, n: number, shape: readonly number[]): Float32Array {
  const plane = shape[0]! * shape[1]! * shape[2]!, y = new Float32Array(2 * x.length);
  for (let b = 0; b < n; b++) {
    const src = x.subarray(b * plane, (b + 1) * plane);
    y.set(src, 2 * b * plane);
    y.set(src, (2 * b + 1) * plane);
  }
  return y;
}

/** Mean over H·W per channel: [C, H, W] → [C]. */
export function globalAvgPool(be: InferBackend, x: Float32Array, n: number, shape: readonly number[]): Float32Array {
  // The training graph's mean over [2, 3]: the backend's sum (axis by axis), then / count in float32.
  const m = inner(shape);
  const y = be.sum(x, [n, ...shape], [2, 3]);
  for (let i = 0; i < y.length; i++) y[i]! /= m;
  return y;
}

/** Float convolution with bias and a constant border `padValue` (0 = zero padding). */
export function conv2d(
  be: InferBackend, x: Float32Array, n: number, shape: readonly number[], w: Float32Array, wShape: readonly number[], bias: Float32Array | undefined,
  stride: [number, number], padding: [number, number], dilation: [number, number], groups: number, padValue: number,
): Float32Array {
  const b = be;
  let xs = [n, ...shape], xd = x, pad = padding;
  if (padValue !== 0 && (padding[0] || padding[1])) {
    xd = b.pad2d(x, xs, [padding[0], padding[0], padding[1], padding[1]], padValue);
    xs = [n, shape[0]!, shape[1]! + 2 * padding[0], shape[2]! + 2 * padding[1]];
    pad = [0, 0];
  }
  const y = b.conv2d(xd, xs, w, wShape, { stride, padding: pad, dilation, groups });
  if (bias) {
    const co = wShape[0]!, plane = y.length / (n * co);
    for (let i = 0, o = 0; i < n; i++) for (let c = 0; c < co; c++) for (const e = o + plane; o < e; o++) y[o]! += bias[c]!;
  }
  return y;
}

/** y = x·Wᵀ + bias for x [N, I], W [O, I]. */
export function dense(be: InferBackend, x: Float32Array, n: number, w: Float32Array, wShape: readonly number[], bias: Float32Array | undefined): Float32Array {
  const [O, I] = wShape as [number, number];
  const y = be.matmul(x, w, n, I, O, false, true);
  // As the training graph's Linear: matmul, then the bias added in float32 (a broadcast add).
  return bias ? be.binary('add', y, [n, O], bias, [O], [n, O]) : y;
}

export function maxPool2d(be: InferBackend, x: Float32Array, n: number, shape: readonly number[], kernel: [number, number], stride: [number, number], padding: [number, number]): Float32Array {
  return be.maxPool2d(x, [n, ...shape], { kernel, stride, padding }).y;
}

export function avgPool2d(be: InferBackend, x: Float32Array, n: number, shape: readonly number[], kernel: [number, number], stride: [number, number], padding: [number, number]): Float32Array {
  return be.avgPool2d(x, [n, ...shape], { kernel, stride, padding });
}
