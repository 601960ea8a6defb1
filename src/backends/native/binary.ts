/**
 * The binary (1-bit) kernels of the C++ addon behind the Backend signatures: sign + bit-pack,
 * XOR/popcount GEMM and the exact ±1 conv2d (bit convention in core/backend.ts; C++ in
 * native/bitpack, native/bgemm, native/bconv; argument order in native/binary_bindings.cc).
 * Outputs are allocated here (zero-filled) and passed first; the addon fills them in place.
 * Null when the addon is not built.
 */
import type { Backend, Conv2dParams, Shape } from '../../core/backend.js';
import { loadAddon, type NativeAddon } from './addon.js';
import { outputF32 } from './alloc.js';

/** Binary-kernel variants of the addon: `ref` (scalar popcount64), `avx2`, `avx512`. */
export type BinaryIsa = 'ref' | 'avx2' | 'avx512';

/** The addon's binary entry points (see native/binary_bindings.cc). */
export interface BinaryAddon extends NativeAddon {
  bitpack(out: Uint32Array, x: Float32Array, rows: number, k: number): void;
  binaryMatmul(out: Float32Array, a: Uint32Array, b: Uint32Array, m: number, n: number, k: number): void;
  /** binaryMatmul with one variant forced (tests, benchmarks); throws when this CPU cannot run it. */
  binaryMatmulIsa(isa: BinaryIsa, out: Float32Array, a: Uint32Array, b: Uint32Array, m: number, n: number, k: number): void;
  /** The variants this CPU can run, ref first. */
  binaryIsas(): BinaryIsa[];
  /** geom = [N, C, H, W, Cout, Cg, kh, kw, strideH, strideW, padH, padW, dilH, dilW, groups]. */
  /** Returns whether x holds a NaN when checkNaN is true (out then unspecified). */
  binaryConv2d(out: Float32Array, x: Float32Array, w: Float32Array, geom: Int32Array, padValue: number, scale?: Float32Array | null, checkNaN?: boolean): boolean | undefined;
  /** Weights packed once (inference); N in geom is ignored. corr is empty when no border correction is needed. */
  binaryConv2dPrepare?(w: Float32Array, geom: Int32Array, padValue: number): { rows: Uint32Array; corr: Float32Array; hasBorder: Uint8Array };
  /** binaryConv2d with prepared weights, then out = out·scale[co] + bias[co] (either may be null). */
  binaryConv2dRun?(out: Float32Array, x: Float32Array, rows: Uint32Array, corr: Float32Array, hasBorder: Uint8Array, geom: Int32Array,
    scale: Float32Array | null, bias: Float32Array | null, thr?: Float32Array | null): void;
  /**
   * A prepared conv owned by the addon: packed weights, border corrections, im2col tables and a
   * bit-plane workspace kept between runs (N in geom is ignored). Freed with the handle (GC).
   */
  binaryConv2dCreate?(w: Float32Array, geom: Int32Array, padValue: number): BinaryConvHandle;
  /**
   * binaryConv2dRun with a handle, for a batch of n: the same results, nothing allocated per call.
   * Then res (the engine's `add`) and, with neg, the activation (BinaryConvActivation) in the epilogue.
   */
  binaryConv2dExec?(handle: BinaryConvHandle, out: Float32Array, x: Float32Array, n: number,
    scale: Float32Array | null, bias: Float32Array | null, thr: Float32Array | null,
    res?: Float32Array | null, b0?: Float32Array | null, pos?: Float32Array | null, neg?: Float32Array | null, b1?: Float32Array | null): void;
}

/** An opaque prepared-conv handle of the addon (binaryConv2dCreate). */
export type BinaryConvHandle = { readonly __brand: 'BinaryConvHandle' };

/**
 * The inference engine's `channel_act` after a binary conv (and its `add`), fused into the conv's
 * epilogue. For output element i of channel c, after the affine map and the residual (y =
 * (D·scale[c] + bias[c]) + residual[i]), in float32 with every step rounded and no contraction:
 * u = y + b0[c], y = u·(u >= 0 ? pos[c] : neg[c]) + b1[c]; absent b0 / b1 count as 0 and an absent
 * pos as 1. Bit-identical to the conv, then the backend's channelAct(y, residual, ...) (kernels.ts
 * channelAct / native channelActF32).
 */
