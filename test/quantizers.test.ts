import '../src/index.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Tensor, tensor } from '../src/core/tensor.js';
import { backward } from '../src/autograd/tape.js';
import { mul } from '../src/ops/elementwise.js';
import { sum } from '../src/ops/reduce.js';
import { createQuantizer, quantizerAliases } from '../src/quantizers/index.js';
import { randTensor } from './util/gradcheck.js';

function leaf(t: Tensor): Tensor {
  const p = new Tensor(Float32Array.from(t.f32()), t.shape);
  p.requiresGrad = true;
  return p;
}

/** dL/dx of L = Σ q(x)·w for a quantizer q. */
function gradOf(alias: string, x: Tensor, w: Tensor): Float32Array {
  const xl = leaf(x);
  backward(sum(mul(createQuantizer(alias).apply(xl), w)));
  return xl.grad!.f32();
}

// Shared suite: every registered quantizer.
for (const alias of quantizerAliases()) {
  test(`${alias}: config round trip, exact zeros, output value set`, () => {
    const q = createQuantizer(alias);
    assert.equal(q.alias, alias);
    const q2 = createQuantizer(JSON.parse(JSON.stringify(q.config())));
    assert.deepEqual(q2.config(), q.config());
    const x = randTensor([4, 6], 3, -2, 2);
    assert.deepEqual(Array.from(q2.apply(x).f32()), Array.from(q.apply(x).f32()));
    // zeros map to +1 (times the scale, if any), never to 0
    const z = q.apply(new Tensor(new Float32Array(6), [2, 3])).f32();
    assert.ok(z.every((v) => v >= 0), `zeros quantized to ${Array.from(z)}`);
    // 1-bit: at most two distinct magnitudes ±s per output channel (row)
    const y = q.apply(x).f32();
    for (let r = 0; r < 4; r++) {
      const row = new Set(Array.from(y.subarray(r * 6, r * 6 + 6)).map(Math.abs));
      assert.equal(row.size, 1, `row ${r}: ${[...row]}`);
    }
    assert.equal(q.precision, 1);
  });
}

test('unknown quantizer alias: one error listing the valid ones', () => {
  assert.throws(() => createQuantizer('nope'), /quantizer: expected one of ste_sign, xnor_sign, but got "nope"/);
});

test('ste_sign: forward sign with sign(0)=+1; gradient 1[|x|<=1] (closed form)', () => {
  const x = tensor([-2, -1, -0.5, 0, 0.5, 1, 1.5]);
  assert.deepEqual(Array.from(createQuantizer('ste_sign').apply(x).f32()), [-1, -1, -1, 1, 1, 1, 1]);
  const w = tensor([1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(Array.from(gradOf('ste_sign', x, w), (v) => v + 0), [0, 2, 3, 4, 5, 6, 0]);
  const wide = createQuantizer({ alias: 'ste_sign', clipValue: 2 });
  const xl = leaf(x);
  backward(sum(mul(wide.apply(xl), w)));
  assert.deepEqual(Array.from(xl.grad!.f32()), [1, 2, 3, 4, 5, 6, 7]);
});

test('xnor_sign: α = per-channel mean|W| (detached), gradient clipped STE', () => {
  const w = tensor([0.5, -1.5, 1.0, -0.2, 0.4, 0.6], [2, 3]);
  const y = createQuantizer('xnor_sign').apply(w).f32();
  const a0 = (0.5 + 1.5 + 1.0) / 3, a1 = (0.2 + 0.4 + 0.6) / 3;
  const expect = [a0, -a0, a0, -a1, a1, a1];
  y.forEach((v, i) => assert.ok(Math.abs(v - expect[i]!) < 1e-6));
  const g = gradOf('xnor_sign', w, tensor([1, 2, 3, 4, 5, 6], [2, 3]));
  assert.deepEqual(Array.from(g, (v) => v + 0), [1, 0, 3, 4, 5, 6]);
});
