import type { Shape } from '../../core/backend.js';
import { sizeOf } from '../../core/shape.js';

/**
 * Reference reductions. A reduction over a set of axes is done as a sequence of single-axis
 * reductions, each viewing the array as [outer, len, inner] so the inner loop is contiguous.
 */

function split(shape: Shape, axis: number): [number, number, number] {
  return [sizeOf(shape.slice(0, axis)), shape[axis]!, sizeOf(shape.slice(axis + 1))];
}

/** out [outer, inner] = the float64 sum over len of x viewed as [outer, len, inner], rounded once. */
export type SumAxisFn = (x: Float32Array, outer: number, len: number, inner: number) => Float32Array;

function sumAxis(x: Float32Array, outer: number, len: number, inner: number): Float32Array {
  const out = new Float32Array(outer * inner);
  const acc = new Float64Array(inner);
  for (let o = 0; o < outer; o++) {
    acc.fill(0);
    const base = o * len * inner;
    for (let l = 0; l < len; l++) {
      const row = base + l * inner;
      for (let i = 0; i < inner; i++) acc[i]! += x[row + i]!;
    }
    for (let i = 0; i < inner; i++) out[o * inner + i] = acc[i]!;
  }
  return out;
}

/**
 * Sum over `axes` as a sequence of single-axis sums (`axisSum`, each rounded to float32): the
 * reference's order, which a native single-axis kernel plugs into to give the same bits.
 */
export function sumAxes(x: Float32Array, shape: Shape, axes: readonly number[], axisSum: SumAxisFn): Float32Array {
  let cur = x;
  const s = [...shape];
  for (const a of axes) {
    const [outer, len, inner] = split(s, a);
    cur = axisSum(cur, outer, len, inner);
    s[a] = 1;
  }
  return cur === x ? Float32Array.from(x) : cur;
}

export function sum(x: Float32Array, shape: Shape, axes: readonly number[]): Float32Array {
  return sumAxes(x, shape, axes, sumAxis);
}

/** out[i·spread + j] = g[i] (divisor 0), or fround(g[i] / divisor) (Backend.spread). */
export function spread(g: Float32Array, spread: number, divisor: number): Float32Array {
  const out = new Float32Array(g.length * spread);
  for (let i = 0; i < g.length; i++) out.fill(divisor !== 0 ? g[i]! / divisor : g[i]!, i * spread, (i + 1) * spread);
  return out;
}

export function max(x: Float32Array, shape: Shape, axis: number): Float32Array {
  const [outer, len, inner] = split(shape, axis);
  const out = new Float32Array(outer * inner).fill(-Infinity);
  for (let o = 0; o < outer; o++) {
    for (let l = 0; l < len; l++) {
      const row = (o * len + l) * inner;
      for (let i = 0; i < inner; i++) {
        const v = x[row + i]!;
        if (v > out[o * inner + i]! || Number.isNaN(v)) out[o * inner + i] = v;
      }
    }
  }
  return out;
}

export function argmax(x: Float32Array, shape: Shape, axis: number): Int32Array {
  const [outer, len, inner] = split(shape, axis);
  const out = new Int32Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      let best = -Infinity;
      let bi = 0;
      for (let l = 0; l < len; l++) {
        const v = x[(o * len + l) * inner + i]!;
        if (v > best) {
          best = v;
          bi = l;
        }
      }
      out[o * inner + i] = bi;
    }
  }
  return out;
}
