import './util/poison_outputs.js';
import '../src/index.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backend, Tensor } from '../src/core/tensor.js';
import { clearRecyclePool, recycling } from '../src/core/recycle.js';
import { outputF32, poolStats } from '../src/backends/native/alloc.js';
import { backward } from '../src/autograd/tape.js';
import { manualSeed } from '../src/core/rng.js';
import { Rng } from '../src/core/rng.js';
import { resnet20 } from '../src/models/resnet20.js';
import { methodNames, methodPreset } from '../src/models/methods.js';
import { crossEntropy } from '../src/nn/losses.js';
import { SGD } from '../src/optim/sgd.js';
import { Adam } from '../src/optim/adam.js';
import { persistentTensors, train } from '../src/train/trainer.js';
import type { TrainConfig } from '../src/train/config.js';

/*
 * Recycling of large kernel outputs across training steps (core/recycle.ts, native alloc.ts).
 * poison_outputs is imported first: recycled arrays are NaN-filled when their scope ends and again
 * when handed out, so an array used after its step (a missing `keep`) shows up as NaN or different
 * bits, not as a plausible stale value.
 */
const native = backend().recycler !== undefined;
const skip = native ? false : 'the active backend has no recycler (native addon not built)';
const N = 1 << 14; // above outputF32's pooling threshold

function withEnv<T>(name: string, value: string | undefined, fn: () => T): T {
  const prev = process.env[name];
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
  try {
    return fn();
  } finally {
    if (prev === undefined) delete process.env[name];
    else process.env[name] = prev;
  }
}

test('recycling: arrays not kept are reused by the next scope and poisoned in between; kept ones are not', { skip }, () => {
  clearRecyclePool();
  let a!: Float32Array, b!: Float32Array;
  const kept = recycling(
    () => [],
    () => {
      a = outputF32(N).fill(1);
      b = outputF32(N).fill(2);
      return new Tensor(b, [N]);
    },
  );
  assert.equal(kept.storage, b);
  assert.equal(poolStats().arrays, 1);
  assert.ok(Number.isNaN(a[0]!) && Number.isNaN(a[N - 1]!), 'the recycled array is poisoned');
  assert.equal(b[0], 2, 'the returned tensor keeps its data');
  // A small array is never pooled; the next large one of the same length is `a` again.
  let again: Float32Array[] = [];
  recycling(() => [], () => {
    again = [outputF32(N), outputF32(N), outputF32(16)];
    return 0; // (returned arrays would be kept)
  });
  assert.equal(again[0], a);
  assert.notEqual(again[1], b);
  assert.equal(poolStats().arrays, 2);
  // `keep` by tensor (with its gradient) and by array.
  let p!: Float32Array, g!: Float32Array, q!: Float32Array;
  recycling(
    () => {
      const t = new Tensor(p, [N]);
      t.grad = new Tensor(g, [N]);
      return [t, q, null];
    },
    () => {
      p = outputF32(N).fill(5);
      g = outputF32(N).fill(5);
      q = outputF32(N).fill(5);
      outputF32(N);
      return 0;
    },
  );
  assert.equal(poolStats().arrays, 1);
  for (const x of [p, g, q]) assert.equal(x[N - 1], 5, 'a kept array keeps its data');
  // A returned Float32Array is kept too (it takes the pooled array, which stays out of the pool).
  const arr = recycling(() => [], () => outputF32(N).fill(6));
  assert.equal(arr[N - 1], 6);
  assert.equal(poolStats().arrays, 0);
  assert.notEqual(recycling(() => [], () => [outputF32(N)])[0], arr);
  clearRecyclePool();
  assert.deepEqual(poolStats(), { arrays: 0, bytes: 0 });
});

