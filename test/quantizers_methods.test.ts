import '../src/index.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Tensor, tensor } from '../src/core/tensor.js';
import { backward } from '../src/autograd/tape.js';
import { mul, tanh } from '../src/ops/elementwise.js';
import { sum } from '../src/ops/reduce.js';
import { adabinWeightFused } from '../src/quantizers/adabin_weight.js';
import { edeSign } from '../src/quantizers/ede_sign.js';
import { edeSchedule, adabinEqualize, AdaBinWeight, createQuantizer, type Quantizer, type QuantizerConfig, SabnnSign } from '../src/quantizers/index.js';
import { assertClose, gradcheck, paramGradcheck, randTensor } from './util/gradcheck.js';

function leaf(t: Tensor): Tensor {
  const p = new Tensor(Float32Array.from(t.f32()), t.shape);
  p.requiresGrad = true;
  return p;
}

/** Runs L = Σ q(x)·g; returns q(x) values and dL/dx (with -0 normalised to 0). */
function run(q: Quantizer, x: Tensor, g: Tensor): { y: number[]; dx: number[] } {
  for (const p of q.parameters()) p.grad = null;
  const xl = leaf(x);
  const y = q.apply(xl);
  backward(sum(mul(y, g)));
  return { y: Array.from(y.f32()), dx: Array.from(xl.grad!.f32(), (v) => v + 0) };
}

const gradOf = (t: Tensor): number[] => Array.from(t.grad!.f32(), (v) => v + 0);
const setValues = (t: Tensor, v: number[]): void => (t.storage as Float32Array).set(v);
const kernel = (spec: string | QuantizerConfig, channels: number): Quantizer => createQuantizer(spec, { role: 'kernel', channels });

// ---------------------------------------------------------------- SA-BNN (reconstruction)

const W = tensor([0.5, -1.5, 1.0, -0.2, 0.4, 0.6], [2, 3]);
const G = tensor([1, 2, 3, 4, 5, 6], [2, 3]);

test('sabnn_sign A: forward α_i·sign(W) with detached α = mean|W_i|; backward c(b)·G·1[|W|<=1]', () => {
  const q = kernel({ alias: 'sabnn_sign', variant: 'A', rho: 0.5, tauPlus: 2 }, 2);
  assert.equal(q.parameters().length, 0);
  const { y, dx } = run(q, W, G);
  assertClose(y, [1, -1, 1, -0.4, 0.4, 0.4], 1e-6, 0, 'forward');
  // c(+1) = tauPlus = 2, c(−1) = rho·tauPlus = 1; W = −1.5 is clipped
  assert.deepEqual(dx, [2 * 1, 0, 2 * 3, 1 * 4, 2 * 5, 2 * 6]);
});

test('sabnn_sign A: the gradient coefficient differs between the two states (rho ≠ 1); rho = 1 is the plain STE', () => {
  const w = tensor([0.3, -0.3, 0], [1, 3]); // states +1, −1 and (sign(0) = +1) +1
  const g = tensor([1, 1, 1], [1, 3]);
  const def = run(kernel({ alias: 'sabnn_sign', variant: 'A' }, 1), w, g).dx; // rho 0.8, tauPlus 1
  assertClose(def, [1, 0.8, 1], 1e-7, 0, 'default coefficients');
  assert.notEqual(def[0], def[1]);
  const r2 = run(kernel({ alias: 'sabnn_sign', variant: 'A', rho: 2, tauPlus: 0.5 }, 1), w, g).dx;
  assert.deepEqual(r2, [0.5, 1, 0.5]);
  assert.equal(r2[1]! / r2[0]!, 2);
  const same = run(kernel({ alias: 'sabnn_sign', variant: 'A', rho: 1 }, 1), w, g).dx;
  assert.deepEqual(same, [1, 1, 1]);
});

test('sabnn_sign B: lazy init τ± = mean|W_i|, forward ±τ, kept after a state-dict load', () => {
  const q = kernel('sabnn_sign', 2) as SabnnSign;
  assert.equal(q.variant, 'B');
  assert.equal(q.stateDict().get('initialized')!.item(), 0);
  const { y } = run(q, W, G);
  assertClose(Array.from(q.tauPlusParam!.f32()), [1, 0.4], 1e-6, 0, 'τ+ init');
  assertClose(Array.from(q.tauMinusParam!.f32()), [1, 0.4], 1e-6, 0, 'τ− init');
  assert.equal(q.stateDict().get('initialized')!.item(), 1);
  assertClose(y, [1, -1, 1, -0.4, 0.4, 0.4], 1e-6, 0, 'forward at init');
  // a second quantizer that loads this state must not re-initialise from the W it sees
  setValues(q.tauPlusParam!, [2, 0.5]);
  setValues(q.tauMinusParam!, [1, 0.25]);
  const q2 = kernel('sabnn_sign', 2) as SabnnSign;
  q2.loadStateDict(q.stateDict());
  assert.deepEqual(run(q2, W, G).y, [2, -1, 2, -0.25, 0.5, 0.5]);
  // explicit init option
  const q3 = kernel({ alias: 'sabnn_sign', init: 0.25 }, 2) as SabnnSign;
  assert.deepEqual(run(q3, W, G).y, [0.25, -0.25, 0.25, -0.25, 0.25, 0.25]);
  assert.deepEqual(q3.config(), { alias: 'sabnn_sign', variant: 'B', clipValue: 1, init: 0.25 });
});

