import '../src/index.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { manualSeed, rng } from '../src/core/rng.js';
import { OnebitError } from '../src/core/errors.js';
import { wrap, type Tensor } from '../src/core/tensor.js';
import { noGrad } from '../src/autograd/tape.js';
import { BinaryConv2d } from '../src/nn/binary.js';
import { methodNames, methodPreset } from '../src/models/methods.js';
import { createQuantizer } from '../src/quantizers/index.js';
import { activationForm, nextDown32, nextUp32, weightForm } from '../src/deploy/forms.js';

/** Overwrite every learnable quantizer parameter with random values (so the forms are really exercised). */
function randomizeQuantizerState(layer: BinaryConv2d): void {
  const r = rng();
  for (const [name, p] of layer.namedParameters()) {
    if (name === 'weight' || name === 'bias') continue;
    const d = p.storage as Float32Array;
    for (let i = 0; i < d.length; i++) d[i] = name.endsWith('alpha') ? 0.5 + r.next() : (r.next() - 0.5) * 0.6;
  }
}

function randn(shape: number[], scale = 1): Tensor {
  const r = rng();
  const d = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < d.length; i++) d[i] = r.normal() * scale;
  return wrap(d, shape);
}

// Every 1-bit preset ('float' keeps both sides real: identity quantizers, rejected below).
for (const method of methodNames().filter((m) => m !== 'float')) {
  test(`forms: ${method} — activationForm and weightForm equal the quantizers' eval forward`, () => {
    manualSeed(7);
    const preset = methodPreset(method);
    const C = 5, Co = 4;
    const layer = new BinaryConv2d(C, Co, 3, { inputQuantizer: preset.inputQuantizer, kernelQuantizer: preset.kernelQuantizer, padding: 1 });
    layer.eval();
    randomizeQuantizerState(layer);
    const iq = layer.inputQuantizer!, kq = layer.kernelQuantizer!;

    const af = activationForm(iq, C);
    // Random activations plus the exact thresholds and their float neighbours in every channel.
    const N = 6, H = 3, W = 3;
    const x = randn([N, C, H, W]);
    const xv = x.storage as Float32Array;
    for (let c = 0; c < C; c++) {
      const t = af.thr[c]!;
      xv[((0 * C + c) * H) * W] = t;
      xv[((1 * C + c) * H) * W] = nextDown32(t);
      xv[((2 * C + c) * H) * W] = nextUp32(t);
    }
    const y = noGrad(() => iq.apply(x)).f32();
    for (let i = 0; i < y.length; i++) {
      const c = Math.floor(i / (H * W)) % C;
      const want = xv[i]! >= af.thr[c]! ? af.hi[c]! : af.lo[c]!;
      assert.equal(y[i], want, `${method}: activation ${i} (x=${xv[i]}, thr=${af.thr[c]})`);
    }
    for (let c = 0; c < C; c++) assert.ok(af.lo[c] !== af.hi[c], 'two distinct levels');

    const wf = weightForm(kq, layer.weight);
    const wq = noGrad(() => kq.apply(layer.weight)).f32();
    const per = wq.length / Co;
    assert.deepEqual(wf.shape, [Co, C, 3, 3]);
    for (let i = 0; i < wq.length; i++) {
      const o = Math.floor(i / per);
      assert.equal(wq[i], wf.signs[i]! > 0 ? wf.hi[o] : wf.lo[o], `${method}: weight ${i}`);
      assert.ok(wf.lo[o]! <= wf.hi[o]!);
    }
  });
}

test('forms: adabin_act with α < 0 flips the step direction (threshold nextUp(β))', () => {
  for (const form of ['code', 'paper']) {
    const q = createQuantizer({ alias: 'adabin_act', form }, { role: 'input', channels: 3 });
    (q.namedParameters().find(([n]) => n === 'alpha')![1].storage as Float32Array)[0] = -0.7;
    (q.namedParameters().find(([n]) => n === 'beta')![1].storage as Float32Array)[0] = 0.3;
    const f = activationForm(q, 3);
    assert.equal(f.thr[0], nextUp32(Math.fround(0.3)));
    const xs = Float32Array.of(-2, 0.1, Math.fround(0.3), nextUp32(0.3), 0.5, 2);
    const y = noGrad(() => q.apply(wrap(xs, [6]))).f32();
    for (let i = 0; i < xs.length; i++) assert.equal(y[i], xs[i]! >= f.thr[0]! ? f.hi[0] : f.lo[0], `${form} x=${xs[i]}`);
  }
});

test('forms: rsign threshold is −b exactly, sign(0) = +1 at the threshold', () => {
  const q = createQuantizer('rsign', { role: 'input', channels: 2 });
  (q.namedParameters()[0]![1].storage as Float32Array).set([0, 0.25]);
  const f = activationForm(q, 2);
  assert.deepEqual([...f.thr], [-0, -0.25]);
  assert.deepEqual([...f.lo, ...f.hi], [-1, -1, 1, 1]);
});

test('forms: non-binary, unknown and diverged quantizers fail with one OnebitError naming them', () => {
  const id = createQuantizer('identity', { role: 'input', channels: 2 });
  assert.throws(() => activationForm(id, 2), /activationForm: expected a 1-bit input quantizer, but got identity \(32 bits\)/);
  assert.throws(() => weightForm(createQuantizer('identity', { role: 'kernel', channels: 2 }), randn([2, 3])), /identity \(32 bits\)/);
  const tern = createQuantizer('ste_tern', { role: 'input', channels: 2 });
  assert.throws(() => activationForm(tern, 2), (e: Error) => e instanceof OnebitError && /ste_tern \(2 bits\)/.test(e.message));
  const dq = createQuantizer({ alias: 'dorefa' }, { role: 'kernel', channels: 2 });
  assert.throws(() => weightForm(dq, randn([2, 3])), (e: Error) => e instanceof OnebitError && /dorefa/.test(e.message));
  const kt = createQuantizer('ste_tern', { role: 'kernel', channels: 2 });
  assert.throws(() => weightForm(kt, randn([2, 3])), /weightForm: expected a 1-bit kernel quantizer, but got ste_tern/);
  const ada = createQuantizer('adabin_act', { role: 'input', channels: 1 });
  (ada.namedParameters().find(([n]) => n === 'alpha')![1].storage as Float32Array)[0] = 0;
  assert.throws(() => activationForm(ada, 1), /finite non-zero α/);
  const rs = createQuantizer('rsign', { role: 'input', channels: 1 });
  (rs.namedParameters()[0]![1].storage as Float32Array)[0] = NaN;
  assert.throws(() => activationForm(rs, 1), OnebitError);
});

test('forms: a one-valued weight channel gets the symmetric pair', () => {
  const q = createQuantizer('ste_sign', { role: 'kernel', channels: 2 });
  const f = weightForm(q, wrap(Float32Array.of(1, 2, 3, -1, -2, -3), [2, 3]));
  assert.deepEqual([...f.lo], [-1, -1]);
  assert.deepEqual([...f.hi], [1, 1]);
  assert.deepEqual([...f.signs], [1, 1, 1, -1, -1, -1]);
});
