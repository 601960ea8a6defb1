import '../src/index.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Tensor, tensor } from '../src/core/tensor.js';
import { backward } from '../src/autograd/tape.js';
import { mul } from '../src/ops/elementwise.js';
import { sum } from '../src/ops/reduce.js';
import { createQuantizer, EdeSign, RSign, SteTern, type QuantizerConfig, type QuantizerContext } from '../src/quantizers/index.js';
import { BinaryLinear } from '../src/nn/binary.js';
import { WeightClip } from '../src/nn/weight_clip.js';
import { LearnableBias, Maxout, RPReLU } from '../src/nn/react.js';
import { SGD } from '../src/optim/sgd.js';
import type { Module } from '../src/nn/module.js';
import { assertClose, paramGradcheck, randTensor } from './util/gradcheck.js';

function leaf(t: Tensor): Tensor {
  const p = new Tensor(Float32Array.from(t.f32()), t.shape);
  p.requiresGrad = true;
  return p;
}

const arr = (t: Tensor | Float32Array): number[] => Array.from(t instanceof Tensor ? t.f32() : t, (v) => v + 0);

/** Forward values and dL/dx of L = Σ q(x)·w. */
function run(spec: string | QuantizerConfig, x: Tensor, w: Tensor, ctx: QuantizerContext = { role: 'input', channels: 1 }): { y: number[]; g: number[] } {
  const xl = leaf(x);
  const y = createQuantizer(spec, ctx).apply(xl);
  backward(sum(mul(y, w)));
  return { y: arr(y), g: arr(xl.grad!) };
}

const seq = (n: number): Tensor => tensor(Array.from({ length: n }, (_, i) => i + 1));
const ones = (n: number): Tensor => tensor(new Array<number>(n).fill(1));

// ---------------------------------------------------------------------------------------------
// approx_sign

test('approx_sign: sign forward; backward 2+2x on [-1,0), 2-2x on [0,1), 0 elsewhere (closed form)', () => {
  const x = tensor([-2, -1, -0.75, -0.5, 0, 0.25, 0.5, 1, 1.5]);
  for (const role of ['input', 'kernel'] as const) {
    const { y, g } = run('approx_sign', x, seq(9), { role, channels: 1 });
    assert.deepEqual(y, [-1, -1, -1, -1, 1, 1, 1, 1, 1]);
    // derivative: [0, 0 (x=-1), 0.5, 1, 2 (x=0), 1.5, 1, 0 (x=1), 0], times w = 1..9
    assert.deepEqual(g, [0, 0, 1.5, 4, 10, 9, 7, 0, 0]);
  }
});

// ---------------------------------------------------------------------------------------------
// swish_sign

test('swish_sign: backward β(2 − βx·tanh(βx/2))/(1 + cosh(βx)), β = 5 by default (closed form)', () => {
  const x = tensor([-1, -0.2, 0, 0.2, 0.4, 1, 300, -300]);
  const { y, g } = run('swish_sign', x, ones(8));
  assert.deepEqual(y, [-1, -1, 1, 1, 1, 1, 1, -1]);
  // Hand-evaluated formula (β = 5); peak β at 0, slightly negative at |x| = 1, 0 where cosh overflows.
  assertClose(g, [-0.194992254900325, 3.023661188100153, 5, 3.023661188100153, 0.5006216869470692, -0.194992254900325, 0, 0], 1e-5, 1e-5, 'swish_sign grad');
  assert.equal(g[2], 5);
  // β = 2: at x = 0 the surrogate is β.
  assert.deepEqual(run({ alias: 'swish_sign', beta: 2 }, tensor([0]), ones(1)).g, [2]);
  // The formula is the derivative of SS_β(x) = 2σ(βx)(1 + βx(1 − σ(βx))) − 1: check by finite differences.
  const ss = (v: number, b: number): number => {
    const s = 1 / (1 + Math.exp(-b * v));
    return 2 * s * (1 + b * v * (1 - s)) - 1;
  };
  const xs = [-0.7, -0.3, 0.1, 0.35, 0.9];
  const gs = run('swish_sign', tensor(xs), ones(5)).g;
  xs.forEach((v, i) => assert.ok(Math.abs(gs[i]! - (ss(v + 1e-5, 5) - ss(v - 1e-5, 5)) / 2e-5) < 1e-4, `x=${v}`));
  assert.throws(() => createQuantizer({ alias: 'swish_sign', beta: 0 }), /swish_sign beta: expected a valid number, but got 0/);
});

