import '../src/index.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tensor } from '../src/core/tensor.js';
import { crossEntropy, distillationLoss } from '../src/nn/losses.js';
import { gradcheck, randTensor } from './util/gradcheck.js';

test('crossEntropy: matches the hand-computed value, with and without label smoothing', () => {
  const z = tensor([1, 2, 3, 0, 0, 0], [2, 3]);
  const lse0 = Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3));
  const l0 = lse0 - 3, l1 = Math.log(3);
  assert.ok(Math.abs(crossEntropy(z, Int32Array.of(2, 0)).item() - (l0 + l1) / 2) < 1e-6);
  const eps = 0.1;
  const ls = (row: number[], y: number) => {
    const lse = Math.log(row.reduce((s, v) => s + Math.exp(v), 0));
    return row.reduce((s, v, c) => s - ((c === y ? 1 - eps : 0) + eps / 3) * (v - lse), 0);
  };
  const expect = (ls([1, 2, 3], 2) + ls([0, 0, 0], 0)) / 2;
  assert.ok(Math.abs(crossEntropy(z, Int32Array.of(2, 0), { labelSmoothing: eps }).item() - expect) < 1e-6);
});

test('crossEntropy: gradient check and input errors', () => {
  const y = Int32Array.of(1, 0, 3);
  gradcheck((z) => crossEntropy(z!, y, { labelSmoothing: 0.1 }), [randTensor([3, 4], 2, -2, 2)]);
  assert.throws(() => crossEntropy(randTensor([3, 4]), Int32Array.of(0, 1)), /expected 3 labels/);
  assert.throws(() => crossEntropy(randTensor([2, 4]), Int32Array.of(0, 4)), /labels in \[0, 3\], but got 4 at row 1/);
});

test('distillationLoss: value, zero-gradient at teacher = student distribution, gradient check', () => {
  const s = tensor([1, 0, -1, 0.5, 0.5, 0], [2, 3]);
  const t = tensor([2, 1, 0, 0, 0, 1], [2, 3]);
  const sm = (r: number[]) => { const e = r.map(Math.exp); const z = e.reduce((a, b) => a + b); return e.map((v) => v / z); };
  const lsm = (r: number[]) => { const z = Math.log(r.map(Math.exp).reduce((a, b) => a + b)); return r.map((v) => v - z); };
  const rows: [number[], number[]][] = [[[1, 0, -1], [2, 1, 0]], [[0.5, 0.5, 0], [0, 0, 1]]];
  const expect = rows.reduce((acc, [a, b]) => acc - sm(b).reduce((q, p, c) => q + p * lsm(a)[c]!, 0), 0) / 2;
  assert.ok(Math.abs(distillationLoss(s, t).item() - expect) < 1e-6);
  gradcheck((x) => distillationLoss(x!, t, { temperature: 2 }), [s]);
  assert.throws(() => distillationLoss(s, randTensor([2, 4])), /same shape/);
});
