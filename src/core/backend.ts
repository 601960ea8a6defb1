/**
 * The Backend contract: every kernel a backend must provide. A backend is an object literal typed
 * `Backend`, so the compiler proves it complete. Kernels take and return contiguous row-major
 * arrays plus shapes; they never see autograd, views or user input (ops validate at the boundary,
 * kernels trust their arguments). Composite ops (softmax, losses, linear layers …) are built from
 * these primitives in `src/ops/` and need no kernel of their own.
 *
 * Kernel names are the same in every layer: `conv2d` is `backends/ref/conv2d.ts`, the op
 * `ops/conv.ts#conv2d` and its gradient rule.
 */

import type { Recycler } from './recycle.js';

export type Shape = readonly number[];

/** dx and the per-channel parameter gradients of the `channelAct` kernel (each [C]). */
export interface ChannelActGrads {
  dx: Float32Array;
  db0: Float32Array;
  dpos: Float32Array;
  dneg: Float32Array;
  db1: Float32Array;
}

export type UnaryKernel = 'neg' | 'exp' | 'log' | 'sqrt' | 'abs' | 'sign' | 'relu' | 'tanh' | 'reciprocal' | 'square';
export type BinaryKernel = 'add' | 'sub' | 'mul' | 'div' | 'maximum' | 'minimum' | 'greater' | 'greaterEqual' | 'equal' | 'pow';

/** 2-D convolution geometry. x: [N, C, H, W], w: [Cout, C/groups, kh, kw], y: [N, Cout, Ho, Wo]. */
export interface Conv2dParams {
  stride: [number, number];
  /** Zero padding [top/bottom, left/right]. Non-zero pad values go through the `pad2d` kernel. */
  padding: [number, number];
  dilation: [number, number];
  groups: number;
}

/** Pooling geometry. x: [N, C, H, W]. Padding counts as -inf for max, excluded for avg (count_include_pad=false). */
export interface Pool2dParams {
  kernel: [number, number];
  stride: [number, number];
  padding: [number, number];
}

export interface Backend {
  readonly name: string;
  /**
   * Whether binary layers should run their forward pass on the packed kernels when activations
   * and weights are exactly two-valued (see ops/binary_forward.ts). The reference leaves it off, so
   * it stays the float-simulated oracle; ONEBIT_PACKED=1/0 overrides.
   */
  readonly packedBinaryForward?: boolean;
  /** Optional: reuse of large outputs across `recycling` scopes (core/recycle.ts). */
  readonly recycler?: Recycler;

  /** Gather a strided view into a new contiguous array. */
  contiguous(data: Float32Array, shape: Shape, strides: Shape, offset: number): Float32Array;

