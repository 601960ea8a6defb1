/**
 * The float32 elementwise kernels of the C++ addon (native/eltwise/eltwise.cc) behind the Backend
 * signatures. Large arrays (>= NATIVE_ELTWISE_MIN elements) of the supported ops and shapes run
 * natively (OpenMP-parallel above ~256k elements); everything else stays on the reference kernels,
 * whose results the native ones equal exactly (conformance_eltwise.test.ts). A large array that
 * falls back is said once per op in the debug log (ONEBIT_DEBUG=1). Null when the addon is not built.
 */
import type { Backend, BinaryKernel, ChannelActGrads, Shape, UnaryKernel } from '../../core/backend.js';
import { debugLog } from '../../core/debug.js';
import { collapseBroadcast3, shapesEqual, sizeOf } from '../../core/shape.js';
import { approxSignBackwardLoop, binary as refBinary, unary as refUnary } from '../ref/elementwise.js';
import { spread as refSpread, sum as refSum, sumAxes } from '../ref/reduce.js';
import { loadAddon, type NativeAddon } from './addon.js';
import { outputF32 } from './alloc.js';
import { channelAct as refChannelAct, channelActBackward as refChannelActBackward } from '../ref/channel_act.js';
import { adabinAct as refAdabinAct, adabinActBackward as refAdabinActBackward, adabinActLevels } from '../ref/adabin_act.js';
import { affineCombine as refAffineCombine, twoValues as refTwoValues } from '../ref/affine_conv.js';

/** The addon's elementwise entry points (op codes in native/eltwise/eltwise.cc). */
export interface EltwiseAddon extends NativeAddon {
  unaryF32(op: number, out: Float32Array, x: Float32Array): void;
  binarySameF32(op: number, out: Float32Array, a: Float32Array, b: Float32Array): void;
  binaryScalarF32(op: number, out: Float32Array, a: Float32Array, y: number, scalarFirst: boolean): void;
  binaryStridedF32(op: number, out: Float32Array, a: Float32Array, b: Float32Array,
    d0: number, d1: number, d2: number, sa0: number, sa1: number, sa2: number, sb0: number, sb1: number, sb2: number): void;
  clippedSteF32(out: Float32Array, g: Float32Array, x: Float32Array, clip: number): void;
  approxSignBackwardF32(out: Float32Array, g: Float32Array, x: Float32Array): void;
  hasNaNF32(x: Float32Array): boolean;
  /** dir 0 forward, 1 backward of the option-A shortcut (native/eltwise/eltwise.cc). Older addons lack it. */
  shortcutAF32?(dir: number, out: Float32Array, src: Float32Array, N: number, C: number, H: number, W: number, outC: number): void;
  portableConv2dF32?(out: Float32Array, x: Float32Array, w: Float32Array, bias: Float32Array | null, residual: Float32Array | null, geom: Int32Array): void;
  channelActF32?(out: Float32Array, x: Float32Array, r: Float32Array | null, n: number, C: number, inner: number,
    b0: Float32Array | null, pos: Float32Array | null, neg: Float32Array, b1: Float32Array | null): void;
  /** The backward of channelActF32 (native/eltwise/act_grad.cc; older addons lack it). */
  channelActBackwardF32?(dx: Float32Array, dparams: Float32Array, g: Float32Array, x: Float32Array, n: number, C: number, inner: number,
    b0: Float32Array | null, pos: Float32Array | null, neg: Float32Array): void;
  /** AdaBin's activation binarizer and its backward (native/eltwise/adabin_act.cc; older addons lack them). */
  adabinActF32?(out: Float32Array, x: Float32Array, a: number, b: number, lo: number, hi: number): void;
  adabinActBackwardF32?(dx: Float32Array | null, sums: Float64Array, g: Float32Array, x: Float32Array, a: number, b: number, code: boolean): void;
  /** The packed conv of two-valued operands (native/eltwise/adabin_act.cc; older addons lack them). */
  twoValuesF32?(x: Float32Array, out: Float64Array): boolean;
  affineCombineF32?(out: Float32Array, p: Float32Array, N: number, O: number, HW: number, f1: Float64Array, f2: Float64Array, c2: Float64Array): void;
  /** s when every value is ±s for one s > 0, else −1. */
  symmetricScaleF32(x: Float32Array): number;
  /** out [outer, inner] = the float64 sum over len of x [outer, len, inner] (older addons lack it). */
  sumAxisF32?(out: Float32Array, x: Float32Array, outer: number, len: number, inner: number): void;
  /** out[i·spread + j] = g[i], or fl32(g[i] / div) when div ≠ 0 (older addons lack it). */
  spreadF32?(out: Float32Array, g: Float32Array, spread: number, div: number): void;
}

