import '../src/index.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Tensor, tensor } from '../src/core/tensor.js';
import { Rng } from '../src/core/rng.js';
import { backward, isRecording, noGrad } from '../src/autograd/tape.js';
import {
  abs, add, clamp, div, equal, exp, greater, greaterEqual, hardtanh, log, maximum, minimum, mul, neg, pow, reciprocal, relu,
  sign, sqrt, square, sub, tanh,
} from '../src/ops/elementwise.js';
import { max, mean, sum } from '../src/ops/reduce.js';
import { flatten, permute, reshape, transpose } from '../src/ops/shape.js';
import { matmul } from '../src/ops/matmul.js';
import { customGrad } from '../src/ops/custom.js';
import { batchNorm } from '../src/ops/norm.js';
import { logSoftmax, softmax } from '../src/ops/activation.js';
import { assertClose, gradcheck, randTensor } from './util/gradcheck.js';

/*
 * Finite-difference gradient checks for every differentiable op of src/ops/{elementwise, reduce,
 * shape, matmul, custom, norm, activation}. gradcheck's default tolerance (eps 1e-2, atol 2e-3,
 * rtol 2e-2) is used throughout; it is never loosened here. Inputs are chosen so that every case
 * can fail: kinks (abs, relu, clamp, max, maximum/minimum) are kept at least 0.05 away from the
 * finite-difference step, and piecewise ops see inputs on both sides of every kink, so a rule that
 * ignored a branch would be caught.
 */

const size = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Values with |v| in [lo, hi] and mixed signs (element 0 negative, element 1 positive). */
function awayFromZero(shape: number[], seed: number, lo = 0.2, hi = 1): Tensor {
  const r = new Rng(seed);
  const n = size(shape);
  return tensor(
    Array.from({ length: n }, (_, i) => {
      const s = i === 0 ? -1 : i === 1 ? 1 : r.next() < 0.5 ? -1 : 1;
      return s * r.uniform(lo, hi);
    }),
    shape,
  );
}

/** Distinct values spaced `step` apart, in shuffled order, centred on 0. */
function distinct(shape: number[], seed: number, step = 0.1): Tensor {
  const n = size(shape);
  const v = new Rng(seed).shuffle(Array.from({ length: n }, (_, i) => (i - (n - 1) / 2) * step));
  return tensor(v, shape);
}

const leaf = (t: Tensor): Tensor => {
  const p = new Tensor(Float32Array.from(t.f32()), t.shape);
  p.requiresGrad = true;
  return p;
};

// ---------------------------------------------------------------------------------------------
// gradcheck itself

test('gradcheck rejects a wrong gradient rule (so the checks below can fail)', () => {
  // d(x²)/dx = 2x; this rule forgets the 2.
  const wrongSquare = (x: Tensor) => customGrad('wrong_square', [x], ([v]) => square(v!), (g, [v]) => [mul(g, v!)]);
  assert.throws(() => gradcheck(wrongSquare, [randTensor([3, 4], 1)]), /autograd .* vs finite difference/);
  // the same op with the right rule passes
  const rightSquare = (x: Tensor) => customGrad('right_square', [x], ([v]) => square(v!), (g, [v]) => [mul(g, mul(v!, 2))]);
  gradcheck(rightSquare, [randTensor([3, 4], 1)]);
  // a matmul gradient with A and B swapped in the rule is caught too
  const wrongMatmul = (a: Tensor, b: Tensor) =>
    customGrad('wrong_mm', [a, b], ([x, y]) => matmul(x!, y!), (g, [x, y]) => [matmul(g, y!, false, true), matmul(g, x!, true, false)]);
  assert.throws(() => gradcheck(wrongMatmul, [randTensor([3, 3], 2), randTensor([3, 3], 3)]), /autograd/);
});

// ---------------------------------------------------------------------------------------------
// binary elementwise ops, same shape and broadcast

test('add/sub/mul: same shape', () => {
  const a = randTensor([3, 4], 1), b = randTensor([3, 4], 2);
  gradcheck(add, [a, b]);
  gradcheck(sub, [a, b]);
  gradcheck(mul, [a, b]);
});