// ---------------------------------------------------------------------------------------------
// magnitude_aware_sign

test('magnitude_aware_sign: α_i·sign(W) per output channel; backward α_i·1[|W| <= 1] (α stop-gradient)', () => {
  // Row 0: α = (0.5 + 1.5 + 1)/3 = 1; row 1: α = (0.25 + 0.5 + 0)/3 = 0.25.
  const w = tensor([0.5, -1.5, 1.0, -0.25, 0.5, 0], [2, 3]);
  const { y, g } = run('magnitude_aware_sign', w, tensor([1, 2, 3, 4, 5, 6], [2, 3]), { role: 'kernel', channels: 2 });
  assert.deepEqual(y, [1, -1, 1, -0.25, 0.25, 0.25]);
  // |−1.5| > 1 gets 0; |1.0| = 1 is inside; row 1 scaled by 0.25.
  assert.deepEqual(g, [1, 0, 3, 1, 1.25, 1.5]);
  const wide = run({ alias: 'magnitude_aware_sign', clipValue: 2 }, w, tensor([1, 1, 1, 1, 1, 1], [2, 3]), { role: 'kernel', channels: 2 });
  assert.deepEqual(wide.g, [1, 1, 1, 0.25, 0.25, 0.25]);
  assert.throws(() => createQuantizer('magnitude_aware_sign', { role: 'input', channels: 2 }), /magnitude_aware_sign: expected use as kernel quantizer/);
});

// ---------------------------------------------------------------------------------------------
// ede_sign

/** k·t·(1 − tanh²(t·x)) with t, k as stored (float32), rounded to float32. */
function edeExpected(xs: number[], t: number, k: number): number[] {
  return xs.map((v) => Math.fround(k * t * (1 - Math.tanh(t * v) ** 2)));
}

test('ede_sign: t/k schedule (defaults 0.1/10, epochs 0, E/2, E−1) and the gradient k·t·(1 − tanh²(t·x))', () => {
  const q = createQuantizer('ede_sign') as EdeSign;
  const xs = [-2, -0.5, 0, 0.5, 2];
  const grad = (): { y: number[]; g: number[] } => {
    const xl = leaf(tensor(xs));
    const y = q.apply(xl);
    backward(sum(y));
    return { y: arr(y), g: arr(xl.grad!) };
  };
  // Before any epoch: the module defaults.
  assert.equal(q.t.item(), Math.fround(0.1));
  assert.equal(q.k.item(), 10);
  assert.deepEqual(grad().y, [-1, -1, 1, 1, 1]);
  assert.deepEqual(grad().g, edeExpected(xs, Math.fround(0.1), 10));

  const E = 10;
  const cases: [number, number, number][] = [
    [0, 1e-3, 1000], // t = Tmin, k = 1/t
    [E / 2, 0.1, 10], // 10^(−3 + 4·0.5) = 0.1
    [E - 1, 10 ** 0.6, 1], // 10^(−3 + 4·0.9) ≈ 3.981 > 1, so k = 1
  ];
  for (const [e, t, k] of cases) {
    q.onEpochStart(e, E);
    assertClose([q.t.item()], [t], 0, 1e-6, `t at epoch ${e}`);
    assertClose([q.k.item()], [k], 0, 1e-6, `k at epoch ${e}`);
    const { g } = grad();
    assert.deepEqual(g, edeExpected(xs, q.t.item(), q.k.item()), `gradient at epoch ${e}`);
  }
  // Hand values at epoch E−1 (t ≈ 3.98107, k = 1): peak t at x = 0, ≈ 0.28644 at ±0.5, ≈ 1.93e-6 at ±2.
  const { g } = grad();
  assertClose(g, [1.933e-6, 0.2864437, 3.9810717, 0.2864437, 1.933e-6], 1e-8, 1e-4, 'EDE at t = 10^0.6');
  // Epoch 0: k·t = 1 and the surrogate is ≈ 1 everywhere near 0.
  q.onEpochStart(0, E);
  assertClose(grad().g, [1, 1, 1, 1, 1], 1e-5, 0, 'EDE at t = 1e-3');

  // t and k are buffers: a fresh quantizer resumes them exactly from the state dict.
  q.onEpochStart(7, E);
  const r = createQuantizer(JSON.parse(JSON.stringify(q.config()))) as EdeSign;
  assert.deepEqual([...r.stateDict().keys()].sort(), ['k', 't']);
  r.loadStateDict(q.stateDict());
  assert.equal(r.t.item(), q.t.item());
  assert.equal(r.k.item(), q.k.item());
  // Options tMin / tMax.
  const o = createQuantizer({ alias: 'ede_sign', tMin: 0.1, tMax: 1 }) as EdeSign;
  o.onEpochStart(1, 2);
  assertClose([o.t.item(), o.k.item()], [10 ** -0.5, 10 ** 0.5], 0, 1e-6);
});