/** Below this many elements the call overhead outweighs the native loop: the reference runs. */
export const NATIVE_ELTWISE_MIN = 65_536;

const UNARY_OPS: Partial<Record<UnaryKernel, number>> = { sign: 0, abs: 1, neg: 2, relu: 3 };
const BINARY_OPS: Partial<Record<BinaryKernel, number>> = { add: 0, sub: 1, mul: 2 };
/** Op codes of binaryStridedF32 (every binary kernel but pow, whose C and JS results differ). */
const STRIDED_OPS: Partial<Record<BinaryKernel, number>> = {
  add: 0, sub: 1, mul: 2, div: 3, maximum: 4, minimum: 5, greater: 6, greaterEqual: 7, equal: 8,
};

export type EltwiseKernels = Pick<Backend, 'unary' | 'binary' | 'shortcutA' | 'sum' | 'spread' | 'channelAct' | 'channelActBackward' | 'adabinAct' | 'adabinActBackward' | 'twoValues' | 'affineCombine'> & Required<Pick<Backend, 'clippedSte' | 'symmetricScale' | 'scaleChannels' | 'approxSignBackward' | 'hasNaN' | 'signInto' | 'addInPlace'>>;

/** The addon typed for its elementwise kernels, or null when it is not built (or predates them). */
export function eltwiseAddon(): EltwiseAddon | null {
  const a = loadAddon() as EltwiseAddon | null;
  return a && typeof a.unaryF32 === 'function' && typeof a.approxSignBackwardF32 === 'function' && typeof a.hasNaNF32 === 'function' ? a : null;
}