test('sabnn_sign B: dW = τ_b·G·1[|W|<=1], dτ+ = Σ_{W>=0} G, dτ− = −Σ_{W<0} G (closed form and finite differences)', () => {
  const q = kernel({ alias: 'sabnn_sign', init: 1 }, 2) as SabnnSign;
  setValues(q.tauPlusParam!, [2, 0.5]);
  setValues(q.tauMinusParam!, [1, 0.25]);
  const { y, dx } = run(q, W, G);
  assert.deepEqual(y, [2, -1, 2, -0.25, 0.5, 0.5]);
  assert.deepEqual(dx, [2 * 1, 0, 2 * 3, 0.25 * 4, 0.5 * 5, 0.5 * 6]);
  assert.deepEqual(gradOf(q.tauPlusParam!), [1 + 3, 5 + 6]);
  assert.deepEqual(gradOf(q.tauMinusParam!), [-2, -4]); // the clipped W = −1.5 still counts for τ−
  // the forward is linear in τ: finite differences agree
  const wl = leaf(W);
  paramGradcheck(() => q.apply(wl), [q.tauPlusParam!, q.tauMinusParam!]);
  // stored τ is used through |·|: a negative stored value acts as its magnitude, gradient flipped
  setValues(q.tauPlusParam!, [-2, 0.5]);
  const r = run(q, W, G);
  assert.deepEqual(r.y, [2, -1, 2, -0.25, 0.5, 0.5]);
  assert.deepEqual(gradOf(q.tauPlusParam!), [-4, 11]);
});

test('sabnn_sign: config validation', () => {
  assert.throws(() => kernel({ alias: 'sabnn_sign', variant: 'C' }, 2), /sabnn_sign variant: expected "A" or "B"/);
  assert.throws(() => kernel({ alias: 'sabnn_sign', variant: 'A', rho: 0 }, 2), /sabnn_sign rho/);
  assert.throws(() => kernel('sabnn_sign', 3).apply(W), /sabnn_sign: expected a kernel with 3 output channels/);
  assert.deepEqual(kernel({ alias: 'sabnn_sign', variant: 'A' }, 2).config(), { alias: 'sabnn_sign', variant: 'A', rho: 0.8, tauPlus: 1, clipValue: 1 });
});

// ---------------------------------------------------------------- AdaBin weights

test('adabin_weight: forward values {β−α, β+α} per channel (population std), constant channel finite', () => {
  const w = tensor([1, 2, 3, 6, -1, -1, 1, 1], [2, 4]);
  const y = kernel('adabin_weight', 2).apply(w).f32();
  const s0 = Math.sqrt((4 + 1 + 0 + 9) / 4); // channel 0: β = 3; channel 1: β = 0, α = 1
  assertClose(Array.from(y), [3 - s0, 3 - s0, 3 + s0, 3 + s0, -1, -1, 1, 1], 1e-6, 1e-6, 'forward');
  const c = kernel('adabin_weight', 1).apply(tensor([2, 2, 2], [1, 3])).f32();
  assert.ok(c.every((v) => Number.isFinite(v) && Math.abs(v - 2) < 1e-5), `constant channel: ${Array.from(c)}`);
});

/**
 * Closed form of dL/dW for L = Σ_j g_j·W_b,j on one channel of M weights (derived by hand):
 * with U = (W − β)/α, B = sign(U), s = k·t·(1 − tanh²(tU)),
 *   dL/dW_l = g_l·s_l − mean_j(g_j·s_j) + (U_l/M)·(Σ_j g_j·B_j − Σ_j g_j·s_j·U_j) + mean_j g_j.
 * (The detached-statistics gradient would be g_l·s_l·… only: the other terms are the mean/std paths.)
 */
