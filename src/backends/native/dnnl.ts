import type { Backend, Conv2dParams, Pool2dParams, Shape } from '../../core/backend.js';
import { debugLog } from '../../core/debug.js';
import { matmul as refMatmul } from '../ref/matmul.js';
import { loadAddon } from './addon.js';
import { outputF32 } from './alloc.js';

/**
 * The float kernels of the native addon (native/dnnl/, native/dnnl_bindings.cc) behind the Backend
 * signatures: conv2d forward / backward-data / backward-weights and matmul through oneDNN
 * primitives, batch norm and pooling as OpenMP loops with the reference's numerics. Each wrapper
 * allocates the outputs here (uninitialized where the kernel writes every element, alloc.ts) and lets the addon write into them: zero copy both ways.
 *
 * Layout: the contract's arrays are plain NCHW / OIHW; the conv primitives run in oneDNN's blocked
 * layouts, so their activations (and weights) are reordered per call inside the addon (cached
 * reorder primitives, no allocation per call). Matmul, batch norm and pooling never reorder.
 *
 * Null when the addon is missing or was built without oneDNN.
 */
export type DnnlKernels = Pick<
  Backend,
  | 'conv2d' | 'conv2dBackwardInput' | 'conv2dBackwardFilter' | 'conv2dBackwardSign' | 'matmul'
  | 'batchNormStats' | 'batchNormApply' | 'batchNormApplyAdd' | 'batchNormBackward'
  | 'maxPool2d' | 'maxPool2dBackward' | 'avgPool2d' | 'avgPool2dBackward'
>;

/** N, C, H, W, Cout, kh, kw, sh, sw, ph, pw, dh, dw, groups (dilation 1 = dense). */
type ConvArgs = [number, number, number, number, number, number, number, number, number, number, number, number, number, number];
/** N, C, H, W, kh, kw, sh, sw, ph, pw. */
type PoolArgs = [number, number, number, number, number, number, number, number, number, number];

/** The addon's float functions; argument order documented in native/dnnl_bindings.cc. Outputs come first. */
interface DnnlAddon {
  conv2d(y: Float32Array, x: Float32Array, w: Float32Array, ...g: ConvArgs): void;
  conv2dBackwardInput(dx: Float32Array, dy: Float32Array, w: Float32Array, ...g: ConvArgs): void;
  conv2dBackwardFilter(dw: Float32Array, x: Float32Array, dy: Float32Array, ...g: ConvArgs): void;
  conv2dBackwardSign(dx: Float32Array, dw: Float32Array, x: Float32Array, dy: Float32Array, w: Float32Array, mode: number, clip: number, ...g: [...ConvArgs, (Float32Array | null)?]): void;
  matmul(c: Float32Array, a: Float32Array, b: Float32Array, m: number, k: number, n: number, transA: number, transB: number): void;
  batchNormStats(mean: Float32Array, variance: Float32Array, x: Float32Array, N: number, C: number, S: number): void;
  batchNormApply(
    y: Float32Array, x: Float32Array, mean: Float32Array, invStd: Float32Array, gamma: Float32Array, beta: Float32Array,
    N: number, C: number, S: number, residual?: Float32Array,
  ): void;
  batchNormBackward(
    dx: Float32Array, dgamma: Float32Array, dbeta: Float32Array, dy: Float32Array, x: Float32Array, mean: Float32Array,
    invStd: Float32Array, gamma: Float32Array, N: number, C: number, S: number,
  ): void;
  maxPool2d(y: Float32Array, argmax: Int32Array, x: Float32Array, ...g: PoolArgs): void;
  maxPool2dBackward(dx: Float32Array, dy: Float32Array, argmax: Int32Array): void;
  avgPool2d(y: Float32Array, x: Float32Array, ...g: PoolArgs): void;
  avgPool2dBackward(dx: Float32Array, dy: Float32Array, ...g: PoolArgs): void;
  /** Inference conv prepared once (N in g ignored); layout 0 auto, 1 blocked + NCHW reorders, 2 plain NCHW. */
  conv2dCreate?(w: Float32Array, bias: Float32Array | null, ...g: [...ConvArgs, number?]): PreparedConvHandle;
  conv2dExec?(handle: PreparedConvHandle, y: Float32Array, x: Float32Array, n: number): void;
}

/** An opaque prepared-conv handle of the addon (conv2dCreate). */
type PreparedConvHandle = { readonly __brand: 'PreparedConvHandle' };

/** Layout a prepared conv runs in: 'auto' (per shape, see native/dnnl/conv2d_prepared.cc), or forced. */
export type PreparedConvLayout = 'auto' | 'blocked' | 'plain';

