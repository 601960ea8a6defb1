import '../src/index.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Tensor, tensor } from '../src/core/tensor.js';
import { OnebitError } from '../src/core/errors.js';
import {
  Adam, AdamW, SGD, constantLr, cosineLr, createOptimizer, linearLr, scheduleFromJSON, stepLr, warmup,
  type Optimizer, type OptimizerState,
} from '../src/optim/index.js';
import { assertClose } from './util/gradcheck.js';

const param = (vals: number[]): Tensor => {
  const p = tensor(vals);
  p.requiresGrad = true;
  return p;
};
const data = (p: Tensor): number[] => Array.from(p.storage as Float32Array);
/** Run `n` steps with the same gradient values each time; returns the parameter values after each step. */
function run(opt: Optimizer, p: Tensor, grad: number[], n: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < n; i++) {
    p.grad = tensor(grad);
    opt.step();
    out.push(data(p));
  }
  return out;
}
const close = (a: number[], b: number[], what: string) => assertClose(a, b, 1e-6, 1e-6, what);
/** A deterministic, varying gradient for step s, parameter index j, element i. */
const gradAt = (s: number, j: number, i: number) => Math.sin(1.3 * s + 0.7 * i + 2.1 * j) * (1 + 0.2 * i);

test('SGD: plain steps p ← p − lr·g, by hand', () => {
  const p = param([1, -2]);
  const steps = run(new SGD([p], { lr: 0.1 }), p, [0.5, 1], 2);
  close(steps[0]!, [0.95, -2.1], 'step 1');
  close(steps[1]!, [0.9, -2.2], 'step 2');
});

test('SGD: momentum (first step b = g) and dampening, by hand', () => {
  const p = param([1]);
  // μ = 0.9, g = 0.5: b = 0.5 → 0.95 → 1.355; p = 0.95, 0.855, 0.7195
  close(run(new SGD([p], { lr: 0.1, momentum: 0.9 }), p, [0.5], 3).flat(), [0.95, 0.855, 0.7195], 'momentum');
  // τ = 0.5: b₁ = g = 0.5 (no dampening on the first step), b₂ = 0.9·0.5 + 0.5·0.5 = 0.7
  const q = param([1]);
  close(run(new SGD([q], { lr: 0.1, momentum: 0.9, dampening: 0.5 }), q, [0.5], 2).flat(), [0.95, 0.88], 'dampening');
});

test('SGD: nesterov uses g + μ·b, and needs momentum', () => {
  const p = param([1]);
  // b₁ = 0.5, d = 0.5 + 0.45 = 0.95 → 0.905; b₂ = 0.95, d = 0.5 + 0.855 = 1.355 → 0.7695
  close(run(new SGD([p], { lr: 0.1, momentum: 0.9, nesterov: true }), p, [0.5], 2).flat(), [0.905, 0.7695], 'nesterov');
  assert.throws(() => new SGD([param([1])], { lr: 0.1, nesterov: true }), (e: Error) =>
    e instanceof OnebitError && /nesterov/.test(e.message) && /momentum > 0/.test(e.message));
});

test('SGD: weight decay is L2 added to the gradient, by hand', () => {
  const p = param([1]);
  // d = 0.5 + 0.1·1 = 0.6 → 0.94; d = 0.5 + 0.094 = 0.594 → 0.8806
  close(run(new SGD([p], { lr: 0.1, weightDecay: 0.1 }), p, [0.5], 2).flat(), [0.94, 0.8806], 'weight decay');
});

test('SGD: matches the torch.optim.SGD pseudo-code over varying gradients', () => {
  const init = [[0.3, -1.2, 2], [0.7]];
  const ps = init.map(param);
  const opt = new SGD(ps, { lr: 0.05, momentum: 0.8, nesterov: true, weightDecay: 0.01 });
  const ref = init.map((v) => [...v]);
  const buf = init.map((v) => v.map(() => 0));
  for (let s = 1; s <= 6; s++) {
    ps.forEach((p, j) => { p.grad = tensor(init[j]!.map((_, i) => gradAt(s, j, i))); });
    opt.step();
    ref.forEach((r, j) => r.forEach((x, i) => {
      let g = gradAt(s, j, i) + 0.01 * x;
      buf[j]![i] = s === 1 ? g : 0.8 * buf[j]![i]! + g;
      g = g + 0.8 * buf[j]![i]!;
      r[i] = x - 0.05 * g;
    }));
    ps.forEach((p, j) => close(data(p), ref[j]!, `step ${s} param ${j}`));
  }
});