function adabinClosedForm(w: number[], g: number[], t: number, k: number, detached = false): number[] {
  const M = w.length;
  const beta = w.reduce((a, b) => a + b, 0) / M;
  const alpha = Math.sqrt(w.reduce((a, b) => a + (b - beta) ** 2, 0) / M);
  const u = w.map((v) => (v - beta) / alpha);
  const b = u.map((v) => (v >= 0 ? 1 : -1));
  const s = u.map((v) => k * t * (1 - Math.tanh(t * v) ** 2));
  if (detached) return g.map((gj, j) => gj * s[j]!);
  const meanGs = g.reduce((a, gj, j) => a + gj * s[j]!, 0) / M;
  const meanG = g.reduce((a, gj) => a + gj, 0) / M;
  const gB = g.reduce((a, gj, j) => a + gj * b[j]!, 0);
  const gsU = g.reduce((a, gj, j) => a + gj * s[j]! * u[j]!, 0);
  return w.map((_, l) => g[l]! * s[l]! - meanGs + (u[l]! / M) * (gB - gsU) + meanG);
}

test('adabin_weight: full gradient through mean/std (not detached) and EDE matches the closed form', () => {
  const w = randTensor([3, 5], 7, -1, 1);
  const g = randTensor([3, 5], 8, -1, 2);
  for (const epoch of [null, 0, 5, 9]) {
    const q = kernel('adabin_weight', 3) as AdaBinWeight;
    if (epoch !== null) q.onEpochStart(epoch, 10);
    const t = q.t.item(), k = q.k.item();
    const { dx } = run(q, w, g);
    const wv = Array.from(w.f32()), gv = Array.from(g.f32());
    const expect: number[] = [];
    for (let c = 0; c < 3; c++) expect.push(...adabinClosedForm(wv.slice(c * 5, c * 5 + 5), gv.slice(c * 5, c * 5 + 5), t, k));
    assertClose(dx, expect, 1e-4, 1e-3, `dW (epoch ${epoch})`);
    // the statistics' paths matter: with α, β detached the gradient would be g·s only
    const detached: number[] = [];
    for (let c = 0; c < 3; c++) detached.push(...adabinClosedForm(wv.slice(c * 5, c * 5 + 5), gv.slice(c * 5, c * 5 + 5), t, k, true));
    assert.ok(dx.some((e, i) => Math.abs(e - detached[i]!) > 1e-2), `epoch ${epoch}: gradient equals the detached one`);
  }
});

test('adabin_weight: the fused op equals the op-by-op composition (values to the last bit of the statistics, gradients to rounding)', () => {
  for (const shape of [[7], [4, 9], [16, 8, 3, 3], [3, 1, 1, 1]]) {
    for (const [t, k] of [[0.1, 10], [1e-3, 1000], [1, 1], [10, 1]]) {
      const w = randTensor(shape, shape.length + 20, -0.3, 0.5);
      // A constant channel (variance floored) where there is more than one channel.
      if (shape.length > 1 && shape[0]! > 2) (w.storage as Float32Array).fill(0.125, 0, w.size / shape[0]!);
      const g = randTensor(shape, shape.length + 30, -1, 1);
      const grads = (f: (x: Tensor) => Tensor) => {
        const wl = leaf(w);
        const y = f(wl);
        backward(sum(mul(y, g)));
        return { y: Array.from(y.f32()), dw: Array.from(wl.grad!.f32()) };
      };
      const fused = grads((x) => adabinWeightFused(x, t, k));
      const ref = grads((x) => adabinEqualize(x, (u) => edeSign(u, t, k)));
      const what = `[${shape}] t=${t} k=${k}`;
      // The composition takes mean and variance in float32 steps, the fused op in float64: the two
      // output values per channel agree to a few float32 ulp.
      assertClose(fused.y, ref.y, 1e-6, 4e-7, `${what}: values`);
      // Gradients: float32 intermediates (U, the EDE factor, each op's output) against float64;
      // the largest difference measured was 1.4e-7 relative (|dW| up to ~7 at t = 10).
      assertClose(fused.dw, ref.dw, 2e-6, 2e-6, `${what}: dW`);
    }
  }
});

test('adabin_weight: equalization with a smooth stand-in for sign passes gradcheck (mean/std paths)', () => {
  gradcheck((w) => adabinEqualize(w, (u) => tanh(u)), [randTensor([3, 5], 11, -1, 1)]);
  gradcheck((w) => adabinEqualize(w, (u) => tanh(mul(u, 0.5))), [randTensor([2, 2, 3], 12, -2, 2)]);
});

