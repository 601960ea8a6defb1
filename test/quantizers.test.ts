import '../src/index.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Tensor, tensor } from '../src/core/tensor.js';
import { backward } from '../src/autograd/tape.js';
import { mul } from '../src/ops/elementwise.js';
import { sum } from '../src/ops/reduce.js';
import { createQuantizer, quantizerAliases, quantizerRoles } from '../src/quantizers/index.js';
import { randTensor } from './util/gradcheck.js';

function leaf(t: Tensor): Tensor {
  const p = new Tensor(Float32Array.from(t.f32()), t.shape);
  p.requiresGrad = true;
  return p;
}

/** dL/dx of L = Σ q(x)·w for a quantizer q. */
function gradOf(alias: string, x: Tensor, w: Tensor): Float32Array {
  const xl = leaf(x);
  backward(sum(mul(createQuantizer(alias, { role: 'kernel', channels: x.shape[0]! }).apply(xl), w)));
  return xl.grad!.f32();
}

// Shared suite: every registered quantizer, in every role it supports.
// Kernel role: W [4 output channels, 6]; input role: x [3 examples, 4 channels].
for (const alias of quantizerAliases()) {
  for (const role of quantizerRoles(alias)) {
    const shape = role === 'kernel' ? [4, 6] : [3, 4];
    const channelAxis = role === 'kernel' ? 0 : 1;
    const n = shape[0]! * shape[1]!;
    const ctx = { role, channels: 4 } as const;
    test(`${alias} (${role}): config round trip, exact zeros, output value set`, () => {
      const q = createQuantizer(alias, ctx);
      assert.equal(q.alias, alias);
      const q2 = createQuantizer(JSON.parse(JSON.stringify(q.config())), ctx);
      assert.deepEqual(q2.config(), q.config());
      q2.loadStateDict(q.stateDict()); // learnable state (if any) copied: outputs must then agree
      const x = randTensor(shape, 3, -2, 2);
      assert.deepEqual(Array.from(q2.apply(x).f32()), Array.from(q.apply(x).f32()));
      // exact zeros: finite outputs, one value per channel for 1-bit quantizers (never a third "0" level)
      const z = q.apply(new Tensor(new Float32Array(n), shape)).f32();
      assert.ok(z.every(Number.isFinite), `zeros quantized to ${Array.from(z)}`);
      // output value set: at most 2^precision distinct values per channel
      const y = q.apply(x).f32();
      for (let c = 0; c < 4; c++) {
        const vals = new Set<number>(), zs = new Set<number>();
        for (let i = 0; i < n; i++) {
          const ch = channelAxis === 0 ? Math.floor(i / 6) : i % 4;
          if (ch === c) {
            vals.add(y[i]!);
            zs.add(z[i]!);
          }
        }
        assert.ok(vals.size <= 2 ** q.precision, `channel ${c}: ${[...vals]}`);
        if (q.precision === 1) assert.equal(zs.size, 1, `zeros of channel ${c}: ${[...zs]}`);
      }
    });
  }
}

test('unknown quantizer alias or wrong role: one error listing the valid ones', () => {
  assert.throws(() => createQuantizer('nope'), /quantizer: expected one of ste_sign, xnor_sign.*, but got "nope"/);
  assert.throws(() => createQuantizer('xnor_sign', { role: 'input', channels: 3 }), /xnor_sign: expected use as kernel quantizer, but got use as input quantizer/);
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
  const y = createQuantizer('xnor_sign', { role: 'kernel', channels: 2 }).apply(w).f32();
  const a0 = (0.5 + 1.5 + 1.0) / 3, a1 = (0.2 + 0.4 + 0.6) / 3;
  const expect = [a0, -a0, a0, -a1, a1, a1];
  y.forEach((v, i) => assert.ok(Math.abs(v - expect[i]!) < 1e-6));
  const g = gradOf('xnor_sign', w, tensor([1, 2, 3, 4, 5, 6], [2, 3]));
  assert.deepEqual(Array.from(g, (v) => v + 0), [1, 0, 3, 4, 5, 6]);
});
