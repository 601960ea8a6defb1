import '../src/index.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Tensor } from '../src/core/tensor.js';
import { backward, fresh } from '../src/autograd/tape.js';
import { add, mul } from '../src/ops/elementwise.js';
import { sum } from '../src/ops/reduce.js';
import { customGrad } from '../src/ops/custom.js';

// the tape's in-place accumulation into fresh gradient arrays (autograd/tape.ts `fresh`)

test('backward adds into fresh gradient arrays in place, never into ones a rule handed on (aliasing)', () => {
  const scaleBy = (k: number, t: Tensor) =>
    customGrad(`x${k}`, [t], ([v]) => mul(v!, k), (g) => [fresh(new Tensor(g.f32().map((e) => e * k), g.shape))]);
  // One rule returning the same fresh array for two inputs: neither may be written in place.
  const dup = (a: Tensor, b: Tensor) =>
    customGrad('dup', [a, b], ([u, v]) => add(u!, v!), (g) => {
      const t = fresh(new Tensor(Float32Array.from(g.f32()), g.shape));
      return [t, t];
    });
  const x = new Tensor(Float32Array.of(1, -2, 3), [3]);
  x.requiresGrad = true;
  const y = new Tensor(Float32Array.of(0.5, 0.25, 4), [3]);
  y.requiresGrad = true;
  // w = 2·(3x + x) + dup(x, y) + 5y: dw/dx = 8 + 1 = 9, dw/dy = 1 + 5 = 6
  const v = add(scaleBy(3, x), x);
  const w = add(add(add(v, v), dup(x, y)), scaleBy(5, y));
  backward(sum(w));
  assert.deepEqual(Array.from(x.grad!.f32()), [9, 9, 9]);
  assert.deepEqual(Array.from(y.grad!.f32()), [6, 6, 6]);
  // The same graph twice with the leaves' grads accumulated: 18 and 12, and the first grads were not aliased.
  const gx = x.grad!;
  backward(sum(add(add(add(v, v), dup(x, y)), scaleBy(5, y))));
  assert.deepEqual(Array.from(gx.f32()), [9, 9, 9], 'the first .grad array was replaced, not written into');
  assert.deepEqual(Array.from(x.grad!.f32()), [18, 18, 18]);
  assert.deepEqual(Array.from(y.grad!.f32()), [12, 12, 12]);
});