test('adabin_weight: EDE schedule t/k at epochs 0, E/2, E−1 (and defaults before any epoch)', () => {
  const q = kernel('adabin_weight', 1) as AdaBinWeight;
  assertClose([q.t.item(), q.k.item()], [0.1, 10], 1e-7, 1e-6, 'defaults');
  const E = 8;
  q.onEpochStart(0, E);
  assertClose([q.t.item(), q.k.item()], [1e-3, 1e3], 0, 1e-6, 'epoch 0');
  q.onEpochStart(E / 2, E);
  assertClose([q.t.item(), q.k.item()], [0.1, 10], 0, 1e-6, 'epoch E/2');
  q.onEpochStart(E - 1, E);
  assertClose([q.t.item(), q.k.item()], [10 ** 0.5, 1], 0, 1e-6, 'epoch E-1');
  assert.deepEqual(edeSchedule(E - 1, E), { t: 10 ** (-3 + (4 * 7) / 8), k: 1 });
  // t/k are buffers: they travel with the state dict
  const q2 = kernel('adabin_weight', 1);
  q2.loadStateDict(q.stateDict());
  assertClose([q2.stateDict().get('t')!.item(), q2.stateDict().get('k')!.item()], [10 ** 0.5, 1], 0, 1e-6, 'loaded');
  // progressive: false keeps the module defaults
  const fixed = kernel({ alias: 'adabin_weight', progressive: false }, 1) as AdaBinWeight;
  fixed.onEpochStart(E - 1, E);
  assertClose([fixed.t.item(), fixed.k.item()], [0.1, 10], 1e-7, 1e-6, 'not progressive');
});

// ---------------------------------------------------------------- AdaBin activations

test('adabin_act: code and paper forms — outputs and x/α/β gradients vs hand-computed values', () => {
  const x = tensor([-3, 0, 0.5, 1.5, 2, 4], [1, 6]);
  const g = tensor([1, 2, 3, 4, 5, 6], [1, 6]);
  // α = 2, β = 0.5: V = [-1.75, -0.25, 0, 0.5, 0.75, 1.75], Ba = [-1,-1,1,1,1,1],
  // ApproxSign'(V) = [0, 1.5, 2, 1, 0.5, 0]; Σg = 21, Σg·Ba = 15, Σg·A' = 15.5, Σg·A'·V = 3.125
  const cases = [
    { form: 'code', y: [-1, -1, 3, 3, 3, 3], dAlpha: 15 + 0.5 * 21 - 3.125, dBeta: 2 * 21 - 15.5 },
    { form: 'paper', y: [-1.5, -1.5, 2.5, 2.5, 2.5, 2.5], dAlpha: 15 - 3.125, dBeta: 21 - 15.5 },
  ];
  for (const c of cases) {
    const q = createQuantizer({ alias: 'adabin_act', form: c.form }, { role: 'input', channels: 6 });
    const sd = q.stateDict();
    assert.deepEqual([sd.get('alpha')!.item(), sd.get('beta')!.item()], [1, 0]); // init
    setValues(sd.get('alpha')!, [2]);
    setValues(sd.get('beta')!, [0.5]);
    const { y, dx } = run(q, x, g);
    assert.deepEqual(y, c.y, c.form);
    assert.deepEqual(dx, [0, 3, 6, 4, 2.5, 0], c.form);
    assertClose(gradOf(sd.get('alpha')!), [c.dAlpha], 1e-5, 1e-6, `${c.form} dα`);
    assertClose(gradOf(sd.get('beta')!), [c.dBeta], 1e-5, 1e-6, `${c.form} dβ`);
  }
});

test('adabin_act: the forms agree at α = 1, differ elsewhere; sign(0) = +1; one scalar pair per layer', () => {
  const x = randTensor([2, 3, 2, 2], 5, -2, 2);
  const code = createQuantizer('adabin_act', { role: 'input', channels: 3 });
  const paper = createQuantizer({ alias: 'adabin_act', form: 'paper' }, { role: 'input', channels: 3 });
  assert.deepEqual(code.stateDict().get('alpha')!.shape, [1]);
  setValues(code.stateDict().get('beta')!, [0.3]);
  setValues(paper.stateDict().get('beta')!, [0.3]);
  assert.deepEqual(Array.from(code.apply(x).f32()), Array.from(paper.apply(x).f32()));
  setValues(code.stateDict().get('alpha')!, [0.5]);
  setValues(paper.stateDict().get('alpha')!, [0.5]);
  assert.notDeepEqual(Array.from(code.apply(x).f32()), Array.from(paper.apply(x).f32()));
  assert.deepEqual(Array.from(createQuantizer('adabin_act', { role: 'input', channels: 1 }).apply(tensor([0, -0.001], [2, 1])).f32()), [1, -1]);
  assert.throws(() => createQuantizer({ alias: 'adabin_act', form: 'x' }, { role: 'input', channels: 1 }), /adabin_act form/);
  assert.throws(() => createQuantizer('adabin_act', { role: 'kernel', channels: 1 }), /expected use as input quantizer/);
});