  /** Elementwise with NumPy broadcasting; comparisons return 1/0. `outShape` is the broadcast shape. */
  binary(op: BinaryKernel, a: Float32Array, aShape: Shape, b: Float32Array, bShape: Shape, outShape: Shape): Float32Array;
  unary(op: UnaryKernel, x: Float32Array): Float32Array;
  /**
   * Optional fused kernels; when absent the ops run their TypeScript loops. Results must equal those
   * loops exactly. `clippedSte`: out = g where −clip <= x <= clip, else 0 (NaN → 0).
   * `symmetricScale`: s when every value of x is +s or −s for one s > 0, else null.
   */
  clippedSte?(g: Float32Array, x: Float32Array, clip: number, out?: Float32Array): Float32Array;
  symmetricScale?(x: Float32Array): number | null;
  /**
   * Optional: out = g·ApproxSign'(x) (quantizers/approx_sign.ts), equal to its TypeScript loop.
   * For both this and clippedSte, `out` (when given) receives the result and may be g itself.
   */
  approxSignBackward?(g: Float32Array, x: Float32Array, out?: Float32Array): Float32Array;
  /**
   * Optional: the backward of conv2d(sign(x), w) (zero padding, groups 1) with a sign quantizer's
   * pointwise pseudo-gradient fused in: dw = conv2dBackwardFilter(sign(x), dy), dx =
   * grad(conv2dBackwardInput(dy, w), x), bit-identical to those calls and the gradient kernel.
   * With `dxAddend` (x's length): dx = grad(…) + dxAddend elementwise in float32, in the same pass
   * (the gradient the tape has already summed for x; the same bits as adding it afterwards).
   * `inPlace` (with dxAddend): dx is accumulated into dxAddend itself, which is returned as dx.
   */
  conv2dBackwardSign?(x: Float32Array, xShape: Shape, dy: Float32Array, w: Float32Array, wShape: Shape, p: Conv2dParams,
    grad: { kind: 'clipped_ste'; clip: number } | { kind: 'approx_sign' }, dxAddend?: Float32Array | null, inPlace?: boolean): { dx: Float32Array; dw: Float32Array };
  /**
   * Optional: the per-channel activation u = x + b0[c]; y = (u >= 0 ? pos[c]·u : neg[c]·u) + b1[c]
   * over x [n, C, inner], each step rounded to float32 (absent b0 / b1: 0, absent pos: 1), equal to
   * backends/ref/channel_act.ts. A new array.
   */
  channelAct?(x: Float32Array, n: number, C: number, inner: number, b0: Float32Array | null, pos: Float32Array | null, neg: Float32Array, b1: Float32Array | null): Float32Array;
  /** Optional: its backward (dx and the per-channel parameter gradients), equal to backends/ref/channel_act.ts. */
  channelActBackward?(g: Float32Array, x: Float32Array, n: number, C: number, inner: number, b0: Float32Array | null, pos: Float32Array | null, neg: Float32Array): ChannelActGrads;
  /**
   * Optional: AdaBin's activation binarizer (scalars a = α_a, b = β_a; `code` = the official code's
   * output map, else the paper's) and its backward (dx when `wantDx`, and the float64 sums da, db),
   * equal to backends/ref/adabin_act.ts. The forward returns a new array.
   */
  adabinAct?(x: Float32Array, a: number, b: number, code: boolean): Float32Array;
  /**
   * Optional: the two kernels of the packed conv of two-valued operands (ops/binary_forward.ts),
   * equal to backends/ref/affine_conv.ts: `twoValues` gives [lo, hi] when x holds exactly two
   * distinct finite values; `affineCombine` turns the ±1 counts into the conv's output.
   */
  twoValues?(x: Float32Array): [number, number] | null;
  affineCombine?(p: Float32Array, N: number, O: number, HW: number, f1: Float64Array, f2: Float64Array, c2: Float64Array): Float32Array;
  adabinActBackward?(g: Float32Array, x: Float32Array, a: number, b: number, code: boolean, wantDx: boolean): { dx: Float32Array | null; da: number; db: number };
  /** Optional: a[i] = a[i] + b[i] in place (equal lengths), the same bits as binary('add'). */
  addInPlace?(a: Float32Array, b: Float32Array): void;
  /**
   * Optional: the option-A shortcut of the CIFAR ResNets (models/resnet20.ts `shortcutA`) for x
   * [N, C, H, W]: 'forward' gives y [N, outC, ⌈H/2⌉, ⌈W/2⌉] = x[:, :, ::2, ::2] between (outC − C)/2
   * zero channels on each side; 'backward' takes that shape's gradient and gives dx [N, C, H, W]
   * (its middle channels at the even positions, 0 elsewhere). A new array either way.
   */
  shortcutA?(dir: 'forward' | 'backward', src: Float32Array, N: number, C: number, H: number, W: number, outC: number): Float32Array;
  /** Optional: whether any element of x is NaN (the fused sign + packed conv's guard). */
  hasNaN?(x: Float32Array): boolean;
  /** Optional: out[i] = sign(x[i]) (sign(0) = +1, NaN stays NaN) into a given array of x's length. */
  signInto?(out: Float32Array, x: Float32Array): void;
  /**
   * Optional: y[i, c, j] = fround(y[i, c, j] · f[c]) in place over y [n, C, plane] (f: float32 per
   * channel). The packed binary forward's rescale; when absent it runs as a TypeScript loop.
   */
  scaleChannels?(y: Float32Array, n: number, c: number, plane: number, f: Float32Array): void;
  /** min(max(x, lo), hi). */
  clamp(x: Float32Array, lo: number, hi: number): Float32Array;

  /**
   * out[i·spread + j] = g[i] (divisor 0), or fround(g[i] / divisor) with the division in float64:
   * a sum's or a mean's gradient over trailing axes (ops/reduce.ts). A new array.
   */
  spread(g: Float32Array, spread: number, divisor: number): Float32Array;
  /** Sum over `axes` (sorted, distinct); output keeps the reduced dims as 1. */
  sum(x: Float32Array, shape: Shape, axes: readonly number[]): Float32Array;
  /** Max over one axis; output keeps that dim as 1. */
  max(x: Float32Array, shape: Shape, axis: number): Float32Array;
  /** Index of the max along one axis (first on ties). */
  argmax(x: Float32Array, shape: Shape, axis: number): Int32Array;

  /** C[M,N] = op(A)·op(B); A is [M,K] (or [K,M] if transA), B is [K,N] (or [N,K] if transB). */
  matmul(a: Float32Array, b: Float32Array, m: number, k: number, n: number, transA: boolean, transB: boolean): Float32Array;

  conv2d(x: Float32Array, xShape: Shape, w: Float32Array, wShape: Shape, p: Conv2dParams): Float32Array;
  /** dL/dx given dL/dy. */
  conv2dBackwardInput(dy: Float32Array, dyShape: Shape, w: Float32Array, wShape: Shape, xShape: Shape, p: Conv2dParams): Float32Array;
  /** dL/dw given x and dL/dy. */
  conv2dBackwardFilter(x: Float32Array, xShape: Shape, dy: Float32Array, dyShape: Shape, wShape: Shape, p: Conv2dParams): Float32Array;