/** A float conv prepared once for inference (see `prepareConv2d`). */
export interface PreparedConv2d {
  /**
   * y [n, Cout, Ho, Wo] = conv2d(x, w) + bias[co] for x [n, C, H, W] (C, H, W as prepared; any n).
   * Writes into `out` when it has the right length (every element is written), else a new array.
   */
  run(x: Float32Array, n: number, out?: Float32Array): Float32Array;
  readonly outShape: (n: number) => [number, number, number, number];
}

/**
 * Products under this many multiply-adds stay on the TypeScript matmul: for them the N-API call
 * plus oneDNN's dispatch costs about as much as the arithmetic (announced once in the debug log).
 */
export const DNNL_MATMUL_MIN_MACS = 1 << 16;

function convDims(xShape: Shape, wShape: Shape, p: Conv2dParams): { args: ConvArgs; ho: number; wo: number } {
  const [N, C, H, W] = xShape as [number, number, number, number];
  const [Cout, , kh, kw] = wShape as [number, number, number, number];
  const [sh, sw] = p.stride, [ph, pw] = p.padding, [dh, dw] = p.dilation;
  const ho = Math.floor((H + 2 * ph - dh * (kh - 1) - 1) / sh) + 1;
  const wo = Math.floor((W + 2 * pw - dw * (kw - 1) - 1) / sw) + 1;
  return { args: [N, C, H, W, Cout, kh, kw, sh, sw, ph, pw, dh, dw, p.groups], ho, wo };
}

function poolDims(xShape: Shape, p: Pool2dParams): { args: PoolArgs; ho: number; wo: number } {
  const [N, C, H, W] = xShape as [number, number, number, number];
  const [kh, kw] = p.kernel, [sh, sw] = p.stride, [ph, pw] = p.padding;
  const ho = Math.floor((H + 2 * ph - kh) / sh) + 1;
  const wo = Math.floor((W + 2 * pw - kw) / sw) + 1;
  return { args: [N, C, H, W, kh, kw, sh, sw, ph, pw], ho, wo };
}

/** [N, C, product of the remaining dims]. */
function bnDims(xShape: Shape): [number, number, number] {
  let s = 1;
  for (let i = 2; i < xShape.length; i++) s *= xShape[i]!;
  return [xShape[0]!, xShape[1]!, s];
}

/** The addon as a DnnlAddon, or null when it is missing or built without oneDNN. */
const dnnlAddon: DnnlAddon | null = (() => {
  const addon = loadAddon();
  if (!addon || !addon.info().dnnl || typeof addon.conv2d !== 'function') return null;
  return addon as unknown as DnnlAddon;
})();

/** matmul through the addon at every size (no small-product shortcut); used by the conformance tests. */
export const dnnlMatmulNative: Backend['matmul'] | null = dnnlAddon
  ? (a, b, m, k, n, transA, transB) => {
    const c = outputF32(m * n);
    dnnlAddon.matmul(c, a, b, m, k, n, transA ? 1 : 0, transB ? 1 : 0);
    return c;
  }
  : null;

