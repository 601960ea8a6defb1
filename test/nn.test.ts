import '../src/index.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { manualSeed } from '../src/core/rng.js';
import { Tensor, tensor } from '../src/core/tensor.js';
import { backward } from '../src/autograd/tape.js';
import { sum } from '../src/ops/reduce.js';
import {
  BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Flatten, GlobalAvgPool2d, Hardtanh, Linear, MaxPool2d, PReLU, ReLU, AvgPool2d,
} from '../src/nn/layers.js';
import { Sequential } from '../src/nn/module.js';
import { BinaryConv2d, BinaryLinear } from '../src/nn/binary.js';
import { assertClose, gradcheck, paramGradcheck, randTensor } from './util/gradcheck.js';

test('Linear: y = x·Wᵀ + b, and gradients wrt x, W, b', () => {
  manualSeed(1);
  const l = new Linear(3, 2);
  const x = tensor([1, 2, 3, -1, 0, 1], [2, 3]);
  const y = l.forward(x).f32();
  const w = l.weight.f32(), b = l.bias!.f32();
  for (let n = 0; n < 2; n++) for (let o = 0; o < 2; o++) {
    let s = b[o]!;
    for (let i = 0; i < 3; i++) s += x.f32()[n * 3 + i]! * w[o * 3 + i]!;
    assert.ok(Math.abs(y[n * 2 + o]! - s) < 1e-6);
  }
  gradcheck((xx) => l.forward(xx!), [x]);
  paramGradcheck(() => l.forward(x), [l.weight, l.bias!]);
});

test('Module: named parameters, buffers, train/eval and state dict round trip', () => {
  manualSeed(2);
  const m = new Sequential(new Linear(4, 3), new BatchNorm1d(3), new ReLU(), new Linear(3, 2));
  assert.deepEqual(m.namedParameters().map(([n]) => n), ['0.weight', '0.bias', '1.weight', '1.bias', '3.weight', '3.bias']);
  assert.deepEqual(m.namedBuffers().map(([n]) => n), ['1.runningMean', '1.runningVar']);
  m.eval();
  assert.ok(m.namedModules().every(([, c]) => !c.training));
  m.train();
  const sd = new Map([...m.stateDict()].map(([k, t]) => [k, Float32Array.from(t.f32())]));
  manualSeed(3);
  const m2 = new Sequential(new Linear(4, 3), new BatchNorm1d(3), new ReLU(), new Linear(3, 2));
  assert.notDeepEqual(Array.from(m2.parameters()[0]!.f32()), Array.from(sd.get('0.weight')!));
  m2.loadStateDict(sd);
  assert.deepEqual(Array.from(m2.parameters()[0]!.f32()), Array.from(sd.get('0.weight')!));
  const bad = new Map(sd);
  bad.delete('0.bias');
  assert.throws(() => m2.loadStateDict(bad), /expected the same parameter names.*1 missing \(0\.bias\)/);
  const wrong = new Map(sd);
  wrong.set('0.weight', new Float32Array(5));
  assert.throws(() => m2.loadStateDict(wrong), /0\.weight of shape \[3,4\]/);
});

test('BatchNorm1d/2d: running statistics update and eval uses them', () => {
  const bn = new BatchNorm1d(2, { momentum: 0.5 });
  const x = tensor([1, 10, 3, 20], [2, 2]);
  bn.forward(x);
  assertClose(bn.runningMean.f32(), [0.5 * 2, 0.5 * 15]);
  // unbiased batch variance: [2, 50]
  assertClose(bn.runningVar.f32(), [0.5 + 0.5 * 2, 0.5 + 0.5 * 50]);
  bn.eval();
  const y = bn.forward(tensor([1, 7.5], [1, 2])).f32();
  assertClose(y, [0, 0], 1e-4);
  const bn2 = new BatchNorm2d(3);
  const out = bn2.forward(randTensor([2, 3, 4, 5], 4)).f32();
  // normalized per channel: mean 0
  for (let c = 0; c < 3; c++) {
    let s = 0;
    for (let n = 0; n < 2; n++) for (let i = 0; i < 20; i++) s += out[(n * 3 + c) * 20 + i]!;
    assert.ok(Math.abs(s / 40) < 1e-5);
  }
  assert.throws(() => bn2.forward(randTensor([2, 4, 2, 2])), /BatchNorm2d: expected input of rank 4 with 3 channels/);
});

test('PReLU: values and gradcheck wrt x and the per-channel slope', () => {
  const p = new PReLU(3, 0.25);
  const y = p.forward(tensor([-2, 1, -4, 2, -1, 3], [2, 3])).f32();
  assertClose(y, [-0.5, 1, -1, 2, -0.25, 3]);
  const x = tensor([-2, 1, -4, 2, -1, 3, 0.5, -0.7], [2, 4]);
  const m = new PReLU(4);
  gradcheck((xx) => m.forward(xx!), [x]);
  paramGradcheck(() => m.forward(x), [m.weight]);
  m.weight.grad = null;
  const out = sum(m.forward(x));
  backward(out);
  // dL/da_c = Σ min(x, 0) over channel c
  assertClose(m.weight.grad!.f32(), [-3, 0, -4, -0.7]);
});