// ---------------------------------------------------------------------------------------------
// rsign

test('rsign: sign(x + b_c) with ApproxSign gradient to x and the per-channel bias', () => {
  const q = createQuantizer('rsign', { role: 'input', channels: 2 }) as RSign;
  assert.deepEqual(arr(q.bias), [0, 0]);
  assert.deepEqual([...q.stateDict().keys()], ['bias']);
  q.bias.f32().set([0.25, 0.5]);
  // [N=2, C=2]: u = x + b = [[−0.25, 0.75], [1.75, −0.75]]
  const xl = leaf(tensor([-0.5, 0.25, 1.5, -1.25], [2, 2]));
  const y = q.apply(xl);
  assert.deepEqual(arr(y), [-1, 1, 1, -1]);
  backward(sum(mul(y, tensor([1, 2, 3, 4], [2, 2]))));
  // ApproxSign'(u) = [1.5, 0.5, 0, 0.5]
  assert.deepEqual(arr(xl.grad!), [1.5, 1, 0, 2]);
  assert.deepEqual(arr(q.bias.grad!), [1.5, 3]);

  // [N=1, C=2, H=1, W=2]: the bias broadcasts over the spatial axes; boundaries u = −1 (0), u = 0 (2).
  const q4 = new RSign(2);
  q4.bias.f32().set([0, -0.5]);
  const x4 = leaf(tensor([-1, 0, 0.5, 2], [1, 2, 1, 2])); // u = [−1, 0, 0, 1.5]
  const y4 = q4.apply(x4);
  assert.deepEqual(arr(y4), [-1, 1, 1, 1]);
  backward(sum(y4));
  assert.deepEqual(arr(x4.grad!), [0, 2, 2, 0]);
  assert.deepEqual(arr(q4.bias.grad!), [2, 2]);

  assert.throws(() => q4.apply(tensor([1, 2, 3], [1, 3])), /rsign: expected input \[N, 2, \.\.\.\]/);
  assert.throws(() => createQuantizer('rsign', { role: 'kernel', channels: 2 }), /rsign: expected use as input quantizer/);
});

// ---------------------------------------------------------------------------------------------
// ste_tern