  /** Constant padding of the two spatial dims of [N, C, H, W]: pads = [top, bottom, left, right]. */
  pad2d(x: Float32Array, xShape: Shape, pads: readonly [number, number, number, number], value: number): Float32Array;

  /** Max pooling; also returns the flat input index of each output's max (for backward). */
  maxPool2d(x: Float32Array, xShape: Shape, p: Pool2dParams): { y: Float32Array; argmax: Int32Array };
  maxPool2dBackward(dy: Float32Array, argmax: Int32Array, xSize: number): Float32Array;
  avgPool2d(x: Float32Array, xShape: Shape, p: Pool2dParams): Float32Array;
  avgPool2dBackward(dy: Float32Array, dyShape: Shape, xShape: Shape, p: Pool2dParams): Float32Array;

  /**
   * Batch-norm statistics over every axis but 1 (the channel axis) of x: biased variance.
   * Shapes: x [N, C, ...]; mean, variance [C].
   */
  batchNormStats(x: Float32Array, xShape: Shape): { mean: Float32Array; variance: Float32Array };
  /** y = (x - mean) * invStd * gamma + beta, per channel (axis 1). */
  batchNormApply(x: Float32Array, xShape: Shape, mean: Float32Array, invStd: Float32Array, gamma: Float32Array, beta: Float32Array): Float32Array;
  /**
   * Optional: batchNormApply(x, …) + residual (same shape as x) in one pass, bit-identical to the
   * apply followed by binary('add'); absent, ops/norm.ts runs those two.
   */
  batchNormApplyAdd?(x: Float32Array, xShape: Shape, mean: Float32Array, invStd: Float32Array, gamma: Float32Array, beta: Float32Array, residual: Float32Array): Float32Array;
  /** Training-mode batch-norm backward (statistics of this batch), per channel (axis 1). */
  batchNormBackward(
    dy: Float32Array, x: Float32Array, xShape: Shape, mean: Float32Array, invStd: Float32Array, gamma: Float32Array,
  ): { dx: Float32Array; dgamma: Float32Array; dbeta: Float32Array };

  /** log-softmax along the last axis of a [rows, cols] array. */
  logSoftmax(x: Float32Array, rows: number, cols: number): Float32Array;

  // ---- binary (1-bit) kernels ----
  // Bit convention, the same in every backend: a value's sign bit is 1 for −1 (x < 0) and 0 for +1
  // (x >= 0, so 0 counts as +1); bits are packed LSB-first into 32-bit words, 32 values per word;
  // unused tail bits are 0. The ±1 dot product of two K-bit rows is K − 2·popcount(a XOR b).

  /** Pack the signs of x [rows, k] row by row: [rows, ceil(k/32)] words. */
  bitpack(x: Float32Array, rows: number, k: number): Uint32Array;
  /** C[m, n] = K − 2·popcount(a_m XOR b_n) for packed rows a [m, words] and b [n, words] of k bits each. */
  binaryMatmul(a: Uint32Array, b: Uint32Array, m: number, n: number, k: number): Float32Array;
  /**
   * Exact ±1 convolution: y = conv2d(sign(x) padded with `padValue` (0, +1 or −1), sign(w)) for
   * x [N, C, H, W], w [Cout, C/groups, kh, kw] (same geometry as `conv2d`; only the signs of x and
   * w are read). With padValue 0 the border taps contribute 0, as zero padding of a float conv.
   */
  binaryConv2d(x: Float32Array, xShape: Shape, w: Float32Array, wShape: Shape, p: Conv2dParams, padValue: number): Float32Array;
  /**
   * Optional: binaryConv2d with a per-output-channel factor applied before the store:
   * y[n, co, ·] = fround(binaryConv2d(…)[n, co, ·] · scale[co]) (scale: float32, length Cout), the
   * same bits as binaryConv2d followed by that multiply, without the extra pass over y.
   */
  binaryConv2dScaled?(x: Float32Array, xShape: Shape, w: Float32Array, wShape: Shape, p: Conv2dParams, padValue: number, scale: Float32Array): Float32Array;
  /**
   * Optional: binaryConv2dScaled with the fused sign conv's NaN guard folded into its bit packing
   * (no separate pass over x): null when x holds a NaN (1-bit packing cannot carry sign(NaN) = NaN;
   * the caller then takes its float path), else the same array binaryConv2dScaled returns.
   */
  binaryConv2dScaledIfFinite?(x: Float32Array, xShape: Shape, w: Float32Array, wShape: Shape, p: Conv2dParams, padValue: number, scale: Float32Array): Float32Array | null;

  /** Sign bits packed 32 per word, bit 1 = negative (x < 0), bit order LSB first. Used by flip metrics. */
  packSigns(x: Float32Array): Uint32Array;
  /** Number of differing bits between two packed arrays of equal length. */
  popcountXor(a: Uint32Array, b: Uint32Array): number;
}
