import type { Backend, Conv2dParams, Shape } from '../core/backend.js';

/**
 * The kernels the inference engine runs on. The engine takes one of these when a model is loaded
 * and calls nothing else, so the same engine runs on the native addon (Node), on WebAssembly
 * (browsers, and Node with ONEBIT_BACKEND=wasm) and on plain TypeScript. The required kernels keep
 * the training Backend's contracts (core/backend.ts); the optional ones are the fast paths with
 * everything weight-dependent prepared once, and the engine falls back to the required ones
 * (TypeScript loops around them) where one is absent.
 */
export interface InferBackend extends Pick<Backend,
  'conv2d' | 'matmul' | 'pad2d' | 'maxPool2d' | 'avgPool2d' | 'sum' | 'batchNormApply' | 'binary' | 'bitpack' | 'binaryMatmul' | 'binaryConv2d'> {
  /** What runs the kernels: 'native', 'ref', 'wasm-simd', 'wasm', 'js' … (reported by demos and benchmarks). */
  readonly name: string;
  /** Threads the heavy kernels use. */
  readonly threads: number;
  /**
   * A binary conv with its ±1 weights packed once: y = conv(sign(x − thr[c]), sign(w))·scale[co] +
   * bias[co] (no thr: the bits are sign(x); scale/bias may be null), exactly as the backend's
   * `binaryConv2d` then one float32 multiply-add. Null where the geometry or pad value is not
   * supported (the engine then uses its packed TypeScript path).
   */
  prepareBinaryConv2d?(w: Float32Array, wShape: Shape, inShape: readonly [number, number, number], p: Conv2dParams, padValue: number): PreparedBinaryConv2d | null;
  /** A float conv (zero padding) with its weights prepared once; bias (optional) added per output channel. */
  prepareConv2d?(w: Float32Array, wShape: Shape, inShape: readonly [number, number, number], p: Conv2dParams, bias: Float32Array | null): PreparedConv2d | null;
  /**
   * u = (x + r) + b0[c]; v = u >= 0 ? pos[c]·u : neg[c]·u; y = v + b1[c] over [n, C, inner], each
   * step rounded to float32 (kernels.ts `channelAct` is the definition); into `out` when given.
   */
  channelAct?(x: Float32Array, r: Float32Array | null, n: number, C: number, inner: number, b0: Float32Array | null, pos: Float32Array | null, neg: Float32Array, b1: Float32Array | null, out?: Float32Array): Float32Array;
}

/** See `InferBackend.prepareBinaryConv2d`. `run` writes into `out` when it has the right length. */
export interface PreparedBinaryConv2d {
  run(
    x: Float32Array, n: number, scale: Float32Array | null, bias: Float32Array | null, thr?: Float32Array | null, out?: Float32Array,
    residual?: Float32Array | null, act?: ChannelActivation | null,
  ): Float32Array;
  /**
   * True when `run` takes `residual` (same length as the output): y = (D·scale + bias) + residual,
   * each step rounded to float32 — equal to the separate `add` it replaces.
   */
  readonly residual?: boolean;
  /**
   * True when `run` also takes `act` (after the residual): the fused `channel_act`, the same float32
   * steps as kernels.ts `channelAct`. Only with `residual`.
   */
  readonly act?: boolean;
}

/** A `channel_act`'s per-channel tables (absent b0/b1 = 0, absent pos = 1). */
export interface ChannelActivation {
  b0?: Float32Array | null;
  pos?: Float32Array | null;
  neg: Float32Array;
  b1?: Float32Array | null;
}

/** See `InferBackend.prepareConv2d`: x [n, C, H, W] → y [n, Cout, Ho, Wo]. */
export interface PreparedConv2d {
  run(x: Float32Array, n: number, out?: Float32Array): Float32Array;
}
