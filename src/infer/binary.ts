import { envVar } from '../core/env.js';
import type { ChannelActivation, InferBackend } from './backend.js';
import { borderSignSums, convKernel, convOut, unpackSigns, type BinaryConvGeom, type ConvKernelKind } from './bconv.js';

export type { BinaryConvGeom } from './bconv.js';

/**
 * The binary ops of the engine: `binary_conv2d` and `binary_dense` (semantics in
 * docs/onebit-format.md). Everything that depends only on the weights and the geometry is
 * computed once, when the model is loaded (`planBinaryConv2d`, `planBinaryDense`); a call then
 * runs the ±1 kernel and one fused pass for the per-channel output transform.
 *
 * Kernel boundary: the ±1 products D come from bconv.ts (`ConvKernel`: prepacked weights,
 * bit-im2col and the backend's XOR/popcount `binaryMatmul` — the native addon's AVX2/AVX-512 GEMM
 * when built) and, for dense layers, straight from `binaryMatmul` on the file's packed rows. A
 * faster kernel replaces `ConvKernel` without touching the rest. Binary values travel between ops
 * as ±1 float32 arrays, packed by the kernel on entry.
 */

/** Per-output-channel transform y = mul·D + tmul·T + bias, then optional threshold. */
export interface OutputTransform {
  mul: Float32Array;
  bias: Float32Array;
  tmul?: Float32Array;
  thr?: Float32Array;
  dir?: Int8Array;
}

/** A prepared binary conv: `run(t, n)` returns float outputs, or ±1 outputs when thresholds are set. */
export interface BinaryConvPlan {
  /**
   * `alloc` (optional) supplies a reusable output array of a given length; `residual` (only when
   * `residual` below is true) is added to the float output: y = (mul·D + bias) + r, float32 steps.
   */
  run(t: Float32Array, n: number, alloc?: (length: number) => Float32Array, residual?: Float32Array, act?: ChannelActivation): Float32Array;
  /**
   * The same on sign(x − thr[c]) (the `sign` op before it fused in: x is that op's float input), when
   * the kernel can binarize on entry (the native prepared conv); absent otherwise.
   */
  runSigned?(x: Float32Array, n: number, thr: Float32Array, alloc?: (length: number) => Float32Array, residual?: Float32Array, act?: ChannelActivation): Float32Array;
  /** Whether `run`/`runSigned` take a residual (float outputs of a kernel with a residual epilogue). */
  readonly residual?: boolean;
  /** Whether they also take `act` after the residual (a fused `channel_act`). */
  readonly act?: boolean;
}

/**
 * The prepared fast path (the backend's prepareBinaryConv2d: the native addon's native/bconv, or
 * the WebAssembly kernels): weights packed once, the
 * input binarized while it is bit-packed (a preceding `sign` op fuses in), and for float outputs
 * the per-channel y = mul·D + bias applied in the kernel's epilogue (float32 arithmetic; the
 * TypeScript transform rounds the same value once from float64, so the two may differ by an ulp).
 * Thresholded outputs use the exact TypeScript transform on D. Null where it does not apply: a
 * backend without it, ONEBIT_INFER_KERNEL=ref, a border value outside {−1, 0, +1} or offset
 * levels (tmul).
 */
function preparedPlan(g: BinaryConvGeom, bits: Uint32Array, tf: OutputTransform, be: InferBackend, kind?: ConvKernelKind): BinaryConvPlan | null {
  const direct = g.pad === 0 || g.pad === 1 || g.pad === -1;
  if (kind === 'reference' || envVar('ONEBIT_INFER_KERNEL') === 'ref' || !direct || tf.tmul || !be.prepareBinaryConv2d) return null;
  const Cg = g.C / g.groups;
  const w = unpackSigns(bits, g.Cout, Cg * g.kh * g.kw);
  const prep = be.prepareBinaryConv2d(w, [g.Cout, Cg, g.kh, g.kw], [g.C, g.H, g.W], { stride: g.stride, padding: g.padding, dilation: g.dilation, groups: g.groups }, g.pad);
  if (!prep) return null;
  const [Ho, Wo] = convOut(g), P = Ho * Wo, Cog = g.Cout / g.groups;
  const finish = (x: Float32Array, n: number, thr: Float32Array | null, alloc?: (length: number) => Float32Array, residual?: Float32Array, act?: ChannelActivation): Float32Array => {
    const out = alloc?.(n * g.Cout * P);
    if (tf.thr) return transform(prep.run(x, n, null, null, thr, out), null, n, g.Cout, P, Cog, g.groups, tf, null);
    return act ? prep.run(x, n, tf.mul, tf.bias, thr, out, residual, act) : residual ? prep.run(x, n, tf.mul, tf.bias, thr, out, residual) : prep.run(x, n, tf.mul, tf.bias, thr, out);
  };
  const residual = !tf.thr && prep.residual === true;
  return {
    run: (t, n, alloc, r, act) => finish(t, n, null, alloc, r, act), runSigned: (x, n, thr, alloc, r, act) => finish(x, n, thr, alloc, r, act),
    residual, act: residual && prep.act === true,
  };
}