function make(addon: EltwiseAddon): EltwiseKernels {
  return {
    unary(op: UnaryKernel, x: Float32Array): Float32Array {
      if (x.length < NATIVE_ELTWISE_MIN) return refUnary(op, x);
      const code = UNARY_OPS[op];
      if (code === undefined) {
        debugLog(`native unary ${op}: no native kernel; reference loop`);
        return refUnary(op, x);
      }
      const out = outputF32(x.length);
      addon.unaryF32(code, out, x);
      return out;
    },
    binary(op: BinaryKernel, a: Float32Array, aShape: Shape, b: Float32Array, bShape: Shape, outShape: Shape): Float32Array {
      const n = sizeOf(outShape);
      if (n < NATIVE_ELTWISE_MIN) return refBinary(op, a, aShape, b, bShape, outShape);
      const code = BINARY_OPS[op];
      if (code !== undefined) {
        // The same three flat cases as the reference kernel, in its order.
        if (shapesEqual(aShape, outShape) && shapesEqual(bShape, outShape)) {
          const out = outputF32(n);
          addon.binarySameF32(code, out, a, b);
          return out;
        }
        if (b.length === 1 && a.length === n) {
          const out = outputF32(n);
          addon.binaryScalarF32(code, out, a, b[0]!, false);
          return out;
        }
        if (a.length === 1 && b.length === n) {
          const out = outputF32(n);
          addon.binaryScalarF32(code, out, b, a[0]!, true);
          return out;
        }
      }
      const strided = STRIDED_OPS[op];
      if (strided !== undefined) {
        const c = collapseBroadcast3(aShape, bShape, outShape);
        if (c) {
          const out = outputF32(n);
          const [d, sa, sb] = [c.dims, c.sa, c.sb] as [number[], number[], number[]];
          addon.binaryStridedF32(strided, out, a, b, d[0]!, d[1]!, d[2]!, sa[0]!, sa[1]!, sa[2]!, sb[0]!, sb[1]!, sb[2]!);
          return out;
        }
      }
      debugLog(`native binary ${op}: ${strided === undefined ? 'no native kernel' : 'broadcast over more than 3 collapsed dims'}; reference loop`);
      return refBinary(op, a, aShape, b, bShape, outShape);
    },
    clippedSte(g: Float32Array, x: Float32Array, clip: number, given?: Float32Array): Float32Array {
      const out = given ?? outputF32(x.length);
      addon.clippedSteF32(out, g, x, clip);
      return out;
    },
    addInPlace(a: Float32Array, b: Float32Array): void {
      if (a.length !== b.length) throw new Error(`addInPlace: expected arrays of equal length, but got ${a.length} and ${b.length}.`);
      if (a.length < NATIVE_ELTWISE_MIN) for (let i = 0; i < a.length; i++) a[i] = a[i]! + b[i]!;
      else addon.binarySameF32(BINARY_OPS.add!, a, a, b);
    },
    ...(typeof addon.shortcutAF32 === 'function'
      ? {
        shortcutA(dir: 'forward' | 'backward', src: Float32Array, N: number, C: number, H: number, W: number, outC: number): Float32Array {
          const out = outputF32(dir === 'forward' ? N * outC * Math.ceil(H / 2) * Math.ceil(W / 2) : N * C * H * W);
          addon.shortcutAF32!(dir === 'forward' ? 0 : 1, out, src, N, C, H, W, outC);
          return out;
        },
      }
      : {}),
    ...(typeof addon.channelActF32 === 'function' && typeof addon.channelActBackwardF32 === 'function'
      ? {
        channelAct(x: Float32Array, n: number, C: number, inner: number, b0: Float32Array | null, pos: Float32Array | null, neg: Float32Array, b1: Float32Array | null): Float32Array {
          if (x.length < NATIVE_ELTWISE_MIN) return refChannelAct(x, n, C, inner, b0, pos, neg, b1);
          const out = outputF32(x.length);
          addon.channelActF32!(out, x, null, n, C, inner, b0, pos, neg, b1);
          return out;
        },
        channelActBackward(g: Float32Array, x: Float32Array, n: number, C: number, inner: number, b0: Float32Array | null, pos: Float32Array | null, neg: Float32Array): ChannelActGrads {
          if (x.length < NATIVE_ELTWISE_MIN) return refChannelActBackward(g, x, n, C, inner, b0, pos, neg);
          const dx = outputF32(x.length), dp = new Float32Array(4 * C);
          addon.channelActBackwardF32!(dx, dp, g, x, n, C, inner, b0, pos, neg);
          return { dx, db0: dp.slice(0, C), dpos: dp.slice(C, 2 * C), dneg: dp.slice(2 * C, 3 * C), db1: dp.slice(3 * C) };
        },
      }
      : {}),
    ...(typeof addon.adabinActF32 === 'function' && typeof addon.adabinActBackwardF32 === 'function'
      ? {
        adabinAct(x: Float32Array, a: number, b: number, code: boolean): Float32Array {
          if (x.length < NATIVE_ELTWISE_MIN) return refAdabinAct(x, a, b, code);
          const out = outputF32(x.length);
          const [lo, hi] = adabinActLevels(a, b, code);
          addon.adabinActF32!(out, x, a, b, lo, hi);
          return out;
        },
        adabinActBackward(g: Float32Array, x: Float32Array, a: number, b: number, code: boolean, wantDx: boolean) {
          if (x.length < NATIVE_ELTWISE_MIN) return refAdabinActBackward(g, x, a, b, code, wantDx);
          const dx = wantDx ? outputF32(x.length) : null, sums = new Float64Array(2);
          addon.adabinActBackwardF32!(dx, sums, g, x, a, b, code);
          return { dx, da: sums[0]!, db: sums[1]! };
        },
      }
      : {}),
    ...(typeof addon.twoValuesF32 === 'function' && typeof addon.affineCombineF32 === 'function'
      ? {
        twoValues(x: Float32Array): [number, number] | null {
          if (x.length < NATIVE_ELTWISE_MIN) return refTwoValues(x);
          const out = new Float64Array(2);
          return addon.twoValuesF32!(x, out) ? [out[0]!, out[1]!] : null;
        },
        affineCombine(p: Float32Array, N: number, O: number, HW: number, f1: Float64Array, f2: Float64Array, c2: Float64Array): Float32Array {
          if (N * O * HW < NATIVE_ELTWISE_MIN) return refAffineCombine(p, N, O, HW, f1, f2, c2);
          const out = outputF32(N * O * HW);
          addon.affineCombineF32!(out, p, N, O, HW, f1, f2, c2);
          return out;
        },
      }
      : {}),
    hasNaN(x: Float32Array): boolean {
      return addon.hasNaNF32(x);
    },
    signInto(out: Float32Array, x: Float32Array): void {
      addon.unaryF32(UNARY_OPS.sign!, out, x);
    },
    approxSignBackward(g: Float32Array, x: Float32Array, given?: Float32Array): Float32Array {
      if (x.length < NATIVE_ELTWISE_MIN) return approxSignBackwardLoop(g, x, given);
      const out = given ?? outputF32(x.length);
      addon.approxSignBackwardF32(out, g, x);
      return out;
    },
    sum(x: Float32Array, shape: Shape, axes: readonly number[]): Float32Array {
      // The reference's sequence of single-axis float64 sums, each axis natively (the same bits).
      const axisF32 = addon.sumAxisF32;
      if (x.length < NATIVE_ELTWISE_MIN || !axisF32) return refSum(x, shape, axes);
      return sumAxes(x, shape, axes, (cur, outer, len, inner) => {
        const out = outputF32(outer * inner);
        axisF32(out, cur, outer, len, inner);
        return out;
      });
    },
    spread(g: Float32Array, spread: number, divisor: number): Float32Array {
      const n = g.length * spread;
      if (n < NATIVE_ELTWISE_MIN || !addon.spreadF32) return refSpread(g, spread, divisor);
      const out = outputF32(n);
      addon.spreadF32(out, g, spread, divisor);
      return out;
    },
    symmetricScale(x: Float32Array): number | null {
      const s = addon.symmetricScaleF32(x);
      return s > 0 ? s : null;
    },
    scaleChannels(y: Float32Array, n: number, c: number, plane: number, f: Float32Array): void {
      if (y.length !== n * c * plane || f.length !== c) {
        throw new Error(`scaleChannels: expected y of ${n}·${c}·${plane} and f of ${c} elements, but got ${y.length} and ${f.length}.`);
      }
      // The strided mul (op 2) in place: y [n, c, plane] times f broadcast along axes 0 and 2.
      addon.binaryStridedF32(2, y, y, f, n, c, plane, c * plane, plane, 1, 0, 1, 0);
    },
  };
}