test('Dropout: identity in eval, zeros about p and rescales in training, deterministic under a seed', () => {
  const d = new Dropout(0.5);
  const x = new Tensor(new Float32Array(4000).fill(1), [4000]);
  manualSeed(7);
  const a = d.forward(x).f32();
  const zeros = a.filter((v) => v === 0).length;
  assert.ok(zeros > 1800 && zeros < 2200, `zeros ${zeros}`);
  assert.ok(a.every((v) => v === 0 || v === 2));
  manualSeed(7);
  assert.deepEqual(Array.from(d.forward(x).f32()), Array.from(a));
  d.eval();
  assert.equal(d.forward(x), x);
  assert.throws(() => new Dropout(1), /Dropout: expected p in \[0, 1\)/);
});

test('BatchNorm and Conv2d layers: parameter gradients by finite differences', () => {
  manualSeed(9);
  const conv = new Conv2d(2, 3, 3, { padding: 1 });
  const bn = new BatchNorm2d(3);
  const x = randTensor([2, 2, 4, 4], 12);
  paramGradcheck(() => bn.forward(conv.forward(x)), [conv.weight, conv.bias!, bn.weight, bn.bias]);
});

test('Hardtanh, Flatten, pooling layers and Conv2d shapes', () => {
  assertClose(new Hardtanh().forward(tensor([-3, -0.5, 0.5, 3])).f32(), [-1, -0.5, 0.5, 1]);
  const x = randTensor([2, 3, 8, 8], 5);
  assert.deepEqual(new Flatten().forward(x).shape, [2, 192]);
  assert.deepEqual(new MaxPool2d(2).forward(x).shape, [2, 3, 4, 4]);
  assert.deepEqual(new AvgPool2d(2).forward(x).shape, [2, 3, 4, 4]);
  assert.deepEqual(new GlobalAvgPool2d().forward(x).shape, [2, 3]);
  assert.deepEqual(new Conv2d(3, 4, 3, { padding: 1, stride: 2 }).forward(x).shape, [2, 4, 4, 4]);
  assert.throws(() => new Linear(192, 4).forward(x), /Linear: expected input \[batch, 192\].*Add a Flatten layer/);
});

test('BinaryLinear: forward is sign(x)·sign(W)ᵀ; STE gradients reach x and the latent W', () => {
  manualSeed(3);
  const l = new BinaryLinear(4, 3);
  const x = tensor([0.3, -0.2, 2, -0.5, -1.5, 0.1, 0.0, 0.9], [2, 4]);
  const y = l.forward(x).f32();
  const w = l.weight.f32();
  const sg = (v: number) => (v >= 0 ? 1 : -1);
  for (let n = 0; n < 2; n++) for (let o = 0; o < 3; o++) {
    let s = 0;
    for (let i = 0; i < 4; i++) s += sg(x.f32()[n * 4 + i]!) * sg(w[o * 4 + i]!);
    assert.equal(y[n * 3 + o], s);
  }
  const xl = new Tensor(Float32Array.from(x.f32()), x.shape);
  xl.requiresGrad = true;
  backward(sum(l.forward(xl)));
  // dL/dx[n,i] = Σ_o sign(W[o,i]) · 1[|x| <= 1];  dL/dW[o,i] = Σ_n sign(x[n,i]) · 1[|W| <= 1]
  const gx = xl.grad!.f32(), gw = l.weight.grad!.f32();
  for (let n = 0; n < 2; n++) for (let i = 0; i < 4; i++) {
    let s = 0;
    for (let o = 0; o < 3; o++) s += sg(w[o * 4 + i]!);
    assert.equal(gx[n * 4 + i]! + 0, Math.abs(x.f32()[n * 4 + i]!) <= 1 ? s : 0);
  }
  for (let o = 0; o < 3; o++) for (let i = 0; i < 4; i++) {
    let s = 0;
    for (let n = 0; n < 2; n++) s += sg(x.f32()[n * 4 + i]!);
    assert.equal(gw[o * 4 + i]! + 0, s); // |W| <= 1 always at init
  }
});

test('BinaryConv2d: padValue ±1 pads the binarized input; 0 pads with zeros', () => {
  const x = randTensor([1, 2, 3, 3], 11);
  for (const padValue of [-1, 0, 1] as const) {
    manualSeed(4);
    const l = new BinaryConv2d(2, 1, 3, { padding: 1, padValue });
    const y = l.forward(x).f32();
    // oracle: direct convolution over the padded, binarized input
    const sg = (v: number) => (v >= 0 ? 1 : -1);
    const w = l.weight.f32(), xv = x.f32();
    for (let oy = 0; oy < 3; oy++) for (let ox = 0; ox < 3; ox++) {
      let s = 0;
      for (let c = 0; c < 2; c++) for (let ky = 0; ky < 3; ky++) for (let kx = 0; kx < 3; kx++) {
        const iy = oy + ky - 1, ix = ox + kx - 1;
        const a = iy < 0 || iy >= 3 || ix < 0 || ix >= 3 ? padValue : sg(xv[c * 9 + iy * 3 + ix]!);
        s += a * sg(w[c * 9 + ky * 3 + kx]!);
      }
      assert.equal(y[oy * 3 + ox], s, `padValue ${padValue} at ${oy},${ox}`);
    }
  }
  assert.throws(() => new BinaryConv2d(2, 2, 3, { padValue: 2 as never }), /padValue: expected -1, 0 or 1/);
});
