import type { ChannelActGrads } from '../../core/backend.js';

/**
 * Reference kernels of the per-channel activation the ReActNet / AdaBin blocks train with
 * (ops/channel_act.ts): over x viewed as [n, C, inner],
 *
 *   u = fl32(x + b0[c]);  y = fl32(fl32(u >= 0 ? pos[c]·u : neg[c]·u) + b1[c])
 *
 * (absent b0 / b1: 0, absent pos: 1): PReLU, RPReLU (b0, neg, b1) and Maxout (pos, neg) in one
 * pass. The forward is infer/kernels.ts `channelAct`'s formula, so training and the deployed
 * engine compute the same bits.
 *
 * The backward gives dx = fl32(g · (u >= 0 ? pos : neg)) and the four per-channel parameter
 * gradients, each a float64 sum rounded once:
 *   db0[c] = Σ dx,   dpos[c] = Σ_{u >= 0} g·u,   dneg[c] = Σ_{u < 0} g·u,   db1[c] = Σ g.
 * The summation order is fixed so the native kernel (native/eltwise/act_grad.cc) can vectorize it
 * and still give the same bits: within channel c, element j of every row (b, c) goes to lane
 * j mod SUM_LANES, rows in order b = 0, 1, …; the lanes are then added pairwise
 * ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)).
 */

/** Float64 accumulator lanes per sum (the native kernel's vector width in doubles, twice). */
export const SUM_LANES = 8;

/** The pairwise lane total, in the order the native kernel adds its lanes. */
export function laneTotal(l: Float64Array, o = 0): number {
  return ((l[o]! + l[o + 1]!) + (l[o + 2]! + l[o + 3]!)) + ((l[o + 4]! + l[o + 5]!) + (l[o + 6]! + l[o + 7]!));
}

/** y as above, into a new array. */
export function channelAct(
  x: Float32Array, n: number, C: number, inner: number,
  b0: Float32Array | null, pos: Float32Array | null, neg: Float32Array, b1: Float32Array | null,
): Float32Array {
  const y = new Float32Array(x.length);
  const fr = Math.fround;
  for (let b = 0, i = 0; b < n; b++) {
    for (let c = 0; c < C; c++) {
      const s0 = b0 ? b0[c]! : 0, p = pos ? pos[c]! : 1, q = neg[c]!, s1 = b1 ? b1[c]! : 0;
      for (const e = i + inner; i < e; i++) {
        const u = fr(x[i]! + s0);
        y[i] = fr(u >= 0 ? p * u : q * u) + s1;
      }
    }
  }
  return y;
}

/** dx and the parameter gradients of `channelAct` given dL/dy = g (x is the forward's input). */
export function channelActBackward(
  g: Float32Array, x: Float32Array, n: number, C: number, inner: number,
  b0: Float32Array | null, pos: Float32Array | null, neg: Float32Array,
): ChannelActGrads {
  const dx = new Float32Array(x.length);
  const db0 = new Float32Array(C), dpos = new Float32Array(C), dneg = new Float32Array(C), db1 = new Float32Array(C);
  const L = SUM_LANES;
  const acc = new Float64Array(4 * L); // lanes of db0 | dpos | dneg | db1
  const fr = Math.fround;
  for (let c = 0; c < C; c++) {
    acc.fill(0);
    const s0 = b0 ? b0[c]! : 0, p = pos ? pos[c]! : 1, q = neg[c]!;
    for (let b = 0; b < n; b++) {
      const row = (b * C + c) * inner;
      for (let j = 0; j < inner; j++) {
        const i = row + j, k = j % L;
        const u = fr(x[i]! + s0), gi = g[i]!;
        const nonneg = u >= 0;
        const d = fr(gi * (nonneg ? p : q));
        dx[i] = d;
        const gu = gi * u;
        acc[k]! += d;
        acc[L + k]! += nonneg ? gu : 0;
        acc[2 * L + k]! += nonneg ? 0 : gu;
        acc[3 * L + k]! += gi;
      }
    }
    db0[c] = laneTotal(acc, 0);
    dpos[c] = laneTotal(acc, L);
    dneg[c] = laneTotal(acc, 2 * L);
    db1[c] = laneTotal(acc, 3 * L);
  }
  return { dx, db0, dpos, dneg, db1 };
}