test('ste_tern: threshold 0.05 (±Δ inclusive), TWN threshold 0.7·mean|x| per tensor, clipped STE', () => {
  const x = tensor([-1.5, -0.05, -0.04, 0, 0.04, 0.05, 0.5, 1]);
  const { y, g } = run('ste_tern', x, seq(8));
  assert.deepEqual(y, [-1, -1, 0, 0, 0, 1, 1, 1]);
  assert.deepEqual(g, [0, 2, 3, 4, 5, 6, 7, 8]);
  assert.equal(createQuantizer('ste_tern').precision, 2);
  // A custom threshold and clip value.
  const c = run({ alias: 'ste_tern', thresholdValue: 0.5, clipValue: 2 }, x, seq(8));
  assert.deepEqual(c.y, [-1, 0, 0, 0, 0, 0, 1, 1]);
  assert.deepEqual(c.g, [1, 2, 3, 4, 5, 6, 7, 8]);

  // TWN: Δ = 0.7·(1 + 0.25 + 0 + 0.25 + 0.5 + 1 + 2 + 0.5)/8 = 0.7·0.6875 = 0.48125, over the whole tensor.
  const twn = createQuantizer({ alias: 'ste_tern', ternaryWeightNetworks: true }, { role: 'kernel', channels: 2 }) as SteTern;
  const xt = tensor([-1, -0.25, 0, 0.25, 0.5, 1, 2, -0.5], [2, 4]);
  assertClose([twn.threshold(xt)], [0.48125], 1e-7, 0, 'TWN threshold');
  const t = run({ alias: 'ste_tern', ternaryWeightNetworks: true }, xt, tensor([1, 2, 3, 4, 5, 6, 7, 8], [2, 4]), { role: 'kernel', channels: 2 });
  assert.deepEqual(t.y, [-1, 0, 0, 0, 1, 1, 1, -1]);
  assert.deepEqual(t.g, [1, 2, 3, 4, 5, 6, 0, 8]);
  // Scaling the tensor scales Δ: the ternary pattern is unchanged.
  assert.deepEqual(run({ alias: 'ste_tern', ternaryWeightNetworks: true }, tensor(arr(xt).map((v) => v * 0.01), [2, 4]), tensor(arr(ones(8)), [2, 4])).y, t.y);
  // All zeros: Δ = 0 and zeros stay 0 (Larq's sign(sign(x+Δ) + sign(x−Δ)) with sign(0) = 0).
  assert.deepEqual(run({ alias: 'ste_tern', ternaryWeightNetworks: true }, tensor([0, 0, 0]), ones(3)).y, [0, 0, 0]);
  assert.throws(() => createQuantizer({ alias: 'ste_tern', ternaryWeightNetworks: 'yes' }), /ste_tern ternaryWeightNetworks: expected true or false/);
});

// ---------------------------------------------------------------------------------------------
// dorefa

test('dorefa activations: levels for k = 1, 2 (round half to even), STE inside [0, 1]', () => {
  const x1 = tensor([-0.5, 0, 0.25, 0.5, 0.75, 1, 1.5]);
  const k1 = run({ alias: 'dorefa', kBit: 1 }, x1, ones(7));
  assert.deepEqual(k1.y, [0, 0, 0, 0, 1, 1, 1]); // 0.5 → round(0.5) = 0 (ties to even, as tf.round)
  assert.deepEqual(k1.g, [0, 1, 1, 1, 1, 1, 0]); // clamp bounds 0 and 1 are inside
  const third = Math.fround(1 / 3), twoThirds = Math.fround(2 / 3);
  const x2 = tensor([-0.5, 0, 0.1, 0.2, 0.5, 0.6, 0.9, 1, 1.5]);
  const k2 = run('dorefa', x2, seq(9));
  assert.deepEqual(k2.y, [0, 0, 0, third, twoThirds, twoThirds, 1, 1, 1]); // 0.5·3 = 1.5 → 2
  assert.deepEqual(k2.g, [0, 2, 3, 4, 5, 6, 7, 8, 0]);
  // The level sets on a dense grid: exactly 2^k values.
  const grid = tensor(Array.from({ length: 401 }, (_, i) => -0.5 + i / 200));
  for (const [k, levels] of [[1, [0, 1]], [2, [0, third, twoThirds, 1]], [3, [0, 1, 2, 3, 4, 5, 6, 7].map((v) => Math.fround(v / 7))]] as const) {
    const q = createQuantizer({ alias: 'dorefa', kBit: k });
    assert.equal(q.precision, k);
    assert.deepEqual([...new Set(arr(q.apply(grid)))].sort((a, b) => a - b), levels);
  }
});

