/**
 * Reference kernels of the packed convolution of two-valued operands (ops/binary_forward.ts,
 * `affinePackedConv2d`: AdaBin's binary sets {β − α, β + α}). The native kernels
 * (native/eltwise/adabin_act.cc) give the same results exactly.
 */

/**
 * [lo, hi] (lo < hi) when x holds exactly two distinct finite values, else null (one value, a
 * third value, NaN, ±inf or no element). −0 and +0 are one value.
 */
export function twoValues(x: Float32Array): [number, number] | null {
  const n = x.length;
  if (n === 0 || !Number.isFinite(x[0]!)) return null;
  const v0 = x[0]!;
  let j = 1;
  while (j < n && x[j] === v0) j++;
  if (j === n || !Number.isFinite(x[j]!)) return null;
  const v1 = x[j]!;
  for (let i = j + 1; i < n; i++) {
    const v = x[i]!;
    if (v !== v0 && v !== v1) return null;
  }
  return v0 < v1 ? [v0, v1] : [v1, v0];
}

/**
 * out [N, O, HW] = fl32((f1[o]·p[n, o] + f2[o]·p[n, O]) + c2[o]) in float64, from the counts
 * p [N, O + 1, HW] of the packed conv (channel O: the pixel sums of the input's ±1 codes).
 */
export function affineCombine(p: Float32Array, N: number, O: number, HW: number, f1: Float64Array, f2: Float64Array, c2: Float64Array): Float32Array {
  const out = new Float32Array(N * O * HW);
  for (let n = 0; n < N; n++) {
    const s = (n * (O + 1) + O) * HW;
    for (let o = 0; o < O; o++) {
      const pr = (n * (O + 1) + o) * HW, yr = (n * O + o) * HW, cr = o * HW;
      const a = f1[o]!, b = f2[o]!;
      for (let q = 0; q < HW; q++) out[yr + q] = (a * p[pr + q]! + b * p[s + q]!) + c2[cr + q]!;
    }
  }
  return out;
}
