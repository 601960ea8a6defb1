import type { BinaryKernel, UnaryKernel } from '../core/backend.js';
import { fail, fmtShape } from '../core/errors.js';
import { broadcastShapes, shapesEqual } from '../core/shape.js';
import { backend, Tensor, wrap } from '../core/tensor.js';
import { record } from '../autograd/tape.js';
import { sum } from './reduce.js';
import { reshape } from './shape.js';

/** Elementwise ops with NumPy broadcasting, each with its gradient rule. */

export type TensorLike = Tensor | number;

export function asTensor(x: TensorLike): Tensor {
  return typeof x === 'number' ? new Tensor(Float32Array.of(x), []) : x;
}

/** Sum a broadcast gradient back to `shape`. */
export function unbroadcast(g: Tensor, shape: readonly number[]): Tensor {
  if (shapesEqual(g.shape, shape)) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  return reshape(sum(g, axes, true), shape);
}

function bin(op: BinaryKernel, a: TensorLike, b: TensorLike): Tensor {
  const ta = asTensor(a);
  const tb = asTensor(b);
  const out = broadcastShapes(op, ta.shape, tb.shape);
  return wrap(backend().binary(op, ta.f32(op), ta.shape, tb.f32(op), tb.shape, out), out);
}

export function add(a: TensorLike, b: TensorLike): Tensor {
  const ta = asTensor(a), tb = asTensor(b);
  return record(bin('add', ta, tb), 'add', [ta, tb], (g) => [unbroadcast(g, ta.shape), unbroadcast(g, tb.shape)]);
}

export function sub(a: TensorLike, b: TensorLike): Tensor {
  const ta = asTensor(a), tb = asTensor(b);
  return record(bin('sub', ta, tb), 'sub', [ta, tb], (g) => [unbroadcast(g, ta.shape), unbroadcast(neg(g), tb.shape)]);
}

export function mul(a: TensorLike, b: TensorLike): Tensor {
  const ta = asTensor(a), tb = asTensor(b);
  return record(bin('mul', ta, tb), 'mul', [ta, tb], (g) => [
    unbroadcast(bin('mul', g, tb), ta.shape),
    unbroadcast(bin('mul', g, ta), tb.shape),
  ]);
}

export function div(a: TensorLike, b: TensorLike): Tensor {
  const ta = asTensor(a), tb = asTensor(b);
  return record(bin('div', ta, tb), 'div', [ta, tb], (g) => [
    unbroadcast(bin('div', g, tb), ta.shape),
    // d(a/b)/db = -a/b²
    unbroadcast(neg(bin('div', bin('mul', g, ta), bin('mul', tb, tb))), tb.shape),
  ]);
}

/** a^p for a constant exponent p. */
export function pow(a: Tensor, p: number): Tensor {
  return record(bin('pow', a, p), 'pow', [a], (g) => [bin('mul', g, bin('mul', bin('pow', a, p - 1), p))]);
}

/** Elementwise max; the gradient goes to `a` where a >= b, else to `b`. */
export function maximum(a: TensorLike, b: TensorLike): Tensor {
  const ta = asTensor(a), tb = asTensor(b);
  return record(bin('maximum', ta, tb), 'maximum', [ta, tb], (g) => {
    const m = bin('greaterEqual', ta, tb);
    return [unbroadcast(bin('mul', g, m), ta.shape), unbroadcast(bin('mul', g, bin('sub', 1, m)), tb.shape)];
  });
}

/** Elementwise min; the gradient goes to `a` where a <= b, else to `b`. */
export function minimum(a: TensorLike, b: TensorLike): Tensor {
  const ta = asTensor(a), tb = asTensor(b);
  return record(bin('minimum', ta, tb), 'minimum', [ta, tb], (g) => {
    const m = bin('greaterEqual', tb, ta);
    return [unbroadcast(bin('mul', g, m), ta.shape), unbroadcast(bin('mul', g, bin('sub', 1, m)), tb.shape)];
  });
}

/** Comparisons: 1/0 float tensors, no gradient. */
export function greater(a: TensorLike, b: TensorLike): Tensor {
  return bin('greater', a, b);
}
export function greaterEqual(a: TensorLike, b: TensorLike): Tensor {
  return bin('greaterEqual', a, b);
}
export function equal(a: TensorLike, b: TensorLike): Tensor {
  return bin('equal', a, b);
}

function un(op: UnaryKernel, x: Tensor): Tensor {
  return wrap(backend().unary(op, x.f32(op)), x.shape);
}

export function neg(x: Tensor): Tensor {
  return record(un('neg', x), 'neg', [x], (g) => [un('neg', g)]);
}

export function exp(x: Tensor): Tensor {
  const y = un('exp', x);
  return record(y, 'exp', [x], (g) => [bin('mul', g, y)]);
}

export function log(x: Tensor): Tensor {
  return record(un('log', x), 'log', [x], (g) => [bin('div', g, x)]);
}

export function sqrt(x: Tensor): Tensor {
  const y = un('sqrt', x);
  return record(y, 'sqrt', [x], (g) => [bin('div', g, bin('mul', y, 2))]);
}

export function square(x: Tensor): Tensor {
  return record(un('square', x), 'square', [x], (g) => [bin('mul', g, bin('mul', x, 2))]);
}

export function reciprocal(x: Tensor): Tensor {
  const y = un('reciprocal', x);
  return record(y, 'reciprocal', [x], (g) => [un('neg', bin('mul', g, un('square', y)))]);
}

/** |x|; gradient sign(x) with sign(0) = +1 (a subgradient). */
export function abs(x: Tensor): Tensor {
  return record(un('abs', x), 'abs', [x], (g) => [bin('mul', g, un('sign', x))]);
}

export function tanh(x: Tensor): Tensor {
  const y = un('tanh', x);
  return record(y, 'tanh', [x], (g) => [bin('mul', g, bin('sub', 1, un('square', y)))]);
}

export function relu(x: Tensor): Tensor {
  return record(un('relu', x), 'relu', [x], (g) => [bin('mul', g, bin('greater', x, 0))]);
}

/**
 * sign(x) ∈ {−1, +1} with sign(0) = +1. Its true gradient is 0 everywhere (almost), and that is
 * what this op reports: straight-through estimators live in quantizers (`src/quantizers/`), never here.
 */
export function sign(x: Tensor): Tensor {
  return record(un('sign', x), 'sign', [x], () => [wrap(new Float32Array(x.size), x.shape)]);
}

/** min(max(x, lo), hi); gradient 1 inside [lo, hi], 0 outside. */
export function clamp(x: Tensor, lo: number, hi: number): Tensor {
  if (!(lo <= hi)) fail('clamp', 'lo <= hi', `lo=${lo}, hi=${hi}`);
  const y = wrap(backend().clamp(x.f32('clamp'), lo, hi), x.shape);
  return record(y, 'clamp', [x], (g) => [bin('mul', g, bin('mul', bin('greaterEqual', x, lo), bin('greaterEqual', hi, x)))]);
}

/** Hard tanh: clamp(x, -1, 1). */
export function hardtanh(x: Tensor, lo = -1, hi = 1): Tensor {
  return clamp(x, lo, hi);
}

/** Shape check used by ops that need equal shapes. */
export function expectSameShape(what: string, a: Tensor, b: Tensor): void {
  if (!shapesEqual(a.shape, b.shape)) fail(what, 'tensors of equal shape', `${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
}
