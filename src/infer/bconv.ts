import { envVar } from '../core/env.js';
import { backend } from '../core/tensor.js';
import type { InferBackend } from './backend.js';
import { windowOut, wordsFor } from './graph.js';

/**
 * The ±1 convolution kernels of the engine: D = conv(t, s) for ±1 inputs t [N, C, H, W] (as ±1
 * floats) and the sign weights s of a `binary_conv2d` node (packed rows, the file's layout), with
 * a border value `kpad` ∈ {−1, 0, +1} — the same contract as the backend's `binaryConv2d`
 * (core/backend.ts), but with everything weight-dependent prepared once, at load time.
 *
 *   packed (default): weights repacked once into [Cout][taps][⌈Cg/32⌉] words; per call the input
 *     is packed per pixel (channels → bits), gathered into bit-patches (bit-im2col: whole words per
 *     tap, border taps = 0 bits = +1) and multiplied by the backend's `binaryMatmul` (the native
 *     XOR/popcount GEMM when built). The +1 border is then corrected to `kpad` with the precomputed
 *     (kpad − 1)·Sout(o, p), Sout = the sum of channel o's weight signs on pixel p's outside taps
 *     (the native conv's own border rule), and the unused channel bits of each word (equal in
 *     both operands, so counted +1 each) are subtracted.
 *   reference: the backend's `binaryConv2d` on ±1 float weights (it repacks the weights on every
 *     call); the oracle the packed kernel is tested against (ONEBIT_INFER_KERNEL=ref forces it).
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

/** D for a batch, [N, Cout, Ho·Wo]: the ±1 convolution with the prepared weights. */
export interface ConvKernel {
  run(t: Float32Array, n: number): Float32Array;
}

export type ConvKernelKind = 'packed' | 'reference';

/** The backend kernels these convs run on (the training backend's, unless the engine passes its own). */
export type BinaryKernels = Pick<InferBackend, 'binaryConv2d' | 'binaryMatmul' | 'bitpack'>;

/** Output size of a geometry. */
export function convOut(g: BinaryConvGeom): [number, number] {
  return [windowOut(g.H, g.kh, g.stride[0], g.padding[0], g.dilation[0]), windowOut(g.W, g.kw, g.stride[1], g.padding[1], g.dilation[1])];
}

/** Sign (±1) of weight bit j of row o (bit 1 = −1). */
const signAt = (bits: Uint32Array, words: number, o: number, j: number): number => ((bits[o * words + (j >>> 5)]! >>> (j & 31)) & 1 ? -1 : 1);

/** Unpack row-packed sign bits (bit 1 = −1) to ±1 floats, k values per row. */
export function unpackSigns(bits: Uint32Array, rows: number, k: number): Float32Array {
  const words = wordsFor(k), out = new Float32Array(rows * k);
  for (let r = 0; r < rows; r++) for (let j = 0; j < k; j++) out[r * k + j] = signAt(bits, words, r, j);
  return out;
}

/**
 * Sout(o, p): the sum of output channel o's weight signs over the taps of output pixel p that fall
 * outside the image ([Cout, Ho·Wo], 0 for inside pixels); null when the conv has no padding.
 */
export function borderSignSums(g: BinaryConvGeom, bits: Uint32Array): Float64Array | null {
  if (!g.padding[0] && !g.padding[1]) return null;
  const Cg = g.C / g.groups, taps = g.kh * g.kw, words = wordsFor(Cg * taps);
  const [Ho, Wo] = convOut(g), P = Ho * Wo;
  const stap = new Float64Array(g.Cout * taps); // Σ_c sign per (o, tap); weight bit (c, tap) = c·taps + tap
  for (let o = 0; o < g.Cout; o++) for (let c = 0; c < Cg; c++) for (let t = 0; t < taps; t++) stap[o * taps + t]! += signAt(bits, words, o, c * taps + t);
  const sout = new Float64Array(g.Cout * P);
  const src = tapSources(g);
  for (let p = 0; p < P; p++) {
    for (let t = 0; t < taps; t++) {
      if (src[p * taps + t]! >= 0) continue;
      for (let o = 0; o < g.Cout; o++) sout[o * P + p]! += stap[o * taps + t]!;
    }
  }
  return sout;
}

/** Per output pixel p and tap t (= i·kw + j): the input pixel read (ih·W + iw), or −1 outside the image. */
export function tapSources(g: BinaryConvGeom): Int32Array {
  const [Ho, Wo] = convOut(g), P = Ho * Wo, taps = g.kh * g.kw;
  const src = new Int32Array(P * taps);
  for (let p = 0; p < P; p++) {
    const oh = Math.floor(p / Wo), ow = p % Wo;
    for (let i = 0; i < g.kh; i++) {
      const ih = oh * g.stride[0] - g.padding[0] + i * g.dilation[0];
      for (let j = 0; j < g.kw; j++) {
        const iw = ow * g.stride[1] - g.padding[1] + j * g.dilation[1];
        src[p * taps + i * g.kw + j] = ih >= 0 && ih < g.H && iw >= 0 && iw < g.W ? ih * g.W + iw : -1;
      }
    }
  }
  return src;
}