test('Adam: first steps move by lr·sign(g) with constant g, by hand', () => {
  const p = param([1, -3]);
  // m̂ = g and v̂ = g² at every step for a constant g, so each step is lr·g/|g| (up to ε)
  const steps = run(new Adam([p], { lr: 0.1 }), p, [0.5, -2], 2);
  close(steps[0]!, [0.9, -2.9], 'step 1');
  close(steps[1]!, [0.8, -2.8], 'step 2');
});

/** torch.optim.Adam / AdamW documentation pseudo-code, in float64. */
function adamRef(x: number[], grads: (s: number, i: number) => number, n: number, o: { lr: number; b1: number; b2: number; eps: number; wd: number; decoupled: boolean }) {
  const p = [...x], m = x.map(() => 0), v = x.map(() => 0);
  for (let t = 1; t <= n; t++) {
    for (let i = 0; i < p.length; i++) {
      let g = grads(t, i);
      if (o.decoupled) p[i] = p[i]! - o.lr * o.wd * p[i]!;
      else g += o.wd * p[i]!;
      m[i] = o.b1 * m[i]! + (1 - o.b1) * g;
      v[i] = o.b2 * v[i]! + (1 - o.b2) * g * g;
      const mh = m[i]! / (1 - o.b1 ** t), vh = v[i]! / (1 - o.b2 ** t);
      p[i] = p[i]! - (o.lr * mh) / (Math.sqrt(vh) + o.eps);
    }
  }
  return p;
}

test('Adam (L2) and AdamW (decoupled) match the PyTorch formulas over varying gradients', () => {
  const x = [0.5, -1.5, 2.5];
  for (const decoupled of [false, true]) {
    const p = param(x);
    const opts = { lr: 0.02, betas: [0.8, 0.95] as const, eps: 1e-6, weightDecay: 0.3 };
    const opt = decoupled ? new AdamW([p], opts) : new Adam([p], opts);
    for (let s = 1; s <= 5; s++) {
      p.grad = tensor(x.map((_, i) => gradAt(s, 0, i)));
      opt.step();
      const ref = adamRef(x, (t, i) => gradAt(t, 0, i), s, { lr: 0.02, b1: 0.8, b2: 0.95, eps: 1e-6, wd: 0.3, decoupled });
      close(data(p), ref, `${opt.kind} step ${s}`);
    }
  }
});

test('AdamW: default weight decay 1e-2 shrinks p before the Adam step, by hand', () => {
  const p = param([1]);
  // p ← 1·(1 − 0.1·0.01) = 0.999, then − lr·sign(g) = 0.899
  close(run(new AdamW([p], { lr: 0.1 }), p, [0.5], 1)[0]!, [0.899], 'adamw');
  const q = param([1]);
  close(run(new Adam([q], { lr: 0.1 }), q, [0.5], 1)[0]!, [0.9], 'adam has no default decay');
});

test('step skips parameters without a gradient; zeroGrad clears every gradient', () => {
  const a = param([1]), b = param([2]);
  const opt = new SGD([a, b], { lr: 0.1 });
  a.grad = tensor([1]);
  opt.step();
  assert.deepEqual([data(a)[0], data(b)[0]], [Math.fround(0.9), 2]);
  opt.zeroGrad();
  assert.equal(a.grad, null);
  assert.equal(b.grad, null);
  assert.equal(opt.stepCount, 1);
});

test('parameter groups: own lr/options with fallback to the defaults, lr factor keeps ratios', () => {
  const a = param([1]), b = param([1]);
  const opt = new SGD([{ params: [a], lr: 0.1 }, { params: [b], momentum: 0.5 }], { lr: 0.01 });
  assert.deepEqual(opt.groups.map((g) => [g.lr, g.momentum]), [[0.1, 0], [0.01, 0.5]]);
  a.grad = tensor([1]);
  b.grad = tensor([1]);
  opt.step();
  close([...data(a), ...data(b)], [0.9, 0.99], 'per-group lr');
  opt.setLrFactor(0.5);
  assert.deepEqual(opt.groups.map((g) => g.lr), [0.05, 0.005]);
  assert.equal(opt.lr, 0.05);
  opt.setLr(0.2);
  close(opt.groups.map((g) => g.lr), [0.2, 0.02], 'setLr keeps ratios');
});

test('bad options and parameters fail with one clear error', () => {
  const bad: [() => unknown, RegExp][] = [
    [() => new SGD([param([1])], { lr: -1 }), /lr to be a finite number ≥ 0, but got -1/],
    [() => new Adam([param([1])], { betas: [0.9, 1] }), /betas\[1\].*< 1/],
    [() => new SGD([{ params: [param([1])], weight_decay: 1 } as never]), /"weight_decay" in group 0/],
    [() => { const p = param([1]); return new SGD([{ params: [p] }, { params: [p] }]); }, /only one group/],
    [() => new Adam([]), /non-empty list/],
  ];
  for (const [f, re] of bad) assert.throws(f, (e: Error) => e instanceof OnebitError && re.test(e.message), String(re));
});