test('div: same shape, denominators away from 0', () => {
  gradcheck(div, [randTensor([3, 4], 1), awayFromZero([3, 4], 2, 0.5, 1.5)]);
});

test('binary ops broadcast [3,1]·[1,4]', () => {
  const a = randTensor([3, 1], 3), b = randTensor([1, 4], 4);
  gradcheck(add, [a, b]);
  gradcheck(sub, [a, b]);
  gradcheck(mul, [a, b]);
  gradcheck(div, [a, awayFromZero([1, 4], 5, 0.5, 1.5)]);
  gradcheck(div, [awayFromZero([3, 1], 5, 0.5, 1.5), tensor([0.7, -0.9, 1.3, -0.6, 1.1], [1, 5])]);
  // no ties: every a differs from every b by >= 0.1 (a step of 0.01 never crosses), each side wins somewhere
  const ma = tensor([0.15, -0.45, 0.85], [3, 1]);
  const mb = tensor([0.0, 0.3, -0.7, 1.1], [1, 4]);
  gradcheck(maximum, [ma, mb]);
  gradcheck(minimum, [ma, mb]);
});

test('binary ops broadcast [2,3,4] with [4] (and [4] with [2,3,4])', () => {
  const a = randTensor([2, 3, 4], 6), b = randTensor([4], 7);
  gradcheck(add, [a, b]);
  gradcheck(add, [b, a]);
  gradcheck(sub, [b, a]);
  gradcheck(mul, [a, b]);
  gradcheck(div, [a, awayFromZero([4], 8, 0.5, 1.5)]);
  gradcheck(div, [b, awayFromZero([2, 3, 4], 9, 0.5, 1.5)]);
});

test('binary ops broadcast over middle and leading dims [2,1,4]·[3,1]', () => {
  gradcheck(mul, [randTensor([2, 1, 4], 10), randTensor([3, 1], 11)]);
  gradcheck(sub, [randTensor([3, 1], 12), randTensor([2, 1, 4], 13)]);
});

test('binary ops with a rank-0 tensor operand (gradient summed to shape [])', () => {
  const x = randTensor([2, 3], 14), s = tensor([0.7], []);
  gradcheck(mul, [x, s]);
  gradcheck(add, [s, x]);
  gradcheck(div, [x, s]);
  gradcheck(div, [s, awayFromZero([2, 3], 15, 0.5, 1.5)]);
});

test('binary ops with plain numbers', () => {
  const x = randTensor([2, 3], 16);
  const nz = awayFromZero([2, 3], 17, 0.5, 1.5);
  gradcheck((t) => add(t, 2), [x]);
  gradcheck((t) => add(-1.5, t), [x]);
  gradcheck((t) => sub(t, 3), [x]);
  gradcheck((t) => sub(3, t), [x]);
  gradcheck((t) => mul(t, 2.5), [x]);
  gradcheck((t) => mul(-0.5, t), [x]);
  gradcheck((t) => div(t, 4), [x]);
  gradcheck((t) => div(2, t), [nz]);
  const d = distinct([2, 3], 18); // values -0.25..0.25 step 0.1: none within 0.05 of 0.02
  gradcheck((t) => maximum(t, 0.02), [d]);
  gradcheck((t) => maximum(0.02, t), [d]);
  gradcheck((t) => minimum(t, 0.02), [d]);
  gradcheck((t) => minimum(0.02, t), [d]);
});

test('maximum/minimum: same shape, no ties', () => {
  const a = distinct([3, 4], 19, 0.2);
  const b = add(a, awayFromZero([3, 4], 20, 0.05, 0.09)).detach(); // |a - b| in [0.05, 0.09], both signs
  gradcheck(maximum, [a, b]);
  gradcheck(minimum, [a, b]);
});

test('pow with constant exponents', () => {
  const x = randTensor([3, 4], 21, 0.5, 2);
  for (const p of [2, 3, 0.5, -1, -2.5, 1.7]) gradcheck((t) => pow(t, p), [x]);
  gradcheck((t) => pow(t, 3), [randTensor([3, 4], 22)]); // integer power of mixed signs
});

// ---------------------------------------------------------------------------------------------
// unary ops