test('dorefa weights: 2·round_n(tanh(W)/(2·max|tanh W|) + 0.5) − 1, gradient through the tanh normalisation', () => {
  const ctx = { role: 'kernel', channels: 1 } as const;
  const W = tensor([-2, -0.5, 0, 0.5, 1]);
  const lvl = (l: number, n: number): number => Math.fround(2 * Math.fround(l / n) - 1);
  // u = [0, 0.2603, 0.5, 0.7397, 0.8950]
  assert.deepEqual(run({ alias: 'dorefa', kBit: 1 }, W, ones(5), ctx).y, [-1, -1, -1, 1, 1]); // u = 0.5 → 0 → −1
  const { y, g } = run({ alias: 'dorefa', kBit: 2, mode: 'weights' }, W, seq(5), ctx);
  assert.deepEqual(y, [-1, lvl(1, 3), lvl(2, 3), lvl(2, 3), 1]);
  // dL/dW_i = (1 − tanh²W_i)·(g_i/M + [i = j]·sign(tanh W_j)·(−Σ g·tanh W)/M²), M = max|tanh W| = |tanh W_0| (j = 0).
  const th = arr(W).map(Math.tanh);
  const gw = [1, 2, 3, 4, 5];
  const M = Math.abs(th[0]!);
  const s = th.reduce((a, t, i) => a + gw[i]! * t, 0);
  const expect = th.map((t, i) => (1 - t * t) * (gw[i]! / M + (i === 0 ? (-1 * -s) / (M * M) : 0)));
  assertClose(g, expect, 1e-5, 1e-4, 'dorefa weights grad');
  // All-zero kernel: finite (u = 0.5), not NaN.
  assert.deepEqual(run({ alias: 'dorefa', kBit: 2 }, tensor([0, 0]), ones(2), ctx).y, [lvl(2, 3), lvl(2, 3)]);
  // The mode defaults to the role's and must match it.
  assert.equal(createQuantizer('dorefa', ctx).config()['mode'], 'weights');
  assert.equal(createQuantizer('dorefa').config()['mode'], 'activations');
  assert.throws(() => createQuantizer({ alias: 'dorefa', mode: 'weights' }, { role: 'input', channels: 1 }), /dorefa: expected mode "activations" as input quantizer, but got mode "weights"\. Mode "weights" quantizes kernels/);
  assert.throws(() => createQuantizer({ alias: 'dorefa', mode: 'activations' }, ctx), /dorefa: expected mode "weights" as kernel quantizer, but got mode "activations"/);
  assert.throws(() => createQuantizer({ alias: 'dorefa', kBit: 0 }), /dorefa kBit: expected an integer from 1 to 16/);
  assert.throws(() => createQuantizer({ alias: 'dorefa', mode: 'both' }), /dorefa mode: expected "activations" or "weights"/);
});

// ---------------------------------------------------------------------------------------------
// WeightClip

test('WeightClip: BinaryLinear clamps its latent weights in afterStep() after an optimizer step', () => {
  const layer = new BinaryLinear(3, 2, { kernelConstraint: new WeightClip(0.5) });
  layer.weight.f32().set([0.4, -0.4, 0.1, 0.45, -0.45, 0]);
  const opt = new SGD(layer.parameters(), { lr: 1 });
  backward(sum(mul(layer.forward(tensor([1, -1, 1, -1, 1, -1], [2, 3])), tensor([1, -1, 1, 1], [2, 2]))));
  opt.step();
  const stepped = arr(layer.weight);
  assert.ok(stepped.some((v) => Math.abs(v) > 0.5), `the step should leave the clip range: ${stepped}`);
  layer.afterStep();
  assert.deepEqual(arr(layer.weight), stepped.map((v) => Math.fround(Math.min(0.5, Math.max(-0.5, v)))));
  // Default clip value 1; weights without a constraint stay untouched.
  const w = tensor([-3, -1, 0.25, 1, 2]);
  assert.deepEqual(arr(new WeightClip().apply(w)), [-1, -1, 0.25, 1, 1]);
  const free = new BinaryLinear(1, 1);
  free.weight.f32()[0] = 7;
  free.afterStep();
  assert.equal(free.weight.item(), 7);
  assert.throws(() => new WeightClip(0), /WeightClip clipValue: expected a finite number > 0, but got 0/);
});

// ---------------------------------------------------------------------------------------------
// ReActNet / AdaBin modules

