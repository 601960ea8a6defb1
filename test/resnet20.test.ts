import '../src/index.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { manualSeed } from '../src/core/rng.js';
import { noGrad } from '../src/autograd/tape.js';
import { resnet20, shortcutA } from '../src/models/resnet20.js';
import { methodPreset } from '../src/models/methods.js';
import { BinaryConv2d } from '../src/nn/binary.js';
import { summary } from '../src/metrics/summary.js';
import { gradcheck, randTensor } from './util/gradcheck.js';

test('shortcutA: values (x[:, :, ::2, ::2], zero channels each side) and gradient', () => {
  const x = randTensor([2, 2, 5, 4], 1);
  const y = shortcutA(x, 4);
  assert.deepEqual(y.shape, [2, 4, 3, 2]);
  const yv = y.f32(), xv = x.f32();
  assert.equal(yv[0], 0); // channel 0 is padding
  assert.equal(yv[6], xv[0]); // channel 1 = input channel 0, (0, 0)
  assert.equal(yv[6 + 5], xv[4 * 4 + 2]); // (i=2, j=1) -> input row 4, column 2
  gradcheck((t) => shortcutA(t!, 6), [x]);
  assert.throws(() => shortcutA(x, 3), /shortcutA: expected/);
});

test('resnet20: 18 binary 3x3 convs, the hand-counted 1-bit parameters, logits for CIFAR input', () => {
  manualSeed(0);
  for (const method of ['ste', 'reactnet', 'adabin']) {
    const m = resnet20(methodPreset(method));
    const convs = m.namedModules().map(([, x]) => x).filter((x): x is BinaryConv2d => x instanceof BinaryConv2d);
    assert.equal(convs.length, 18);
    // 6·16·16·9 + 16·32·9 + 5·32·32·9 + 32·64·9 + 5·64·64·9
    assert.equal(convs.reduce((n, c) => n + c.weight.size, 0), 267264);
    const y = noGrad(() => m.eval().forward(randTensor([2, 3, 32, 32], 2)));
    assert.deepEqual(y.shape, [2, 10]);
    assert.ok(y.f32().every(Number.isFinite));
  }
  const s = summary(resnet20(methodPreset('ste')), [1, 3, 32, 32]);
  assert.equal(s.paramsByBits[1], 267264);
  // binary MACs: stage 1 at 32x32, stage 2 at 16x16, stage 3 at 8x8
  assert.equal(s.macsByBits[1], 6 * 16 * 16 * 9 * 1024 + (16 * 32 * 9 + 5 * 32 * 32 * 9) * 256 + (32 * 64 * 9 + 5 * 64 * 64 * 9) * 64);
});