export interface BinaryConvActivation {
  b0?: Float32Array | null;
  pos?: Float32Array | null;
  neg: Float32Array;
  b1?: Float32Array | null;
}

/** The addon typed for its binary kernels, or null when it is not built. */
export function binaryAddon(): BinaryAddon | null {
  return loadAddon() as BinaryAddon | null;
}

const words = (k: number): number => Math.ceil(k / 32);

function make(addon: BinaryAddon): Pick<Backend, 'bitpack' | 'binaryMatmul' | 'binaryConv2d' | 'binaryConv2dScaled' | 'binaryConv2dScaledIfFinite'> {
  // binaryConv2d, with an optional per-output-channel factor applied in the GEMM epilogue; with
  // checkNaN, null when x holds a NaN (found while packing).
  const conv = (x: Float32Array, xShape: Shape, w: Float32Array, wShape: Shape, p: Conv2dParams, padValue: number, scale: Float32Array | null, checkNaN = false): Float32Array | null => {
    const [N, C, H, W] = xShape as [number, number, number, number];
    const [Cout, Cg, kh, kw] = wShape as [number, number, number, number];
    const [sh, sw] = p.stride, [ph, pw] = p.padding, [dh, dw] = p.dilation;
    const Ho = Math.floor((H + 2 * ph - dh * (kh - 1) - 1) / sh) + 1;
    const Wo = Math.floor((W + 2 * pw - dw * (kw - 1) - 1) / sw) + 1;
    const out = outputF32(N * Cout * Ho * Wo);
    const geom = Int32Array.of(N, C, H, W, Cout, Cg, kh, kw, sh, sw, ph, pw, dh, dw, p.groups);
    const sawNaN = addon.binaryConv2d(out, x, w, geom, padValue, scale, checkNaN);
    return sawNaN ? null : out;
  };
  const checkScale = (scale: Float32Array, wShape: Shape, what: string) => {
    if (scale.length !== wShape[0]) throw new Error(`${what}: expected ${wShape[0]} scales (one per output channel), but got ${scale.length}.`);
  };
  return {
    bitpack(x: Float32Array, rows: number, k: number): Uint32Array {
      const out = new Uint32Array(rows * words(k));
      addon.bitpack(out, x, rows, k);
      return out;
    },
    binaryMatmul(a: Uint32Array, b: Uint32Array, m: number, n: number, k: number): Float32Array {
      const out = outputF32(m * n);
      addon.binaryMatmul(out, a, b, m, n, k);
      return out;
    },
    binaryConv2d: (x, xShape, w, wShape, p, padValue) => conv(x, xShape, w, wShape, p, padValue, null)!,
    binaryConv2dScaled: (x, xShape, w, wShape, p, padValue, scale) => {
      checkScale(scale, wShape, 'binaryConv2dScaled');
      return conv(x, xShape, w, wShape, p, padValue, scale)!;
    },
    binaryConv2dScaledIfFinite: (x, xShape, w, wShape, p, padValue, scale) => {
      checkScale(scale, wShape, 'binaryConv2dScaledIfFinite');
      return conv(x, xShape, w, wShape, p, padValue, scale, true);
    },
  };
}

const addon = binaryAddon();

/** The native binary kernels, or null when the addon is missing (the reference ones apply). */
export const binaryKernels: Pick<Backend, 'bitpack' | 'binaryMatmul' | 'binaryConv2d' | 'binaryConv2dScaled' | 'binaryConv2dScaledIfFinite'> | null =
  addon && typeof addon.binaryMatmul === 'function' ? make(addon) : null;