/** Parameters, grads and a fresh optimizer for the resume test. */
function setupResume(kind: 'sgd' | 'adam' | 'adamw', init?: Float32Array[]) {
  const ps = (init ?? [Float32Array.of(0.4, -1, 3), Float32Array.of(0.25)]).map((v) => param(Array.from(v)));
  const groups = [{ params: [ps[0]!], lr: 0.03 }, { params: [ps[1]!] }];
  const opt = kind === 'sgd' ? new SGD(groups, { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-3 })
    : createOptimizer(kind, groups, { lr: 0.01, weightDecay: 0.05 });
  const stepAt = (s: number) => {
    opt.setLrFactor(cosineLr().factor(s, 10));
    ps.forEach((p, j) => { p.grad = tensor(Array.from(p.storage, (_, i) => gradAt(s, j, i))); });
    opt.step();
  };
  return { ps, opt, stepAt };
}
const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

test('stateDict → fresh optimizer → loadStateDict continues bit-identically', () => {
  for (const kind of ['sgd', 'adam', 'adamw'] as const) {
    const full = setupResume(kind);
    for (let s = 0; s < 10; s++) full.stepAt(s);
    const part = setupResume(kind);
    for (let s = 0; s < 4; s++) part.stepAt(s);
    const sd = part.opt.stateDict();
    // through JSON, as a checkpoint stores it
    const saved = { ...JSON.parse(JSON.stringify({ kind: sd.kind, step: sd.step, groups: sd.groups })), buffers: sd.buffers };
    const savedParams = part.ps.map((p) => Float32Array.from(p.storage as Float32Array));
    const savedBuffers = Object.values(sd.buffers).map((b) => Float32Array.from(b));
    part.stepAt(4); // stateDict is a copy: stepping on does not change it
    Object.values(sd.buffers).forEach((b, i) => assert.ok(bytes(b).equals(bytes(savedBuffers[i]!))));
    const fresh = setupResume(kind, savedParams);
    fresh.opt.loadStateDict(saved);
    assert.equal(fresh.opt.stepCount, 4);
    for (let s = 4; s < 10; s++) fresh.stepAt(s);
    fresh.ps.forEach((p, j) => assert.ok(bytes(p.storage as Float32Array).equals(bytes(full.ps[j]!.storage as Float32Array)), `${kind} param ${j}`));
    const a = fresh.opt.stateDict(), b = full.opt.stateDict();
    assert.deepEqual(Object.keys(a.buffers).sort(), Object.keys(b.buffers).sort());
    for (const k of Object.keys(a.buffers)) assert.ok(bytes(a.buffers[k]!).equals(bytes(b.buffers[k]!)), `${kind} buffer ${k}`);
    assert.deepEqual(a.groups, b.groups);
  }
});

test('loadStateDict rejects a wrong kind, group count or buffer size, and leaves the optimizer untouched', () => {
  const { opt: adam, stepAt } = setupResume('adam');
  stepAt(0);
  const good = adam.stateDict();
  const sgd = setupResume('sgd').opt;
  const cases: [Optimizer, OptimizerState, RegExp][] = [
    [sgd, good, /sgd\.loadStateDict: expected a state of kind "sgd", but got kind "adam"/],
    [adam, { ...good, groups: good.groups.slice(0, 1) }, /expected 2 parameter group\(s\), but got 1/],
    [adam, { ...good, buffers: { ...good.buffers, '0.0.m': new Float32Array(2) } }, /buffer "0\.0\.m" with 3 elements, but got 2/],
    [adam, { ...good, buffers: { ...good.buffers, '0.7.m': new Float32Array(3) } }, /"0\.7\.m"/],
    [adam, { ...good, buffers: { '0.0.m': good.buffers['0.0.m']! } }, /expected buffer "0\.0\.v", but got none/],
    [adam, { ...good, step: -1 }, /step to be an integer ≥ 0/],
    [adam, { ...good, groups: [{ ...good.groups[0]!, betas: 0.9 }, good.groups[1]!] }, /option "betas"/],
  ];
  const before = adam.stateDict();
  for (const [opt, sd, re] of cases) assert.throws(() => opt.loadStateDict(sd), (e: Error) => e instanceof OnebitError && re.test(e.message), String(re));
  assert.deepEqual(adam.stateDict(), before);
});