test('neg, exp, tanh, square: any inputs', () => {
  const x = randTensor([3, 4], 23, -2, 2);
  gradcheck(neg, [x]);
  gradcheck(exp, [x]);
  gradcheck(tanh, [x]);
  gradcheck(square, [x]);
});

test('log, sqrt: positive inputs', () => {
  const x = randTensor([3, 4], 24, 0.3, 3);
  gradcheck(log, [x]);
  gradcheck(sqrt, [x]);
});

test('reciprocal, abs, relu: inputs away from 0, both signs', () => {
  gradcheck(reciprocal, [awayFromZero([3, 4], 25, 0.5, 2)]);
  gradcheck(abs, [awayFromZero([3, 4], 26)]);
  gradcheck(relu, [awayFromZero([3, 4], 27)]);
});

test('clamp/hardtanh: inputs below, inside and above the bounds, away from them', () => {
  // bounds ±0.5 (clamp) and ±1 (hardtanh); no value within 0.05 of a bound
  const x = tensor([-1.7, -0.9, -0.6, -0.4, -0.1, 0.0, 0.2, 0.44, 0.56, 0.95, 1.08, 2.3], [3, 4]);
  gradcheck((t) => clamp(t, -0.5, 0.5), [x]);
  gradcheck((t) => clamp(t, -0.2, 1.5), [x]);
  gradcheck((t) => hardtanh(t), [x]);
  gradcheck((t) => hardtanh(t, -0.3, 0.3), [x]);
});

test('sign: forward ±1 with sign(0)=+1, and its gradient is exactly 0 (no STE in the op)', () => {
  const x = leaf(tensor([-2, -0.3, 0, 0.3, 2, -0], [2, 3]));
  const y = sign(x);
  assert.deepEqual(Array.from(y.f32()), [-1, -1, 1, 1, 1, 1]);
  backward(sum(mul(y, tensor([1, 2, 3, 4, 5, 6], [2, 3]))));
  assert.ok(x.grad, 'sign should report its (zero) gradient, not leave x.grad null');
  assert.deepEqual(Array.from(x.grad.f32()), [0, 0, 0, 0, 0, 0]);
  // finite differences agree (away from 0): the true derivative is 0
  gradcheck(sign, [awayFromZero([3, 4], 28)]);
  // and the zero gradient adds to other paths rather than replacing them
  const z = leaf(tensor([0.5, -0.5], [2]));
  backward(sum(add(sign(z), mul(z, 3))));
  assert.deepEqual(Array.from(z.grad!.f32()), [3, 3]);
});

test('comparisons give 1/0 (with broadcasting and numbers) and record nothing', () => {
  const x = leaf(tensor([-1, 0, 1, 2, 2, 3], [2, 3]));
  const b = tensor([1, 2, 0], [3]);
  assert.deepEqual(Array.from(greater(x, b).f32()), [0, 0, 1, 1, 0, 1]);
  assert.deepEqual(Array.from(greaterEqual(x, b).f32()), [0, 0, 1, 1, 1, 1]);
  assert.deepEqual(Array.from(equal(x, b).f32()), [0, 0, 0, 0, 1, 0]);
  assert.deepEqual(Array.from(greater(x, 1).f32()), [0, 0, 0, 1, 1, 1]);
  assert.deepEqual(Array.from(greaterEqual(1, x).f32()), [1, 1, 1, 0, 0, 0]);
  assert.deepEqual(Array.from(equal(2, x).f32()), [0, 0, 0, 1, 1, 0]);
  assert.deepEqual(greater(x, b).shape, [2, 3]);
  assert.equal(greater(x, b).node, null);
  assert.equal(equal(x, 1).node, null);
});

// ---------------------------------------------------------------------------------------------
// reductions

test('sum: all axes, some axes, negative axes, keepDims', () => {
  const x = randTensor([2, 3, 4], 30);
  gradcheck((t) => sum(t), [x]);
  gradcheck((t) => sum(t, undefined, true), [x]);
  gradcheck((t) => sum(t, 1), [x]);
  gradcheck((t) => sum(t, [0, 2]), [x]);
  gradcheck((t) => sum(t, [2, 0], true), [x]);
  gradcheck((t) => sum(t, -1, true), [x]);
  gradcheck((t) => sum(t, []), [x]);
  assert.deepEqual(sum(x, [0, 2]).shape, [3]);
  assert.deepEqual(sum(x, [0, 2], true).shape, [1, 3, 1]);
  assert.deepEqual(sum(x).shape, []);
});

