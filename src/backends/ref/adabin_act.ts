import { approxSignDerivative } from './elementwise.js';
import { laneTotal, SUM_LANES } from './channel_act.js';

/**
 * Reference kernels of AdaBin's activation binarizer (quantizers/adabin_act.ts; methods.md §3.3)
 * with its one pair of scalars a = α_a, b = β_a. Over every element of x:
 *
 *   V = fl32(fl32(x − b)/a),  Ba = sign(V) (sign(0) = +1, NaN stays NaN)
 *   code form:  y = fl32(a·fl32(Ba + b))        paper form:  y = fl32(b + fl32(a·Ba))
 *
 * so y is one of two values (`adabinActLevels`) or NaN. These are the float32 steps of the op-by-op
 * composition sub → div → sign → add → mul (or mul → add), so the forward and dx equal it bit for
 * bit. The backward, for dL/dy = g:
 *
 *   dBa = fl32(g·a),  dV = fl32(dBa·ApproxSign'(V)),  dx = fl32(dV/a)
 *   da = Σ [g·fl32(Ba + b) (code) or g·Ba (paper)] − Σ dV·fl32(x − b)/(a·a)
 *   db = Σ [dBa (code) or g (paper)] − Σ dx
 *
 * each sum in float64 in a fixed order, so the native kernel (native/eltwise/adabin_act.cc) can
 * split it over threads and still give the same bits: element i goes to lane i mod SUM_LANES of its
 * block of ADABIN_BLOCK elements (per element, the first term is added, then the second
 * subtracted); a block's lanes are added pairwise (`laneTotal`); the block totals are added in
 * block order.
 */

/** Elements per block of the backward's sums (a multiple of SUM_LANES). */
export const ADABIN_BLOCK = 4096;

/** [lo, hi]: the output for Ba = −1 and for Ba = +1. */
export function adabinActLevels(a: number, b: number, code: boolean): [number, number] {
  const fr = Math.fround;
  return code ? [fr(a * fr(-1 + b)), fr(a * fr(1 + b))] : [fr(b + fr(-a)), fr(b + a)];
}

/** y as above, into a new array. a and b are float32 values. */
export function adabinAct(x: Float32Array, a: number, b: number, code: boolean): Float32Array {
  const [lo, hi] = adabinActLevels(a, b, code);
  const fr = Math.fround;
  const y = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = fr(fr(x[i]! - b) / a);
    y[i] = v >= 0 ? hi : v < 0 ? lo : NaN;
  }
  return y;
}

/** dx (when `wantDx`; else null) and the float64 sums da, db of the backward above. */
export function adabinActBackward(g: Float32Array, x: Float32Array, a: number, b: number, code: boolean, wantDx: boolean): { dx: Float32Array | null; da: number; db: number } {
  const fr = Math.fround;
  const n = x.length, L = SUM_LANES;
  const dx = wantDx ? new Float32Array(n) : null;
  // Lanes of the four sums: Σ g·fl32(Ba + b) (or g·Ba) | Σ dV·fl32(x − b) | Σ dBa (or g) | Σ dx.
  const lanes = new Float64Array(4 * L);
  const t = [0, 0, 0, 0];
  for (let start = 0; start < n; start += ADABIN_BLOCK) {
    lanes.fill(0);
    const end = Math.min(n, start + ADABIN_BLOCK);
    for (let i = start; i < end; i++) {
      const gi = g[i]!, num = fr(x[i]! - b), v = fr(num / a);
      const s = v >= 0 ? 1 : v < 0 ? -1 : NaN;
      const dBa = fr(gi * a);
      const dv = fr(dBa * approxSignDerivative(v));
      const dxi = fr(dv / a);
      if (dx) dx[i] = dxi;
      const k = (i - start) % L;
      lanes[k] = lanes[k]! + gi * (code ? fr(s + b) : s);
      lanes[L + k] = lanes[L + k]! + dv * num;
      lanes[2 * L + k] = lanes[2 * L + k]! + (code ? dBa : gi);
      lanes[3 * L + k] = lanes[3 * L + k]! + dxi;
    }
    for (let q = 0; q < 4; q++) t[q] = t[q]! + laneTotal(lanes, q * L);
  }
  const da = t[0]! - t[1]! / (a * a), db = t[2]! - t[3]!;
  return { dx, da, db };
}
