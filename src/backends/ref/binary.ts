/**
 * Reference binary (1-bit) kernels: the living spec the native ones are tested against.
 *
 * Bit convention (the same in every backend, see core/backend.ts): a value's bit is 1 for −1
 * (x < 0) and 0 for +1 (x >= 0, so 0 and −0 count as +1); bits are packed LSB-first into 32-bit
 * words, 32 values per word, row by row; the unused tail bits of a row's last word are 0. The ±1
 * dot product of two packed K-bit rows is therefore K − 2·popcount(a XOR b): every differing bit
 * is a (−1)·(+1) product, every equal bit a (+1).
 */
import type { Conv2dParams, Shape } from '../../core/backend.js';

/** Number of 32-bit words that hold k bits. */
export const wordsFor = (k: number): number => (k + 31) >>> 5;

/** Set bits of a 32-bit word (SWAR). */
function popcount32(v: number): number {
  v = v - ((v >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
}

/** Pack the signs of x [rows, k] row by row into [rows, ceil(k/32)] words (bit 1 = x < 0). */
export function bitpack(x: Float32Array, rows: number, k: number): Uint32Array {
  const words = wordsFor(k);
  const out = new Uint32Array(rows * words);
  for (let r = 0; r < rows; r++) {
    const src = r * k, dst = r * words;
    for (let j = 0; j < k; j++) if (x[src + j]! < 0) out[dst + (j >>> 5)]! |= 1 << (j & 31);
  }
  return out;
}

/** C[i, j] = k − 2·popcount(a_i XOR b_j) for packed rows a [m, words], b [n, words] of k bits. */
export function binaryMatmul(a: Uint32Array, b: Uint32Array, m: number, n: number, k: number): Float32Array {
  const words = wordsFor(k);
  const c = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    const ai = i * words;
    for (let j = 0; j < n; j++) {
      const bj = j * words;
      let diff = 0;
      for (let w = 0; w < words; w++) diff += popcount32((a[ai + w]! ^ b[bj + w]!) >>> 0);
      c[i * n + j] = k - 2 * diff;
    }
  }
  return c;
}

/**
 * Exact ±1 convolution: y = conv2d(sign(x) padded with padValue, sign(w)), sign(v) = −1 for v < 0
 * else +1. Geometry as the float conv2d: x [N, C, H, W], w [Cout, C/groups, kh, kw],
 * y [N, Cout, Ho, Wo], Ho = floor((H + 2·padH − dilH·(kh−1) − 1) / strideH) + 1 (likewise Wo).
 * A tap that falls in the padding reads padValue (0: the tap contributes nothing, as the zero
 * padding of a float conv; ±1: a binary border). Only the signs of x and w are read, so the output
 * is integer-valued (exact in float32 for |y| < 2^24).
 *
 * Direct loops, weight-stationary: for each output plane (n, co) and each weight tap (c, i, j),
 * add sign(w)·input over the output plane, the inner loop running along an output row.
 */
export function binaryConv2d(
  x: Float32Array, xShape: Shape, w: Float32Array, wShape: Shape, p: Conv2dParams, padValue: number,
): Float32Array {
  const [N, C, H, W] = xShape as [number, number, number, number];
  const [Cout, Cg, kh, kw] = wShape as [number, number, number, number];
  const [sh, sw] = p.stride, [ph, pw] = p.padding, [dh, dw] = p.dilation;
  const Cog = Cout / p.groups;
  const Ho = Math.floor((H + 2 * ph - dh * (kh - 1) - 1) / sh) + 1;
  const Wo = Math.floor((W + 2 * pw - dw * (kw - 1) - 1) / sw) + 1;
  const sx = Int8Array.from(x, (v) => (v < 0 ? -1 : 1));
  const plane = new Float64Array(Ho * Wo);
  const y = new Float32Array(N * Cout * Ho * Wo);
  for (let n = 0; n < N; n++) {
    for (let co = 0; co < Cout; co++) {
      const g = Math.floor(co / Cog);
      plane.fill(0);
      for (let c = 0; c < Cg; c++) {
        const xPlane = (n * C + g * Cg + c) * H * W;
        for (let i = 0; i < kh; i++) {
          for (let j = 0; j < kw; j++) {
            const s = w[((co * Cg + c) * kh + i) * kw + j]! < 0 ? -1 : 1;
            const pad = s * padValue;
            for (let oh = 0; oh < Ho; oh++) {
              const ih = oh * sh - ph + i * dh;
              const out = oh * Wo;
              if (ih < 0 || ih >= H) {
                for (let ow = 0; ow < Wo; ow++) plane[out + ow]! += pad;
                continue;
              }
              const row = xPlane + ih * W;
              for (let ow = 0; ow < Wo; ow++) {
                const iw = ow * sw - pw + j * dw;
                plane[out + ow]! += iw >= 0 && iw < W ? s * sx[row + iw]! : pad;
              }
            }
          }
        }
      }
      y.set(plane, (n * Cout + co) * Ho * Wo);
    }
  }
  return y;
}
