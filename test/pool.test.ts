import '../src/index.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Pool2dParams } from '../src/core/backend.js';
import { OnebitError } from '../src/core/errors.js';
import { Rng } from '../src/core/rng.js';
import { backend, tensor, Tensor } from '../src/core/tensor.js';
import { avgPool2d, globalAvgPool2d, maxPool2d } from '../src/ops/pool.js';
import { mean, sum } from '../src/ops/reduce.js';
import { mul } from '../src/ops/elementwise.js';
import { backward } from '../src/autograd/tape.js';
import { assertClose, gradcheck, randTensor } from './util/gradcheck.js';

/** Distinct values 0.1 apart in shuffled order, so a ±eps perturbation never changes an argmax. */
function distinctTensor(shape: number[], seed: number): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = Array.from({ length: n }, (_, i) => (i - n / 2) * 0.1);
  const r = new Rng(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = r.int(i + 1);
    [v[i], v[j]] = [v[j]!, v[i]!];
  }
  return tensor(v, shape);
}

/** Direct pooling oracle: for each window, the in-image cells (padding excluded). */
function directPool(x: Float32Array, shape: number[], p: Pool2dParams, mode: 'max' | 'avg'): { y: number[]; arg: number[] } {
  const [N, C, H, W] = shape as [number, number, number, number];
  const [kh, kw] = p.kernel, [sh, sw] = p.stride, [ph, pw] = p.padding;
  const Ho = Math.floor((H + 2 * ph - kh) / sh) + 1, Wo = Math.floor((W + 2 * pw - kw) / sw) + 1;
  const y: number[] = [], arg: number[] = [];
  for (let nc = 0; nc < N * C; nc++)
    for (let oh = 0; oh < Ho; oh++)
      for (let ow = 0; ow < Wo; ow++) {
        let best = -Infinity, at = -1, sum = 0, count = 0;
        for (let i = 0; i < kh; i++)
          for (let j = 0; j < kw; j++) {
            const h = oh * sh - ph + i, w = ow * sw - pw + j;
            if (h < 0 || h >= H || w < 0 || w >= W) continue;
            const idx = (nc * H + h) * W + w;
            if (x[idx]! > best) [best, at] = [x[idx]!, idx];
            sum += x[idx]!;
            count++;
          }
        y.push(mode === 'max' ? best : sum / count);
        arg.push(at);
      }
  return { y, arg };
}

const P = (k: [number, number], s: [number, number], p: [number, number]): Pool2dParams => ({ kernel: k, stride: s, padding: p });

const KERNEL_CASES: { shape: number[]; p: Pool2dParams }[] = [
  { shape: [2, 3, 8, 8], p: P([2, 2], [2, 2], [0, 0]) },
  { shape: [1, 5, 7, 5], p: P([3, 3], [2, 2], [1, 1]) },
  { shape: [2, 33, 9, 9], p: P([3, 3], [1, 1], [1, 1]) },
  { shape: [1, 2, 7, 6], p: P([3, 2], [2, 1], [1, 1]) },
  { shape: [1, 4, 5, 5], p: P([5, 5], [1, 1], [2, 2]) },
  { shape: [1, 1, 9, 7], p: P([4, 3], [3, 2], [2, 0]) },
];

test('pool kernels match direct loops (max with argmax, avg with count_include_pad=false)', () => {
  KERNEL_CASES.forEach(({ shape, p }, i) => {
    const x = randTensor(shape, 40 + i).f32();
    const mx = backend().maxPool2d(x, shape, p);
    const want = directPool(x, shape, p, 'max');
    assertClose(mx.y, want.y, 0, 0, `max ${JSON.stringify(p)}`);
    assert.deepEqual(Array.from(mx.argmax), want.arg);
    assertClose(backend().avgPool2d(x, shape, p), directPool(x, shape, p, 'avg').y, 1e-6, 1e-6, `avg ${JSON.stringify(p)}`);
  });
});

test('maxPool2d: padding is -inf, never chosen, even when every value is negative', () => {
  const x = tensor([-5, -4, -3, -2, -1, -6, -7, -8, -9], [1, 1, 3, 3]);
  const y = maxPool2d(x, 2, 1, 1);
  assert.deepEqual(y.shape, [1, 1, 4, 4]);
  assert.deepEqual(Array.from(y.f32()), [-5, -4, -3, -3, -2, -1, -1, -3, -2, -1, -1, -6, -7, -7, -8, -9]);
});

test('maxPool2d default stride equals the kernel', () => {
  const x = tensor(Array.from({ length: 16 }, (_, i) => i), [1, 1, 4, 4]);
  const y = maxPool2d(x, 2);
  assert.deepEqual(y.shape, [1, 1, 2, 2]);
  assert.deepEqual(Array.from(y.f32()), [5, 7, 13, 15]);
});

test('avgPool2d excludes padding from the divisor', () => {
  const ones = tensor(new Array(2 * 3 * 5 * 4).fill(1), [2, 3, 5, 4]);
  const y = avgPool2d(ones, 3, 2, 1);
  assert.deepEqual(y.shape, [2, 3, 3, 2]);
  assert.ok(Array.from(y.f32()).every((v) => Math.abs(v - 1) < 1e-7));
  const x = tensor([1, 2, 3, 4], [1, 1, 2, 2]);
  // Corner window of a 2x2 kernel with padding 1 holds only x[0,0].
  assert.deepEqual(Array.from(avgPool2d(x, 2, 1, 1).f32()), [1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4]);
});

// ---- gradients ----