test('mean: all axes, some axes, keepDims', () => {
  const x = randTensor([2, 3, 4], 31);
  gradcheck((t) => mean(t), [x]);
  gradcheck((t) => mean(t, 0), [x]);
  gradcheck((t) => mean(t, [1, 2], true), [x]);
  gradcheck((t) => mean(t, -2), [x]);
  assertClose(mean(x).f32(), [Array.from(x.f32()).reduce((a, b) => a + b, 0) / 24], 1e-6);
});

test('max along an axis (distinct values), keepDims', () => {
  const x = distinct([3, 4, 5], 32);
  for (const axis of [0, 1, 2, -1]) {
    gradcheck((t) => max(t, axis), [x]);
    gradcheck((t) => max(t, axis, true), [x]);
  }
});

// ---------------------------------------------------------------------------------------------
// shape ops

test('reshape, flatten (contiguous and of a permuted view)', () => {
  const x = randTensor([2, 3, 4], 33);
  gradcheck((t) => reshape(t, [6, 4]), [x]);
  gradcheck((t) => reshape(t, [4, -1]), [x]);
  gradcheck((t) => flatten(t), [x]);
  gradcheck((t) => flatten(t, 0), [x]);
  gradcheck((t) => reshape(permute(t, [2, 0, 1]), [4, 6]), [x]);
  gradcheck((t) => flatten(transpose(t)), [x]);
});

test('permute, transpose (non-involutive permutations on a cube, so a wrong inverse is caught)', () => {
  const cube = randTensor([3, 3, 3], 34);
  gradcheck((t) => permute(t, [2, 0, 1]), [cube]);
  gradcheck((t) => permute(t, [1, 2, 0]), [cube]);
  const x = randTensor([2, 3, 4, 5], 35);
  gradcheck((t) => permute(t, [3, 1, 0, 2]), [x]);
  gradcheck((t) => transpose(t), [x]);
  gradcheck((t) => mul(permute(t, [1, 2, 0]), permute(t, [2, 0, 1])), [cube]); // two views of one leaf
});

// ---------------------------------------------------------------------------------------------
// matmul

for (const [transA, transB] of [[false, false], [true, false], [false, true], [true, true]] as const) {
  test(`matmul transA=${transA} transB=${transB}: 5x7·7x3 and other awkward sizes`, () => {
    for (const [m, k, n] of [[5, 7, 3], [1, 6, 4], [4, 1, 2], [3, 5, 1], [6, 9, 5]] as const) {
      const a = randTensor(transA ? [k, m] : [m, k], m * 100 + k);
      const b = randTensor(transB ? [n, k] : [k, n], k * 100 + n + 1);
      gradcheck((x, y) => matmul(x, y, transA, transB), [a, b]);
    }
  });
}

test('matmul of strided views (transpose(), not the flag) and with the same leaf twice', () => {
  const a = randTensor([7, 5], 40), b = randTensor([7, 3], 41);
  gradcheck((x, y) => matmul(transpose(x), y), [a, b]);
  gradcheck((x, y) => matmul(transpose(x), transpose(y), false, true), [a, b]);
  gradcheck((x) => matmul(x, x, true, false), [a]);
});

// ---------------------------------------------------------------------------------------------
// batch norm

test('batchNorm training mode: gradients wrt x, gamma, beta (rank 2 and rank 4)', () => {
  for (const shape of [[6, 3], [2, 3, 2, 2], [3, 2, 5]]) {
    const C = shape[1]!;
    const x = randTensor(shape, 50 + shape.length);
    const gamma = randTensor([C], 60, 0.5, 1.5), beta = randTensor([C], 61);
    gradcheck((t, g, b) => batchNorm(t, g, b, null, true), [x, gamma, beta]);
  }
});

