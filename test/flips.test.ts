import '../src/index.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FlipTracker } from '../src/metrics/flips.js';
import { BinaryLinear } from '../src/nn/binary.js';
import { Sequential } from '../src/nn/module.js';
import { Linear } from '../src/nn/layers.js';

function setW(l: BinaryLinear, v: number[]): void {
  (l.weight.storage as Float32Array).set(v);
}

test('FlipTracker: FR(t), SO(t), init flip and histograms on a hand-made weight sequence', () => {
  // 40 weights (more than one 32-bit word), in one binary layer; the real Linear is ignored.
  const b = new BinaryLinear(8, 5);
  const model = new Sequential(new Linear(8, 8), b);
  const w0: number[] = Array.from({ length: 40 }, (_, i) => (i % 2 ? 0.5 : -0.5));
  setW(b, w0);
  const t = new FlipTracker(model);
  // step 1: flip weights 0..3 and 33        -> FR = 5/40
  const w1 = [...w0];
  for (const i of [0, 1, 2, 3, 33]) w1[i] = -w1[i]!;
  setW(b, w1);
  t.update();
  // step 2: flip back 0, 1 and 33, flip 10  -> FR = 4/40; SO(step1) = 3/40 (0, 1, 33 went back)
  const w2 = [...w1];
  for (const i of [0, 1, 33, 10]) w2[i] = -w2[i]!;
  setW(b, w2);
  t.update();
  // step 3: a zero weight counts as +1: weight 5 (0.5) -> 0 is no flip; weight 4 (-0.5) -> 0 flips
  const w3 = [...w2];
  w3[5] = 0;
  w3[4] = 0;
  setW(b, w3);
  t.update();
  assert.deepEqual(t.stepRates(), [5 / 40, 4 / 40, 1 / 40]);
  const r = t.epochRate();
  assert.equal(r.model, (5 / 40 + 4 / 40 + 1 / 40) / 3);
  assert.equal(r.layers['1'], r.model);
  // SO is defined from step 2 on: SO(1) = 3/40 (0, 1, 33 flipped back), SO(2) = 0 (10 did not go back)
  assert.equal(r.so, (3 / 40 + 0) / 2);
  // now differ from init: 2, 3 (step 1), 10 (step 2), 4 (step 3)
  assert.equal(r.initFlip, 4 / 40);
  const s = t.layerStats()['1']!;
  assert.equal(s.hist.counts.reduce((x, y) => x + y, 0), 40);
  assert.equal(s.hist.range, 0.5);
  t.resetEpoch();
  assert.deepEqual(t.stepRates(), []);
  assert.equal(t.epochRate().model, 0);
});

test('FlipTracker: state round trip restores the sign history exactly', () => {
  const b = new BinaryLinear(8, 5);
  const model = new Sequential(b);
  const t = new FlipTracker(model);
  const w = Array.from(b.weight.f32());
  w[3] = -w[3]!;
  setW(b, w);
  t.update();
  const t2 = new FlipTracker(model);
  t2.loadState(t.state());
  w[3] = -w[3]!;
  w[7] = -w[7]!;
  setW(b, w);
  t.update();
  t2.update();
  assert.deepEqual(t2.stepRates(), [2 / 40]);
  assert.equal(t2.epochRate().so, t.epochRate().so);
  assert.equal(t2.epochRate().initFlip, 1 / 40);
});
