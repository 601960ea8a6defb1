import { backend } from '../core/tensor.js';
import { windowOut, wordsFor } from './graph.js';

/**
 * The binary ops of the engine: `binary_conv2d` and `binary_dense` (semantics in
 * docs/onebit-format.md). Everything that depends only on the weights and the geometry is
 * computed once, when the model is loaded (`planBinaryConv2d`, `planBinaryDense`); a call then
 * runs the ±1 kernel and one fused pass for the per-channel output transform.
 *
 * Kernel boundary: the ±1 products D come from the backend's `binaryConv2d` / `binaryMatmul`
 * (the native addon's bit-packed AVX2/AVX-512 kernels when built; core/backend.ts has the bit
 * convention). A kernel that takes pre-packed weights can replace `ConvKernel` without touching
 * the rest. Binary values travel between ops as ±1 float32 arrays (what those kernels read).
 */

/** Geometry of a binary convolution (per-sample input [C, H, W]). */
export interface BinaryConvGeom {
  C: number; H: number; W: number;
  Cout: number; kh: number; kw: number;
  stride: [number, number]; padding: [number, number]; dilation: [number, number];
  groups: number;
  /**
   * What a tap outside the image reads, in ±1 space: 0 (nothing), ±1 (a binary border), or any other
   * value (the border of offset levels: (padValue − ma)/da, see docs/onebit-format.md).
   */
  pad: number;
}

/** Per-output-channel transform y = mul·D + tmul·T + bias, then optional threshold. */
export interface OutputTransform {
  mul: Float32Array;
  bias: Float32Array;
  tmul?: Float32Array;
  thr?: Float32Array;
  dir?: Int8Array;
}

/** D for a batch: the ±1 convolution of t [N, C, H, W] with the layer's sign weights. */
export interface ConvKernel {
  run(t: Float32Array, n: number): Float32Array;
}

/** Unpack row-packed sign bits (bit 1 = −1) to ±1 floats, k values per row. */
export function unpackSigns(bits: Uint32Array, rows: number, k: number): Float32Array {
  const words = wordsFor(k), out = new Float32Array(rows * k);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < k; j++) out[r * k + j] = (bits[r * words + (j >>> 5)]! >>> (j & 31)) & 1 ? -1 : 1;
  }
  return out;
}

/** The default conv kernel: the backend's binaryConv2d (border `pad` ∈ {−1, 0, 1}) on weights unpacked once at load. */
function backendConvKernel(g: BinaryConvGeom, w: Float32Array, pad: number): ConvKernel {
  const wShape = [g.Cout, g.C / g.groups, g.kh, g.kw];
  const p = { stride: g.stride, padding: g.padding, dilation: g.dilation, groups: g.groups };
  return { run: (t, n) => backend().binaryConv2d(t, [n, g.C, g.H, g.W], w, wShape, p, pad) };
}

/** A prepared binary conv: `run(t, n)` returns float outputs, or ±1 outputs when thresholds are set. */
export interface BinaryConvPlan {
  run(t: Float32Array, n: number): Float32Array;
}

/**
 * Prepare a binary convolution: unpack the weights for the kernel. A border value the kernel
 * takes directly (−1, 0, +1) costs nothing more; any other `pad` runs the kernel with a zero
 * border and adds mul[o]·pad·Sout(o, p) through a dense per-(channel, pixel) bias map, where
 * Sout(o, p) is the sum of channel o's weight signs on the taps of pixel p outside the image.
 */
export function planBinaryConv2d(g: BinaryConvGeom, bits: Uint32Array, tf: OutputTransform): BinaryConvPlan {
  const Cg = g.C / g.groups, K = Cg * g.kh * g.kw, taps = g.kh * g.kw, Cog = g.Cout / g.groups;
  const Ho = windowOut(g.H, g.kh, g.stride[0], g.padding[0], g.dilation[0]);
  const Wo = windowOut(g.W, g.kw, g.stride[1], g.padding[1], g.dilation[1]);
  const P = Ho * Wo;
  const w = unpackSigns(bits, g.Cout, K);
  const direct = g.pad === 0 || g.pad === 1 || g.pad === -1;
  const kernel = backendConvKernel(g, w, direct ? g.pad : 0);

  let bmap: Float64Array | null = null;
  if (!direct && (g.padding[0] || g.padding[1])) {
    const stap = new Float64Array(g.Cout * taps); // Σ_c sign per (o, tap)
    for (let o = 0; o < g.Cout; o++) for (let c = 0; c < Cg; c++) for (let t = 0; t < taps; t++) stap[o * taps + t]! += w[(o * Cg + c) * taps + t]!;
    bmap = new Float64Array(g.Cout * P);
    for (let p = 0; p < P; p++) {
      const outTaps: number[] = [];
      for (let i = 0; i < g.kh; i++) {
        const ih = Math.floor(p / Wo) * g.stride[0] - g.padding[0] + i * g.dilation[0];
        for (let j = 0; j < g.kw; j++) {
          const iw = (p % Wo) * g.stride[1] - g.padding[1] + j * g.dilation[1];
          if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) outTaps.push(i * g.kw + j);
        }
      }
      for (let o = 0; o < g.Cout; o++) {
        let sout = 0;
        for (const t of outTaps) sout += stap[o * taps + t]!;
        bmap[o * P + p] = tf.bias[o]! + tf.mul[o]! * g.pad * sout;
      }
    }
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
export function planBinaryDense(I: number, O: number, bits: Uint32Array, tf: OutputTransform): BinaryConvPlan {
  return {
    run(t: Float32Array, n: number): Float32Array {
      const b = backend();
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