/** A binary conv whose ±1 weights were packed once, for repeated forward passes (the inference engine). */
export interface PreparedBinaryConv2d {
  /**
   * y = binaryConv2d(sign(x − thr[c]), w)·scale[co] + bias[co] for x `[N, C, H, W]` (C, H, W as
   * prepared; any N). Without thr the bits are sign(x); scale and bias may be null. Writes into
   * `out` when it has the right length (every element is written), else a new array. Then, in the
   * epilogue (only where `residual` is true, else both must be absent): y = y + residual[i]
   * (float32; `residual` has the output's length: the engine's fused `add`), then `act` (the fused
   * `channel_act`, see BinaryConvActivation).
   */
  run(
    x: Float32Array, n: number, scale: Float32Array | null, bias: Float32Array | null, thr?: Float32Array | null, out?: Float32Array,
    residual?: Float32Array | null, act?: BinaryConvActivation | null,
  ): Float32Array;
  /** Whether `run` takes `residual` and `act` (the addon's handle path: always, with this build). */
  readonly residual: boolean;
  /** Whether `run` takes `act` (with this build: whenever it takes `residual`). */
  readonly act: boolean;
  readonly outShape: (n: number) => [number, number, number, number];
}

/**
 * Pack the signs of `w` ([Cout, Cg, kh, kw]) once for inputs of shape [*, C, H, W] — the native
 * prepared conv (native/bconv), or null when the addon lacks it. Results equal `binaryConv2d` then
 * the per-channel affine map, exactly (the same popcount sums, then one float multiply-add).
 */
export function prepareBinaryConv2d(
  w: Float32Array, wShape: Shape, inShape: readonly [number, number, number], p: Conv2dParams, padValue: number,
): PreparedBinaryConv2d | null {
  if (!addon) return null;
  const [C, H, W] = inShape;
  const [Cout, Cg, kh, kw] = wShape as [number, number, number, number];
  const [sh, sw] = p.stride, [ph, pw] = p.padding, [dh, dw] = p.dilation;
  const Ho = Math.floor((H + 2 * ph - dh * (kh - 1) - 1) / sh) + 1;
  const Wo = Math.floor((W + 2 * pw - dw * (kw - 1) - 1) / sw) + 1;
  const geom = Int32Array.of(1, C, H, W, Cout, Cg, kh, kw, sh, sw, ph, pw, dh, dw, p.groups);
  if (typeof addon.binaryConv2dCreate === 'function' && typeof addon.binaryConv2dExec === 'function') {
    // The addon keeps everything (tables and bit planes too): one N-API call per run.
    const handle = addon.binaryConv2dCreate(w, geom, padValue);
    const exec = addon.binaryConv2dExec.bind(addon);
    return {
      outShape: (n) => [n, Cout, Ho, Wo],
      residual: true,
      act: true,
      run(x, n, scale, bias, thr, given, residual, act) {
        const len = n * Cout * Ho * Wo;
        const out = given && given.length === len ? given : new Float32Array(len);
        if (act) exec(handle, out, x, n, scale, bias, thr ?? null, residual ?? null, act.b0 ?? null, act.pos ?? null, act.neg, act.b1 ?? null);
        else if (residual) exec(handle, out, x, n, scale, bias, thr ?? null, residual);
        else exec(handle, out, x, n, scale, bias, thr ?? null);
        return out;
      },
    };
  }
  if (typeof addon.binaryConv2dPrepare !== 'function' || typeof addon.binaryConv2dRun !== 'function') return null;
  const prep = addon.binaryConv2dPrepare(w, geom, padValue);
  const run = addon.binaryConv2dRun.bind(addon);
  return {
    outShape: (n) => [n, Cout, Ho, Wo],
    residual: false,
    act: false,
    run(x, n, scale, bias, thr, given, residual, act) {
      if (residual || act) throw new Error('onebit: this native addon build has no fused epilogue (rebuild it: node native/build.cjs)');
      geom[0] = n;
      const len = n * Cout * Ho * Wo;
      const out = given && given.length === len ? given : new Float32Array(len);
      run(out, x, prep.rows, prep.corr, prep.hasBorder, geom, scale, bias, thr ?? null);
      return out;
    },
  };
}