test('schedules: factor at start, middle and end', () => {
  const T = 100;
  assert.deepEqual([0, 50, 99].map((s) => constantLr().factor(s, T)), [1, 1, 1]);
  const cos = cosineLr({ minFactor: 0.1 });
  close([0, 50, 100].map((s) => cos.factor(s, T)), [1, 0.55, 0.1], 'cosine');
  close([cosineLr().factor(25, T)], [(1 + Math.SQRT1_2) / 2], 'cosine quarter');
  close([0, 50, 99, 100, 120].map((s) => linearLr().factor(s, T)), [1, 0.5, 0.01, 0, 0], 'linear');
  close([0, 29, 30, 60, 99].map((s) => stepLr({ stepSize: 30, gamma: 0.5 }).factor(s, T)), [1, 1, 0.5, 0.25, 0.125], 'step');
  close([9, 10].map((s) => stepLr({ stepSize: 10 }).factor(s, T)), [1, 0.1], 'step default gamma');
});

test('warmup: linear ramp over the first steps, then the inner schedule on the rest', () => {
  const w = warmup(linearLr(), { steps: 4 });
  // ramp (s + 1)/4, then linear over the remaining 96 steps: 1 − (s − 4)/96
  close([0, 1, 3, 4, 52, 100].map((s) => w.factor(s, 100)), [0.25, 0.5, 1, 1, 0.5, 0], 'warmup+linear');
  const wc = warmup(cosineLr(), { steps: 10 });
  close([4, 10, 55].map((s) => wc.factor(s, 100)), [0.5, 1, 0.5], 'warmup+cosine');
  close([0, 1].map((s) => warmup(constantLr(), { steps: 5 }).factor(s, 3)), [0.2, 0.4], 'warm-up longer than training');
});

test('schedules: JSON round trip, argument checks and unknown kinds', () => {
  const all = [constantLr(), cosineLr({ minFactor: 0.2 }), linearLr(), stepLr({ stepSize: 7, gamma: 0.3 }), warmup(warmup(stepLr({ stepSize: 3 }), { steps: 2 }), { steps: 5 })];
  for (const s of all) {
    const back = scheduleFromJSON(JSON.parse(JSON.stringify(s)));
    assert.deepEqual(back.toJSON(), s.toJSON());
    for (const step of [0, 3, 6, 9, 20]) assert.equal(back.factor(step, 20), s.factor(step, 20));
  }
  const bad: [() => unknown, RegExp][] = [
    [() => stepLr({ stepSize: -3 }), /stepSize to be an integer ≥ 1, but got -3/],
    [() => stepLr({ stepSize: 3, gamma: 0 }), /gamma to be a finite number > 0/],
    [() => warmup(constantLr(), { steps: 0 }), /steps to be an integer ≥ 1/],
    [() => cosineLr({ minFactor: -0.5 }), /minFactor/],
    [() => linearLr().factor(1, 0), /totalSteps to be an integer ≥ 1/],
    [() => scheduleFromJSON({ kind: 'exp' }), /among constant, cosine, linear, step, warmup, but got "exp"/],
  ];
  for (const [f, re] of bad) assert.throws(f, (e: Error) => e instanceof OnebitError && re.test(e.message), String(re));
});

test('createOptimizer: builds each kind, rejects unknown names and foreign options', () => {
  for (const name of ['sgd', 'adam', 'adamw'] as const) assert.equal(createOptimizer(name, [param([1])], { lr: 0.1 }).kind, name);
  assert.throws(() => createOptimizer('rmsprop' as never, [param([1])]), /among sgd, adam, adamw, but got "rmsprop"/);
  assert.throws(() => createOptimizer('adam', [param([1])], { momentum: 0.9 }), /createOptimizer\('adam'\).*"momentum"/);
});

test('end to end: SGD and Adam minimise a quadratic with a schedule', () => {
  const c = [3, -1, 0.5];
  const loss = (p: Tensor) => data(p).reduce((s, x, i) => s + 2 * (x - c[i]!) ** 2, 0);
  for (const make of [(p: Tensor) => new SGD([p], { lr: 0.05, momentum: 0.9 }), (p: Tensor) => new Adam([p], { lr: 0.2 })]) {
    const p = param([0, 0, 0]);
    const opt = make(p);
    const sched = warmup(cosineLr(), { steps: 10 });
    const l0 = loss(p);
    for (let s = 0; s < 300; s++) {
      opt.setLrFactor(sched.factor(s, 300));
      p.grad = tensor(data(p).map((x, i) => 4 * (x - c[i]!))); // ∇ of 2(x − c)²
      opt.step();
      opt.zeroGrad();
    }
    assert.ok(loss(p) < 1e-4 * l0, `${opt.kind}: loss ${l0} → ${loss(p)}`);
    assertClose(data(p), c, 1e-2, 0, opt.kind);
  }
});