/** x with every value at least 0.1 away from the kink at −shift_c (channels on axis 1). */
function awayFromKink(shape: number[], seed: number, shift: number[]): Tensor {
  const x = randTensor(shape, seed, -2, 2).f32();
  const C = shape[1]!, inner = shape.slice(2).reduce((a, b) => a * b, 1);
  for (let i = 0; i < x.length; i++) {
    const c = Math.floor(i / inner) % C;
    const u = x[i]! + shift[c]!;
    if (Math.abs(u) < 0.1) x[i] = x[i]! + (u >= 0 ? 0.2 : -0.2);
  }
  return tensor(x, shape);
}

function checkModule(m: Module, shape: number[], shift: number[], seed: number): void {
  const x = leaf(awayFromKink(shape, seed, shift));
  paramGradcheck(() => m.forward(x), [x, ...m.parameters()]);
}

test('LearnableBias: per-channel shift on axis 1, init 0; gradcheck for [N,C] and [N,C,H,W]', () => {
  const lb = new LearnableBias(3);
  assert.deepEqual(arr(lb.bias), [0, 0, 0]);
  lb.bias.f32().set([0.5, -1, 2]);
  assert.deepEqual(arr(lb.forward(tensor([1, 1, 1, 0, 0, 0], [2, 3]))), [1.5, 0, 3, 0.5, -1, 2]);
  checkModule(lb, [2, 3], [0, 0, 0], 1);
  checkModule(lb, [2, 3, 2, 2], [0, 0, 0], 2);
  assert.throws(() => lb.forward(tensor([1, 2], [1, 2])), /LearnableBias: expected input \[N, 3, \.\.\.\]/);
});

test('RPReLU: bias → PReLU(C, 0.25) → bias; gradcheck of x and all parameters', () => {
  const m = new RPReLU(2);
  assert.deepEqual(
    [...m.stateDict()].map(([k, v]) => [k, arr(v)]),
    [
      ['move0.bias', [0, 0]],
      ['prelu.weight', [0.25, 0.25]],
      ['move1.bias', [0, 0]],
    ],
  );
  // Hand values: b1 = [0.5, −0.5], slope [0.25, 0.5], b2 = [1, −1].
  m.move0.bias.f32().set([0.5, -0.5]);
  m.prelu.weight.f32().set([0.25, 0.5]);
  m.move1.bias.f32().set([1, -1]);
  // x = [[−2.5, 1.5], [0.5, −1.5]] → x + b1 = [[−2, 1], [1, −2]] → PReLU = [[−0.5, 1], [1, −1]] → + b2
  assert.deepEqual(arr(m.forward(tensor([-2.5, 1.5, 0.5, -1.5], [2, 2]))), [0.5, 0, 2, -2]);
  checkModule(m, [3, 2], [0.5, -0.5], 3);
  checkModule(m, [2, 2, 3, 3], [0.5, -0.5], 4);
  assert.throws(() => m.forward(tensor([1, 2, 3], [1, 3])), /RPReLU: expected input \[N, 2, \.\.\.\]/);
});

test('Maxout: posScale·ReLU(x) − negScale·ReLU(−x), init 1 / 0.25; gradcheck of x and both scales', () => {
  const m = new Maxout(2);
  assert.deepEqual(arr(m.posScale), [1, 1]);
  assert.deepEqual(arr(m.negScale), [0.25, 0.25]);
  assert.deepEqual(arr(m.forward(tensor([-2, 2, 0, -4], [2, 2]))), [-0.5, 2, 0, -1]);
  m.posScale.f32().set([1.5, 0.5]);
  m.negScale.f32().set([0.25, -0.5]);
  assert.deepEqual(arr(m.forward(tensor([-2, 2, 4, -4], [2, 2]))), [-0.5, 1, 6, 2]);
  checkModule(m, [3, 2], [0, 0], 5);
  checkModule(m, [2, 2, 2, 3], [0, 0], 6);
  // At x = 0 exactly the gradient is posScale (the x >= 0 side of the fused channelAct; the
  // two-ReLU composite gave 0 there — a measure-zero point either way).
  const x0 = leaf(tensor([0, 0], [1, 2]));
  backward(sum(m.forward(x0)));
  assert.deepEqual(arr(x0.grad!), [1.5, 0.5]);
});