const addon = eltwiseAddon();

/** The native elementwise kernels, or null when the addon is missing (the reference ones apply). */
export const eltwiseKernels: EltwiseKernels | null = addon ? make(addon) : null;

/**
 * The inference engine's per-channel activation, natively: u = (x + r) + b0[c]; v = u >= 0 ?
 * pos[c]·u : neg[c]·u; y = v + b1[c] over [n, C, inner] (r, b0, pos, b1 optional), rounding each
 * step to float32 exactly as infer/kernels.ts channelAct does; into `out` when given (every element
 * is written). Null without the addon (or an older one).
 */
export const nativeChannelAct:
  | ((x: Float32Array, r: Float32Array | null, n: number, C: number, inner: number, b0: Float32Array | null, pos: Float32Array | null, neg: Float32Array, b1: Float32Array | null, out?: Float32Array) => Float32Array)
  | null = addon && typeof addon.channelActF32 === 'function'
  ? (x, r, n, C, inner, b0, pos, neg, b1, given) => {
      const out = given && given.length === x.length ? given : new Float32Array(x.length);
      addon.channelActF32!(out, x, r, n, C, inner, b0, pos, neg, b1);
      return out;
    }
  : null;

/**
 * The inference engine's fixed-order float conv (native/eltwise/portable_conv.cc: the WebAssembly
 * kernel's C source compiled natively, so results equal the browser's bit for bit): y = conv2d(x, w)
 * (zero padding) + bias[co], as a prepared conv for inputs [n, C, H, W]. Null without the addon.
 */
export const nativePortableConv2d:
  | ((w: Float32Array, wShape: readonly number[], inShape: readonly [number, number, number], p: { stride: [number, number]; padding: [number, number]; dilation: [number, number]; groups: number }, bias: Float32Array | null) => { run(x: Float32Array, n: number, out?: Float32Array): Float32Array })
  | null = addon && typeof addon.portableConv2dF32 === 'function'
  ? (w, wShape, [C, H, W], p, bias) => {
      const [Cout, Cg, kh, kw] = wShape as [number, number, number, number];
      const geom = Int32Array.of(0, C, H, W, Cout, Cg, kh, kw, p.stride[0], p.stride[1], p.padding[0], p.padding[1], p.dilation[0], p.dilation[1], p.groups);
      const Ho = Math.floor((H + 2 * p.padding[0] - p.dilation[0] * (kh - 1) - 1) / p.stride[0]) + 1;
      const Wo = Math.floor((W + 2 * p.padding[1] - p.dilation[1] * (kw - 1) - 1) / p.stride[1]) + 1;
      return {
        run(x, n, given) {
          const len = n * Cout * Ho * Wo, out = given && given.length === len ? given : new Float32Array(len);
          geom[0] = n;
          addon.portableConv2dF32!(out, x, w, bias, null, geom);
          return out;
        },
      };
    }
  : null;