const MAX_CASES: { what: string; shape: number[]; k: number | [number, number]; s?: number | [number, number]; p?: number | [number, number] }[] = [
  { what: '2x2', shape: [2, 2, 6, 6], k: 2 },
  { what: '3x3 stride 2 padding 1 (overlapping windows)', shape: [1, 3, 7, 5], k: 3, s: 2, p: 1 },
  { what: '3x2 stride 1', shape: [1, 2, 5, 5], k: [3, 2], s: 1 },
  { what: '2x3 stride (1,2) padding (1,1)', shape: [2, 1, 5, 7], k: [2, 3], s: [1, 2], p: [1, 1] },
];

for (const c of MAX_CASES) {
  test(`maxPool2d gradient: ${c.what}`, () => {
    gradcheck((x) => maxPool2d(x, c.k, c.s, c.p), [distinctTensor(c.shape, 7)]);
  });
}

const AVG_CASES: typeof MAX_CASES = [
  { what: '2x2 no padding', shape: [2, 2, 6, 6], k: 2 },
  { what: '3x3 stride 2 no padding', shape: [1, 3, 7, 7], k: 3, s: 2 },
  { what: '3x3 stride 2 padding 1', shape: [1, 3, 7, 5], k: 3, s: 2, p: 1 },
  { what: '3x2 stride 1 padding (1,1)', shape: [2, 2, 5, 4], k: [3, 2], s: 1, p: [1, 1] },
  { what: '4x4 stride 3 padding 2', shape: [1, 2, 8, 9], k: 4, s: 3, p: 2 },
];

for (const c of AVG_CASES) {
  test(`avgPool2d gradient: ${c.what}`, () => {
    gradcheck((x) => avgPool2d(x, c.k, c.s, c.p), [randTensor(c.shape, 8)]);
  });
}

test('globalAvgPool2d: [N,C,H,W] -> [N,C] means, with gradient', () => {
  const x = randTensor([3, 4, 5, 3], 9);
  const y = globalAvgPool2d(x);
  assert.deepEqual(y.shape, [3, 4]);
  const xd = x.f32();
  const want = Array.from({ length: 12 }, (_, nc) => xd.subarray(nc * 15, nc * 15 + 15).reduce((a, b) => a + b, 0) / 15);
  assertClose(y.f32(), want, 1e-6);
  gradcheck((xx) => globalAvgPool2d(xx), [x]);
});

// ---- errors ----

function throwsWith(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof OnebitError, `expected an OnebitError, got ${String(e)}`);
    assert.match(e.message, pattern);
    return true;
  });
}

test('pooling rejects bad input with clear messages', () => {
  throwsWith(() => maxPool2d(randTensor([3, 8, 8], 1), 2), /^maxPool2d: expected input of rank 4 \[N,C,H,W\], but got rank 3 \(shape \[3,8,8\]\)\. Add a batch dimension\.$/);
  throwsWith(() => avgPool2d(randTensor([4, 64], 1), 2), /avgPool2d: expected input of rank 4.*rank 2/);
  throwsWith(() => globalAvgPool2d(randTensor([2, 3, 4], 1)), /globalAvgPool2d: expected input of rank 4/);
  throwsWith(() => maxPool2d(randTensor([1, 1, 2, 2], 1), 3), /maxPool2d: expected a spatial size of at least 3x3 .*but got 2x2/);
  throwsWith(() => avgPool2d(randTensor([1, 1, 4, 4], 1), 2, 1, 2), /avgPool2d: expected padding at most half the kernel/);
  throwsWith(() => maxPool2d(randTensor([1, 1, 4, 4], 1), 0), /maxPool2d: expected kernel as a positive integer/);
  throwsWith(() => maxPool2d(randTensor([1, 1, 4, 4], 1), 2, [1, 0]), /maxPool2d: expected stride as a positive integer/);
  throwsWith(() => avgPool2d(randTensor([1, 1, 4, 4], 1), 2.5), /avgPool2d: expected kernel/);
  throwsWith(() => globalAvgPool2d(randTensor([1, 1, 0, 4], 1)), /globalAvgPool2d: expected a non-empty spatial size/);
});

test('mean / global average pool gradient: exactly fround(g / count) spread over the reduced axes (trailing and not)', () => {
  const cases: [number[], number[]][] = [[[2, 3, 4, 5], [2, 3]], [[2, 3, 4, 5], [1]], [[3, 1, 2], [2]], [[2, 3, 4], [0, 2]], [[4, 6], [0, 1]]];
  for (const [shape, axes] of cases) {
    const x = randTensor(shape, 11);
    x.requiresGrad = true;
    const m = mean(x, axes, true);
    const g = randTensor([...m.shape], 12);
    backward(sum(mul(m, g)));
    const count = axes.reduce((n, a) => n * shape[a]!, 1);
    const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
    const keptStrides = m.shape.map((_, i) => m.shape.slice(i + 1).reduce((a, b) => a * b, 1));
    const gv = g.f32(), dx = x.grad!.f32();
    for (let i = 0; i < dx.length; i++) {
      let k = 0;
      shape.forEach((_, d) => {
        const idx = Math.floor(i / strides[d]!) % shape[d]!;
        if (!axes.includes(d)) k += idx * keptStrides[d]!;
      });
      assert.equal(dx[i], Math.fround(gv[k]! / count), `mean over ${axes} of [${shape}] at ${i}`);
    }
  }
  const x = randTensor([2, 3, 4, 4], 13);
  x.requiresGrad = true;
  backward(sum(globalAvgPool2d(x)));
  assert.ok(x.grad!.f32().every((v) => v === Math.fround(1 / 16)));
});