test('recycling: a throwing scope recycles nothing; nested scopes belong to the outer one; ONEBIT_RECYCLE=0 is off', { skip }, () => {
  clearRecyclePool();
  let a!: Float32Array;
  assert.throws(() => recycling(() => [], () => {
    a = outputF32(N).fill(3);
    throw new Error('boom');
  }), /boom/);
  assert.equal(poolStats().arrays, 0);
  assert.equal(a[0], 3);
  recycling(() => [], () => {
    const inner = recycling(() => [], () => outputF32(N).fill(4));
    assert.equal(poolStats().arrays, 0, 'the inner scope returned nothing to the pool');
    assert.equal(inner[0], 4);
    return 0;
  });
  assert.equal(poolStats().arrays, 1);
  clearRecyclePool();
  withEnv('ONEBIT_RECYCLE', '0', () => recycling(() => [], () => outputF32(N)));
  assert.equal(poolStats().arrays, 0);
});

/** `steps` ResNet-20 steps (batch 4) of a method preset; the final parameters and buffers, and the losses. */
function resnetSteps(method: string, steps: number, optim: 'sgd' | 'adam'): { params: Float32Array[]; losses: number[]; pooled: number } {
  clearRecyclePool();
  manualSeed(3);
  const model = resnet20(methodPreset(method));
  const opt = optim === 'sgd' ? new SGD(model.parameters(), { lr: 0.1, momentum: 0.9 }) : new Adam(model.parameters(), { lr: 1e-3 });
  const r = new Rng(4);
  const x = new Tensor(Float32Array.from({ length: 4 * 3 * 32 * 32 }, () => r.normal()), [4, 3, 32, 32]);
  const y = Int32Array.from({ length: 4 }, () => r.int(10));
  const losses: number[] = [];
  let pooled = 0;
  for (let i = 0; i < steps; i++) {
    losses.push(recycling(() => persistentTensors(model), () => {
      const loss = crossEntropy(model.forward(x), y);
      backward(loss);
      opt.step();
      // Every other step the gradients accumulate into the next one: they outlive the scope (keep).
      if (i % 2) opt.zeroGrad();
      for (const [, m] of model.namedModules()) m.afterStep();
      return loss.item();
    }));
    pooled = Math.max(pooled, poolStats().arrays);
  }
  const params = model.parameters().map((p) => Float32Array.from(p.f32()));
  for (const [, b] of model.namedBuffers()) params.push(Float32Array.from(b.f32()));
  clearRecyclePool();
  return { params, losses, pooled };
}

for (const method of methodNames()) {
  test(`recycling: ResNet-20 ${method} steps give the same bits with and without recycling`, { skip }, () => {
    const optim = method.length % 2 ? 'sgd' : 'adam'; // both optimizers, over the presets
    const off = withEnv('ONEBIT_RECYCLE', '0', () => resnetSteps(method, 3, optim));
    const on = withEnv('ONEBIT_RECYCLE', undefined, () => resnetSteps(method, 3, optim));
    assert.equal(off.pooled, 0);
    assert.ok(on.pooled > 10, `arrays were recycled (${on.pooled} pooled)`);
    assert.ok(on.losses.every(Number.isFinite), `finite losses ${on.losses}`);
    assert.deepEqual(on.losses, off.losses);
    assert.equal(on.params.length, off.params.length);
    on.params.forEach((p, i) => assert.deepEqual(p, off.params[i], `parameter/buffer ${i}`));
  });
}

test('recycling: the trainer (cnn, evaluation included) gives the same run with and without it', { skip }, () => {
  const cfg: Partial<TrainConfig> = { arch: 'cnn', epochs: 2, batchSize: 20, trainSubset: 60, testSubset: 40, seed: 2, lr: 0.01 };
  const off = withEnv('ONEBIT_RECYCLE', '0', () => train(cfg, {}));
  let pooled = 0;
  const on = withEnv('ONEBIT_RECYCLE', undefined, () => train(cfg, { callbacks: { onBatchEnd: () => { pooled = Math.max(pooled, poolStats().arrays); } } }));
  assert.ok(pooled > 0, 'the trainer recycled arrays');
  assert.deepEqual(on.history.map((h) => [h.loss, h.trainAcc, h.testAcc, h.flipRate]), off.history.map((h) => [h.loss, h.trainAcc, h.testAcc, h.flipRate]));
  on.model.parameters().forEach((p, i) => assert.deepEqual(p.f32(), off.model.parameters()[i]!.f32()));
  assert.deepEqual(poolStats(), { arrays: 0, bytes: 0 }, 'the pool is dropped when training ends');
});