test('batchNorm with a fused residual: BN(x) + r, gradients wrt x, gamma, beta and r; same values as add', () => {
  for (const [shape, training] of [[[6, 3], true], [[2, 3, 2, 2], true], [[2, 3, 2, 2], false]] as const) {
    const C = shape[1]!;
    const x = randTensor([...shape], 80 + shape.length), r = randTensor([...shape], 81);
    const gamma = randTensor([C], 82, 0.5, 1.5), beta = randTensor([C], 83);
    const running = training ? null : { runningMean: randTensor([C], 84), runningVar: randTensor([C], 85, 0.5, 2) };
    gradcheck((t, g, b, rr) => batchNorm(t, g, b, running, training, 0.1, 1e-5, rr), [x, gamma, beta, r]);
    const fused = batchNorm(x, gamma, beta, null, true, 0.1, 1e-5, r).f32();
    const plain = add(batchNorm(x, gamma, beta, null, true), r).f32();
    assert.deepEqual(Array.from(fused), Array.from(plain));
  }
  assert.throws(() => batchNorm(randTensor([2, 3], 1), randTensor([3], 2), randTensor([3], 3), null, true, 0.1, 1e-5, randTensor([2, 2], 4)),
    /batchNorm residual: expected the input's shape \[2,3\], but got shape \[2,2\]/);
});

test('batchNorm eval mode (running statistics): gradients wrt x, gamma, beta', () => {
  for (const shape of [[6, 3], [2, 3, 2, 2]]) {
    const x = randTensor(shape, 70 + shape.length);
    const gamma = randTensor([3], 71, 0.5, 1.5), beta = randTensor([3], 72);
    const running = { runningMean: tensor([0.1, -0.2, 0.3]), runningVar: tensor([0.5, 1.2, 2]) };
    gradcheck((t, g, b) => batchNorm(t, g, b, running, false), [x, gamma, beta]);
    // running statistics are left alone in eval mode
    assert.deepEqual(Array.from(running.runningMean.f32()), Array.from(Float32Array.of(0.1, -0.2, 0.3)));
  }
  // eval mode with no running statistics falls back to batch statistics
  gradcheck((t, g, b) => batchNorm(t, g, b, null, false), [randTensor([4, 3], 73), randTensor([3], 74, 0.5, 1.5), randTensor([3], 75)]);
});

test('batchNorm training mode updates running statistics (momentum, unbiased variance)', () => {
  const x = tensor([1, 10, 2, 20, 3, 30, 6, 40], [4, 2]);
  const running = { runningMean: tensor([1, -1]), runningVar: tensor([2, 3]) };
  batchNorm(x, tensor([1, 1]), tensor([0, 0]), running, true, 0.25);
  // channel 0: mean 3, unbiased var 14/3; channel 1: mean 25, unbiased var 500/3
  assertClose(running.runningMean.f32(), [0.75 * 1 + 0.25 * 3, 0.75 * -1 + 0.25 * 25], 1e-5);
  assertClose(running.runningVar.f32(), [0.75 * 2 + 0.25 * (14 / 3), 0.75 * 3 + 0.25 * (500 / 3)], 1e-4);
});

// ---------------------------------------------------------------------------------------------
// activations

test('logSoftmax and softmax', () => {
  const x = randTensor([4, 5], 80, -2, 2);
  gradcheck(logSoftmax, [x]);
  gradcheck(softmax, [x]);
  gradcheck((t) => softmax(mul(t, 3)), [x]);
  gradcheck(logSoftmax, [randTensor([1, 7], 81, -3, 3)]);
  // softmax of a row sums to 1
  const s = softmax(x).f32();
  for (let r = 0; r < 4; r++) assertClose([s.subarray(r * 5, r * 5 + 5).reduce((a, b) => a + b, 0)], [1], 1e-6);
});

// ---------------------------------------------------------------------------------------------
// customGrad

test('customGrad: autograd returns exactly the supplied rule (even when it is not the true gradient)', () => {
  const x = leaf(tensor([-2, -0.5, 0.25, 3], [2, 2]));
  let seen: { g: number[]; inputs: readonly Tensor[]; out: Tensor } | null = null;
  // forward 2x, supplied backward 3·g·(x + 10): deliberately not d(2x)/dx
  const y = customGrad('scaled', [x], ([v]) => mul(v!, 2), (g, inputs, out) => {
    seen = { g: Array.from(g.f32()), inputs, out };
    return [mul(g, mul(add(inputs[0]!, 10), 3))];
  });
  assert.deepEqual(Array.from(y.f32()), [-4, -1, 0.5, 6]);
  assert.equal(y.node?.op, 'scaled');
  backward(sum(mul(y, tensor([1, 2, 3, 4], [2, 2]))));
  assert.deepEqual(Array.from(x.grad!.f32()), [1 * 3 * 8, 2 * 3 * 9.5, 3 * 3 * 10.25, 4 * 3 * 13]);
  assert.ok(seen, 'backward rule was not called');
  const s = seen as { g: number[]; inputs: readonly Tensor[]; out: Tensor };
  assert.deepEqual(s.g, [1, 2, 3, 4]); // dL/dout handed through unchanged
  assert.deepEqual(Array.from(s.inputs[0]!.f32()), Array.from(x.f32()));
  assert.equal(s.inputs[0]!.requiresGrad, false); // rules see detached inputs
  assert.equal(s.out, y);
});

test('customGrad: a correct rule passes gradcheck; null gradients leave the input alone', () => {
  const mulRule = (a: Tensor, b: Tensor) => customGrad('mul2', [a, b], ([p, q]) => mul(p!, q!), (g, [p, q]) => [mul(g, q!), mul(g, p!)]);
  gradcheck(mulRule, [randTensor([3, 4], 90), randTensor([3, 4], 91)]);
  const cube = (a: Tensor) => customGrad('cube', [a], ([p]) => mul(square(p!), p!), (g, [p]) => [mul(g, mul(square(p!), 3))]);
  gradcheck((a) => tanh(cube(a)), [randTensor([2, 5], 92)]);

  const a = leaf(randTensor([2, 2], 93)), b = leaf(randTensor([2, 2], 94));
  const y = customGrad('only_a', [a, b], ([p, q]) => mul(p!, q!), (g, [, q]) => [mul(g, q!), null]);
  backward(sum(y));
  assertClose(a.grad!.f32(), b.f32(), 0, 0);
  assert.equal(b.grad, null);
});

test('customGrad: a forward that touches a parameter records only the custom node', () => {
  const x = leaf(randTensor([3], 95)), p = leaf(randTensor([3], 96));
  const y = customGrad('closes_over_p', [x], ([v]) => mul(v!, p), (g) => [g]);
  assert.equal(y.node?.op, 'closes_over_p');
  backward(sum(y));
  assert.deepEqual(Array.from(x.grad!.f32()), [1, 1, 1]);
  assert.equal(p.grad, null);
});

// ---------------------------------------------------------------------------------------------
// the tape

test('gradients accumulate when a tensor is used twice (x*x, x+x, diamond)', () => {
  const xv = [-1.5, 0.5, 2, 3];
  const x = leaf(tensor(xv));
  backward(sum(mul(x, x)));
  assert.deepEqual(Array.from(x.grad!.f32()), xv.map((v) => 2 * v));

  const y = leaf(tensor(xv));
  backward(sum(add(y, y)));
  assert.deepEqual(Array.from(y.grad!.f32()), [2, 2, 2, 2]);

  // a second backward adds to .grad
  backward(sum(mul(y, 3)));
  assert.deepEqual(Array.from(y.grad!.f32()), [5, 5, 5, 5]);

  // diamond: e = exp(x) feeds two branches that meet again
  gradcheck((t) => { const e = exp(t); return add(mul(e, t), tanh(e)); }, [randTensor([3, 3], 97)]);
  gradcheck((t) => mul(t, t), [randTensor([3, 3], 98)]);
});

test('noGrad records nothing and restores recording (also on throw)', () => {
  const x = leaf(randTensor([2, 3], 99));
  assert.equal(isRecording(), true);
  const y = noGrad(() => {
    assert.equal(isRecording(), false);
    return sum(mul(exp(x), x));
  });
  assert.equal(y.node, null);
  assert.equal(isRecording(), true);
  assert.throws(() => backward(y), /backward: expected a tensor that depends on a parameter/);
  assert.throws(() => noGrad(() => { throw new Error('boom'); }), /boom/);
  assert.equal(isRecording(), true);
  // outside noGrad the same expression records
  assert.notEqual(sum(mul(exp(x), x)).node, null);
});

test('backward on a non-scalar without an explicit gradient throws a clear error', () => {
  const x = leaf(randTensor([2, 3], 100));
  const y = mul(x, 2);
  assert.throws(() => backward(y), (e: unknown) => e instanceof Error && /backward: expected a scalar loss.*but got shape \[2,3\]/.test(e.message));
  // with an explicit gradient it works
  backward(y, tensor([1, 2, 3, 4, 5, 6], [2, 3]));
  assert.deepEqual(Array.from(x.grad!.f32()), [2, 4, 6, 8, 10, 12]);
  // an explicit gradient of the wrong shape (even of the right size) is rejected, not misapplied
  assert.throws(() => backward(mul(x, 2), tensor([1, 2, 3, 4, 5, 6], [3, 2])), /backward: expected a gradient .*\[2,3\].*but got shape \[3,2\]/);
  assert.throws(() => backward(mul(x, 2), tensor([1, 2, 3], [3])), /backward: expected a gradient .*\[2,3\].*but got shape \[3\]/);
});

test('leaf .grad owns its storage (never aliases the seed, another leaf or a view)', () => {
  const x = leaf(randTensor([2, 3], 101)), y = leaf(randTensor([2, 3], 102)), z = leaf(randTensor([6], 103));
  const seed = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
  backward(add(add(x, y), reshape(z, [2, 3])), seed); // add passes g through unchanged; reshape's rule is a view
  assert.notEqual(x.grad, y.grad);
  assert.notEqual(x.grad!.storage, seed.storage);
  assert.notEqual(y.grad!.storage, seed.storage);
  assert.notEqual(z.grad!.storage, seed.storage);
  (x.grad!.storage as Float32Array).fill(0); // an in-place optimizer update on one gradient ...
  assert.deepEqual(Array.from(y.grad!.f32()), [1, 2, 3, 4, 5, 6]); // ... leaves the others alone
  assert.deepEqual(Array.from(z.grad!.f32()), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(Array.from(seed.f32()), [1, 2, 3, 4, 5, 6]);
  // a custom rule that hands back its (detached) input must not make .grad alias the parameter's data
  const p = leaf(tensor([1, 2, 3]));
  backward(sum(customGrad('id_grad', [p], ([v]) => mul(v!, 1), (_g, [v]) => [v!])));
  assert.notEqual(p.grad!.storage, p.storage);
});

// ---------------------------------------------------------------------------------------------
// error messages

function throwsWith(fn: () => unknown, ...parts: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof Error, `not an Error: ${String(e)}`);
    assert.match(e.message, /expected/);
    for (const p of parts) assert.ok(e.message.includes(p), `message "${e.message}" lacks "${p}"`);
    return true;
  });
}