/** The reference kernel: the backend's binaryConv2d on ±1 float weights unpacked once. */
export function referenceConvKernel(g: BinaryConvGeom, bits: Uint32Array, kpad: number, be: BinaryKernels = backend()): ConvKernel {
  const w = unpackSigns(bits, g.Cout, (g.C / g.groups) * g.kh * g.kw);
  const wShape = [g.Cout, g.C / g.groups, g.kh, g.kw];
  const p = { stride: g.stride, padding: g.padding, dilation: g.dilation, groups: g.groups };
  return { run: (t, n) => be.binaryConv2d(t, [n, g.C, g.H, g.W], w, wShape, p, kpad) };
}

/** The packed kernel (module comment): prepacked weights, bit-im2col, backend binaryMatmul. */
export function packedConvKernel(g: BinaryConvGeom, bits: Uint32Array, kpad: number, be: BinaryKernels = backend()): ConvKernel {
  const G = g.groups, Cg = g.C / G, Cog = g.Cout / G, taps = g.kh * g.kw;
  const Cw = wordsFor(Cg), rowWords = taps * Cw, kBits = rowWords * 32;
  const unused = taps * (Cw * 32 - Cg); // zero bits in both operands: each adds +1 to the GEMM
  const inWords = wordsFor(Cg * taps);
  // Weights: [Cout][tap][Cw], bit (c % 32) of word c/32 set for a −1 sign.
  const wp = new Uint32Array(g.Cout * rowWords);
  for (let o = 0; o < g.Cout; o++) {
    for (let c = 0; c < Cg; c++) {
      for (let t = 0; t < taps; t++) if (signAt(bits, inWords, o, c * taps + t) < 0) wp[o * rowWords + t * Cw + (c >>> 5)]! |= 1 << (c & 31);
    }
  }
  const groupW = Array.from({ length: G }, (_, gr) => wp.subarray(gr * Cog * rowWords, (gr + 1) * Cog * rowWords));
  const [Ho, Wo] = convOut(g), P = Ho * Wo, HW = g.H * g.W;
  const sout = kpad !== 1 ? borderSignSums(g, bits) : null;
  const src = tapSources(g);
  return {
    run(t: Float32Array, n: number): Float32Array {
      const b = be;
      const D = new Float32Array(n * g.Cout * P);
      const tw = new Uint32Array(HW * Cw);
      const patches = new Uint32Array(P * rowWords);
      for (let img = 0; img < n; img++) {
        for (let gr = 0; gr < G; gr++) {
          // 1. Pack the group's channels per pixel: tw[pixel][Cw].
          tw.fill(0);
          for (let c = 0; c < Cg; c++) {
            const base = (img * g.C + gr * Cg + c) * HW, word = c >>> 5, bit = 1 << (c & 31);
            for (let q = 0; q < HW; q++) if (t[base + q]! < 0) tw[q * Cw + word]! |= bit;
          }
          // 2. Bit-im2col: whole words per tap; outside taps stay 0 (+1).
          patches.fill(0);
          for (let p = 0; p < P; p++) {
            for (let k = 0; k < taps; k++) {
              const q = src[p * taps + k]!;
              if (q < 0) continue;
              const dst = p * rowWords + k * Cw, from = q * Cw;
              for (let w = 0; w < Cw; w++) patches[dst + w] = tw[from + w]!;
            }
          }
          // 3. XOR/popcount GEMM: res[p, o] = kBits − 2·popcount.
          const res = b.binaryMatmul(patches, groupW[gr]!, P, Cog, kBits);
          // 4. Transpose to [Cout, P], drop the unused bits' +1s, move the +1 border to kpad.
          for (let o = 0; o < Cog; o++) {
            const og = gr * Cog + o, out = (img * g.Cout + og) * P;
            for (let p = 0; p < P; p++) D[out + p] = res[p * Cog + o]! - unused + (sout ? (kpad - 1) * sout[og * P + p]! : 0);
          }
        }
      }
      return D;
    },
  };
}

/** The kernel for a conv: packed unless ONEBIT_INFER_KERNEL=ref (or `kind` says otherwise). */
export function convKernel(g: BinaryConvGeom, bits: Uint32Array, kpad: number, kind?: ConvKernelKind, be: BinaryKernels = backend()): ConvKernel {
  const k = kind ?? (envVar('ONEBIT_INFER_KERNEL') === 'ref' ? 'reference' : 'packed');
  return k === 'reference' ? referenceConvKernel(g, bits, kpad, be) : packedConvKernel(g, bits, kpad, be);
}