/**
 * Prepare a binary convolution (bconv.ts has the ±1 kernels). A border value the kernels take
 * directly (−1, 0, +1) costs nothing more; any other `pad` runs the kernel with a zero border and
 * adds mul[o]·pad·Sout(o, p) through a dense per-(channel, pixel) bias map built here.
 */
export function planBinaryConv2d(g: BinaryConvGeom, bits: Uint32Array, tf: OutputTransform, be: InferBackend, kind?: ConvKernelKind): BinaryConvPlan {
  const fast = preparedPlan(g, bits, tf, be, kind);
  if (fast) return fast;
  const Cg = g.C / g.groups, Cog = g.Cout / g.groups;
  const [Ho, Wo] = convOut(g), P = Ho * Wo;
  const direct = g.pad === 0 || g.pad === 1 || g.pad === -1;
  const kernel = convKernel(g, bits, direct ? g.pad : 0, kind, be);
  let bmap: Float64Array | null = null;
  const sout = direct ? null : borderSignSums(g, bits);
  if (sout) {
    bmap = new Float64Array(g.Cout * P);
    for (let o = 0; o < g.Cout; o++) for (let p = 0; p < P; p++) bmap[o * P + p] = tf.bias[o]! + tf.mul[o]! * g.pad * sout[o * P + p]!;
  }

  return {
    run(t: Float32Array, n: number): Float32Array {
      const D = kernel.run(t, n);
      const T = tf.tmul ? windowSums(t, n, g, Cg, Ho, Wo) : null;
      return transform(D, T, n, g.Cout, P, Cog, g.groups, tf, bmap);
    },
  };
}

/** T[n, group, p] = Σ over the group's channels and the window's taps of t (outside taps read `pad`). */
function windowSums(t: Float32Array, n: number, g: BinaryConvGeom, Cg: number, Ho: number, Wo: number): Float64Array {
  const HW = g.H * g.W, P = Ho * Wo;
  const csum = new Float64Array(g.groups * HW);
  const T = new Float64Array(n * g.groups * P);
  for (let b = 0; b < n; b++) {
    csum.fill(0);
    for (let gr = 0; gr < g.groups; gr++) {
      for (let c = 0; c < Cg; c++) {
        const src = (b * g.C + gr * Cg + c) * HW;
        for (let i = 0; i < HW; i++) csum[gr * HW + i]! += t[src + i]!;
      }
      for (let oh = 0; oh < Ho; oh++) {
        for (let ow = 0; ow < Wo; ow++) {
          let s = 0;
          for (let i = 0; i < g.kh; i++) {
            const ih = oh * g.stride[0] - g.padding[0] + i * g.dilation[0];
            for (let j = 0; j < g.kw; j++) {
              const iw = ow * g.stride[1] - g.padding[1] + j * g.dilation[1];
              s += ih < 0 || ih >= g.H || iw < 0 || iw >= g.W ? g.pad * Cg : csum[gr * HW + ih * g.W + iw]!;
            }
          }
          T[(b * g.groups + gr) * P + oh * Wo + ow] = s;
        }
      }
    }
  }
  return T;
}

/**
 * y[n, o, p] = mul[o]·D + tmul[o]·T[n, group(o), p] + (bmap[o, p] or bias[o]), in float64; then
 * float32 (float output) or ±1 by the threshold: dir > 0 → y >= thr, dir < 0 → y <= thr.
 */
function transform(
  D: Float32Array, T: Float64Array | null, n: number, Cout: number, P: number, Cog: number, groups: number,
  tf: OutputTransform, bmap: Float64Array | null,
): Float32Array {
  const y = D; // transformed in place
  for (let b = 0, i = 0; b < n; b++) {
    for (let o = 0; o < Cout; o++) {
      const m = tf.mul[o]!, tm = tf.tmul ? tf.tmul[o]! : 0, bo = tf.bias[o]!;
      const tOff = T ? (b * groups + Math.floor(o / Cog)) * P : 0;
      const thr = tf.thr ? tf.thr[o]! : 0, up = tf.dir ? tf.dir[o]! > 0 : true;
      for (let p = 0; p < P; p++, i++) {
        let v = m * D[i]! + (bmap ? bmap[o * P + p]! : bo);
        if (T) v += tm * T[tOff + p]!;
        y[i] = tf.thr ? ((up ? v >= thr : v <= thr) ? 1 : -1) : v;
      }
    }
  }
  return y;
}

/** A prepared binary dense layer over ±1 inputs [N, I]. */
export function planBinaryDense(I: number, O: number, bits: Uint32Array, tf: OutputTransform, be: InferBackend): BinaryConvPlan {
  return {
    run(t: Float32Array, n: number): Float32Array {
      const b = be;
      const D = b.binaryMatmul(b.bitpack(t, n, I), bits, n, O, I);
      let T: Float64Array | null = null;
      if (tf.tmul) {
        T = new Float64Array(n);
        for (let r = 0; r < n; r++) { let s = 0; for (let j = 0; j < I; j++) s += t[r * I + j]!; T[r] = s; }
      }
      return transform(D, T, n, O, 1, O, 1, tf, null);
    },
  };
}