function create(k: DnnlAddon, nativeMatmul: Backend['matmul']): DnnlKernels {
  return {
    conv2d(x, xShape, w, wShape, p) {
      const { args, ho, wo } = convDims(xShape, wShape, p);
      const y = outputF32(args[0] * args[4] * ho * wo);
      k.conv2d(y, x, w, ...args);
      return y;
    },
    conv2dBackwardInput(dy, dyShape, w, wShape, xShape, p) {
      void dyShape; // implied by xShape, wShape and p
      const { args } = convDims(xShape, wShape, p);
      const dx = outputF32(args[0] * args[1] * args[2] * args[3]);
      k.conv2dBackwardInput(dx, dy, w, ...args);
      return dx;
    },
    conv2dBackwardSign(x, xShape, dy, w, wShape, p, grad, dxAddend, inPlace) {
      const { args } = convDims(xShape, wShape, p);
      const dx = inPlace && dxAddend ? dxAddend : outputF32(x.length), dw = outputF32(w.length);
      k.conv2dBackwardSign(dx, dw, x, dy, w, grad.kind === 'clipped_ste' ? 0 : 1, grad.kind === 'clipped_ste' ? grad.clip : 0, ...args, dxAddend ?? null);
      return { dx, dw };
    },
    conv2dBackwardFilter(x, xShape, dy, dyShape, wShape, p) {
      void dyShape;
      const { args } = convDims(xShape, wShape, p);
      const dw = new Float32Array(wShape[0]! * wShape[1]! * wShape[2]! * wShape[3]!);
      k.conv2dBackwardFilter(dw, x, dy, ...args);
      return dw;
    },
    matmul(a, b, m, kk, n, transA, transB) {
      if (m * kk * n < DNNL_MATMUL_MIN_MACS) {
        debugLog(`matmul: products under ${DNNL_MATMUL_MIN_MACS} multiply-adds use the TypeScript kernel (N-API + oneDNN call overhead)`);
        return refMatmul(a, b, m, kk, n, transA, transB);
      }
      return nativeMatmul(a, b, m, kk, n, transA, transB);
    },
    batchNormStats(x, xShape) {
      const [N, C, S] = bnDims(xShape);
      const mean = new Float32Array(C), variance = new Float32Array(C);
      k.batchNormStats(mean, variance, x, N, C, S);
      return { mean, variance };
    },
    batchNormApply(x, xShape, mean, invStd, gamma, beta) {
      const [N, C, S] = bnDims(xShape);
      const y = outputF32(x.length);
      k.batchNormApply(y, x, mean, invStd, gamma, beta, N, C, S);
      return y;
    },
    batchNormApplyAdd(x, xShape, mean, invStd, gamma, beta, residual) {
      const [N, C, S] = bnDims(xShape);
      const y = outputF32(x.length);
      k.batchNormApply(y, x, mean, invStd, gamma, beta, N, C, S, residual);
      return y;
    },
    batchNormBackward(dy, x, xShape, mean, invStd, gamma) {
      const [N, C, S] = bnDims(xShape);
      const dx = outputF32(x.length), dgamma = new Float32Array(C), dbeta = new Float32Array(C);
      k.batchNormBackward(dx, dgamma, dbeta, dy, x, mean, invStd, gamma, N, C, S);
      return { dx, dgamma, dbeta };
    },
    maxPool2d(x, xShape, p) {
      const { args, ho, wo } = poolDims(xShape, p);
      const n = args[0] * args[1] * ho * wo;
      const y = new Float32Array(n), argmax = new Int32Array(n);
      k.maxPool2d(y, argmax, x, ...args);
      return { y, argmax };
    },
    maxPool2dBackward(dy, argmax, xSize) {
      const dx = new Float32Array(xSize); // scattered into with +=: must start at zero
      k.maxPool2dBackward(dx, dy, argmax);
      return dx;
    },
    avgPool2d(x, xShape, p) {
      const { args, ho, wo } = poolDims(xShape, p);
      const y = outputF32(args[0] * args[1] * ho * wo);
      k.avgPool2d(y, x, ...args);
      return y;
    },
    avgPool2dBackward(dy, dyShape, xShape, p) {
      void dyShape; // implied by xShape and p
      const { args } = poolDims(xShape, p);
      const dx = new Float32Array(args[0] * args[1] * args[2] * args[3]); // accumulated into: must start at zero
      k.avgPool2dBackward(dx, dy, ...args);
      return dx;
    },
  };
}

/** The oneDNN-backed float kernels, or null when the addon or its oneDNN part is not built. */
export const dnnlKernels: DnnlKernels | null = dnnlAddon && dnnlMatmulNative ? create(dnnlAddon, dnnlMatmulNative) : null;

/**
 * A float convolution (zero padding, the Backend's conv2d geometry) prepared once for repeated
 * forward passes — the inference engine's float convs. oneDNN's primitive is created once per
 * (batch size, thread count) and kept, the weights are copied now and reordered into the
 * primitive's layout once, and the bias is fused into the primitive; x and y stay plain NCHW.
 * Results equal backend conv2d followed by the bias add within float32 rounding (oneDNN may sum in
 * another order). Null when the addon or its oneDNN part is missing. `layout` forces a layout
 * (tests, benchmarks).
 */
export function prepareConv2d(
  w: Float32Array, wShape: Shape, inShape: readonly [number, number, number], p: Conv2dParams, bias: Float32Array | null,
  layout: PreparedConvLayout = 'auto',
): PreparedConv2d | null {
  if (!dnnlAddon || typeof dnnlAddon.conv2dCreate !== 'function' || typeof dnnlAddon.conv2dExec !== 'function') return null;
  const [C, H, W] = inShape;
  const { args, ho, wo } = convDims([0, C, H, W], wShape, p);
  const Cout = args[4];
  const handle = dnnlAddon.conv2dCreate(w, bias, ...args, layout === 'auto' ? 0 : layout === 'blocked' ? 1 : 2);
  const exec = dnnlAddon.conv2dExec.bind(dnnlAddon);
  return {
    outShape: (n) => [n, Cout, ho, wo],
    run(x, n, given) {
      const len = n * Cout * ho * wo;
      const y = given && given.length === len ? given : new Float32Array(len);
      exec(handle, y, x, n);
      return y;
    },
  };
}