test('errors: mismatched shapes, inner-dim mismatch, wrong reshape size, non-permutation', () => {
  throwsWith(() => add(randTensor([2, 3]), randTensor([4])), '[2,3]', '[4]');
  throwsWith(() => mul(randTensor([2, 3, 4]), randTensor([3, 1, 5])), '[2,3,4]', '[3,1,5]');
  throwsWith(() => matmul(randTensor([2, 3]), randTensor([4, 5])), '[2,3]', '[4,5]');
  throwsWith(() => matmul(randTensor([2, 3]), randTensor([2, 5]), true, true), '[2,3]', '[2,5]');
  throwsWith(() => matmul(randTensor([2, 3, 1]), randTensor([3, 5])), '[2,3,1]', '[3,5]');
  throwsWith(() => reshape(randTensor([2, 3]), [4]), '[2,3]', '[4]');
  throwsWith(() => reshape(randTensor([2, 3]), [4, -1]), '[2,3]', '[4,-1]');
  throwsWith(() => reshape(randTensor([2, 3]), [-1, -1]), '[2,3]', '[-1,-1]');
  throwsWith(() => permute(randTensor([2, 3, 4]), [0, 0, 1]), '[2,3,4]', '[0,0,1]');
  throwsWith(() => permute(randTensor([2, 3, 4]), [1, 0]), '[2,3,4]', '[1,0]');
  throwsWith(() => permute(randTensor([2, 3]), [0, 2]), '[2,3]', '[0,2]');
});
