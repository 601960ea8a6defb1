import { fail, fmtShape } from '../core/errors.js';
import { normAxes, sizeOf } from '../core/shape.js';
import { backend, Tensor, wrap } from '../core/tensor.js';
import { record } from '../autograd/tape.js';

/** Reductions with gradients. */

function keptShape(shape: readonly number[], axes: readonly number[]): number[] {
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

function dropShape(shape: readonly number[], axes: readonly number[]): number[] {
  return shape.filter((_, i) => !axes.includes(i));
}

/**
 * When the reduced axes (size 1 in `kept`) are exactly the trailing ones of `shape`, the number of
 * elements each kept value spreads over (e.g. H·W for a mean over [2, 3] of NCHW); else 0.
 */
function trailingSpread(kept: readonly number[], shape: readonly number[]): number {
  let k = shape.length;
  while (k > 0 && kept[k - 1] === 1) k--;
  for (let i = 0; i < k; i++) if (kept[i] !== shape[i]) return 0;
  return sizeOf(shape.slice(k));
}

/**
 * Broadcast g (shape `kept`) back to `shape`, each value divided by `divisor` (0: as is; a mean's
 * gradient: fround(g / count)).
 */
function expand(g: Tensor, kept: readonly number[], shape: readonly number[], divisor = 0): Tensor {
  const gv = g.f32();
  const spread = trailingSpread(kept, shape);
  const be = backend();
  // One fill per kept value (a global average pool's gradient: no ones array, no broadcast mul).
  if (spread > 0) return wrap(be.spread(gv, spread, divisor), shape);
  const ones = new Float32Array(sizeOf(shape)).fill(1);
  const e = be.binary('mul', ones, shape, gv, kept, shape);
  if (divisor !== 0) for (let i = 0; i < e.length; i++) e[i] = e[i]! / divisor;
  return wrap(e, shape);
}

export function sum(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  const ax = normAxes('sum', axes, x.rank);
  const kept = keptShape(x.shape, ax);
  const outShape = keepDims ? kept : dropShape(x.shape, ax);
  const y = wrap(backend().sum(x.f32('sum'), x.shape, ax), outShape);
  return record(y, 'sum', [x], (g) => [expand(g, kept, x.shape)]);
}

export function mean(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  const ax = normAxes('mean', axes, x.rank);
  const count = ax.reduce((n, a) => n * x.shape[a]!, 1);
  if (count === 0) fail('mean', 'a non-empty reduction', `shape ${fmtShape(x.shape)} over axes [${ax.join(',')}]`);
  const kept = keptShape(x.shape, ax);
  const outShape = keepDims ? kept : dropShape(x.shape, ax);
  const s = backend().sum(x.f32('mean'), x.shape, ax);
  for (let i = 0; i < s.length; i++) s[i]! /= count;
  const y = wrap(s, outShape);
  // Each gradient element is fround(g / count), as 1·g is exact.
  return record(y, 'mean', [x], (g) => [expand(g, kept, x.shape, count)]);
}

/** Max along one axis; the gradient goes to the (first) arg-max. */
export function max(x: Tensor, axis: number, keepDims = false): Tensor {
  const [a] = normAxes('max', axis, x.rank);
  if (x.shape[a!] === 0) fail('max', 'a non-empty axis', `shape ${fmtShape(x.shape)}`);
  const kept = keptShape(x.shape, [a!]);
  const y = wrap(backend().max(x.f32('max'), x.shape, a!), keepDims ? kept : dropShape(x.shape, [a!]));
  return record(y, 'max', [x], (g) => {
    const idx = backend().argmax(x.f32(), x.shape, a!);
    const gx = new Float32Array(x.size);
    const outer = sizeOf(x.shape.slice(0, a!)), len = x.shape[a!]!, inner = sizeOf(x.shape.slice(a! + 1));
    const gv = g.f32();
    for (let o = 0; o < outer; o++) for (let i = 0; i < inner; i++) gx[(o * len + idx[o * inner + i]!) * inner + i] = gv[o * inner + i]!;
    return [wrap(gx, x.shape)];
  });
}

/** Index of the max along an axis, as an int32 tensor (no gradient). */
export function argmax(x: Tensor, axis = -1): Tensor {
  const [a] = normAxes('argmax', axis, x.rank);
  return wrap(backend().argmax(x.f32('argmax'), x.shape, a!), dropShape(x.shape, [a!]));
}
