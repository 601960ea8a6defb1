import '../src/index.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tensor } from '../src/core/tensor.js';
import { manualSeed, Rng } from '../src/core/rng.js';
import { backward } from '../src/autograd/tape.js';
import { mul } from '../src/ops/elementwise.js';
import { sum } from '../src/ops/reduce.js';
import { createQuantizer, RebnnWeight, type ShapedQuantizerContext } from '../src/quantizers/index.js';
import { BinaryLinear } from '../src/nn/binary.js';
import { SGD } from '../src/optim/sgd.js';
import { decodeCheckpoint, encodeCheckpoint } from '../src/train/checkpoint.js';
import { assertClose, paramGradcheck } from './util/gradcheck.js';

// Tiny kernel: 2 output channels × 3 weights. c0 = 1 unless stated; α = |s| = [0.5, 2] with s1 < 0.
const CTX: ShapedQuantizerContext = { role: 'kernel', channels: 2, shape: [2, 3] };
const S = [0.5, -2];
// Step 1 weights: signs [+,-,+ | -,+,-].
const W1 = [0.5, -1.5, 0.25, -0.25, 0.75, -2];
// Step 2 weights: channel 0 flips its 1st sign (flip 1/3), channel 1 its 1st and 2nd (flip 2/3).
const W2 = [-0.5, -1.5, 0.25, 0.25, -0.75, -2];
// Step 2 gradient dL/dŴ: max|G| = 3e-4 (γ0 = 1/3·3e-4 = 1e-4, inside the clamp) and 1 (γ1 = 2/3 → 2e-4).
const G2 = [3e-4, -1.5e-4, 0, 0.5, -1, 0.25];

const vals = (a: ArrayLike<number>): number[] => Array.from(a, (v) => v + 0);
const close = (a: ArrayLike<number>, b: ArrayLike<number>, what: string): void => assertClose(a, b, 1e-12, 1e-6, what);

/** A rebnn_weight with s = S already set (initialized = 1) and no previous signs yet. */
function make(config: Record<string, unknown> = {}): RebnnWeight {
  const q = createQuantizer({ alias: 'rebnn_weight', ...config }, CTX) as RebnnWeight;
  q.loadStateDict(new Map([['s', Float32Array.from(S)], ['initialized', Float32Array.of(1)], ['prevSign', new Float32Array(6)]]));
  return q;
}

/** Forward + backward of L = Σ G ⊙ q(W); returns dL/dW and dL/ds (grads reset first). */
function step(q: RebnnWeight, w: number[], g: number[]): { dW: number[]; ds: number[] } {
  const W = tensor(w, [2, 3]);
  W.requiresGrad = true;
  q.s.grad = null;
  backward(q.apply(W), tensor(g, [2, 3]));
  return { dW: vals(W.grad!.f32()), ds: vals(q.s.grad!.f32()) };
}

/** Two steps: W1 (prevSign initialised to sign(W1), committed by afterStep), then W2 with G2. */
function twoSteps(q: RebnnWeight): { dW: number[]; ds: number[] } {
  step(q, W1, [1, 2, 3, 4, 5, 6]);
  q.afterStep();
  return step(q, W2, G2);
}

test('rebnn_weight: registered for the kernel role only; config round trip with options', () => {
  assert.deepEqual(createQuantizer('rebnn_weight', { role: 'kernel', channels: 2 }).config(), {
    alias: 'rebnn_weight', c0: 1, gamma: 'adaptive', gammaMin: 1e-5, gammaMax: 2e-4, steClip: true, init: 'mean_abs',
  });
  const c = { alias: 'rebnn_weight', c0: 0.02, gamma: 2e-4, gammaMin: 0, gammaMax: 1e-3, steClip: false, init: 'randn' };
  assert.deepEqual(createQuantizer(c, { role: 'kernel', channels: 2 }).config(), c);
  assert.throws(() => createQuantizer('rebnn_weight', { role: 'input', channels: 2 }), /rebnn_weight: expected use as kernel quantizer/);
  assert.throws(() => createQuantizer({ alias: 'rebnn_weight', gamma: 'constant' }, { role: 'kernel', channels: 2 }), /rebnn_weight gamma/);
  assert.throws(() => createQuantizer({ alias: 'rebnn_weight', init: 'zeros' }, { role: 'kernel', channels: 2 }), /rebnn_weight init/);
  assert.throws(() => createQuantizer({ alias: 'rebnn_weight', steClip: 1 }, { role: 'kernel', channels: 2 }), /rebnn_weight steClip/);
  assert.throws(() => createQuantizer({ alias: 'rebnn_weight', gammaMin: 1e-3 }, { role: 'kernel', channels: 2 }), /gammaMin\/gammaMax/);
  assert.throws(() => createQuantizer('rebnn_weight', { role: 'kernel', channels: 3 }).apply(tensor(W1, [2, 3])), /3 output channels on axis 0/);
});

test('rebnn_weight forward: mean_abs init from the first W, Ŵ = c0·|s|·sign(W), sign(0) = +1', () => {
  const W = tensor([0.5, -1.5, 0, -0.25, 0.75, -2], [2, 3]);
  const q = createQuantizer('rebnn_weight', { role: 'kernel', channels: 2 }) as RebnnWeight;
  assert.deepEqual(vals(q.s.f32()), [0, 0]);
  const y = q.apply(W).f32();
  const a0 = 2 / 3, a1 = 1; // mean|W_i|
  close(y, [a0, -a0, a0, -a1, a1, -a1], 'Ŵ');
  close(q.s.f32(), [a0, a1], 's');
  assert.deepEqual(vals(q.prevSign!.f32()), [1, -1, 1, -1, 1, -1], 'previous signs initialised to sign(W) at the first forward');
  // s is initialised once: a later W does not change it
  q.apply(tensor([4, 4, 4, 4, 4, 4], [2, 3]));
  close(q.s.f32(), [a0, a1], 's after a second forward');
  // c0 = 0.02 (released code): mean_abs init divides by c0 so Ŵ starts at mean|W|·sign(W) ...
  const q2 = createQuantizer({ alias: 'rebnn_weight', c0: 0.02 }, { role: 'kernel', channels: 2 }) as RebnnWeight;
  close(q2.apply(W).f32(), [a0, -a0, a0, -a1, a1, -a1], 'Ŵ (c0 = 0.02)');
  // ... and with s set, Ŵ = 0.02·|s|·sign(W) (negative s uses |s|)
  q2.loadStateDict(new Map([['s', Float32Array.from(S)]]), false);
  close(q2.apply(W).f32(), [0.01, -0.01, 0.01, -0.04, 0.04, -0.04], 'Ŵ (c0 = 0.02, s = [0.5, -2])');
  assert.equal(q2.auxLoss(), 0, 'auxLoss is 0 before any backward');
  assert.equal(q2.lastStats, null);
});

test('rebnn_weight init "randn": s drawn from the seeded global rng (released code)', () => {
  manualSeed(7);
  const q = createQuantizer({ alias: 'rebnn_weight', init: 'randn' }, { role: 'kernel', channels: 2 }) as RebnnWeight;
  const r = new Rng(7);
  close(q.s.f32(), [r.normal(), r.normal()], 's');
  const s = vals(q.s.f32());
  q.apply(tensor(W1, [2, 3])); // not overwritten by a mean|W| init
  assert.deepEqual(vals(q.s.f32()), s);
});

test('rebnn_weight adaptive γ: flip fraction from afterStep-committed signs; clamps at 1e-5 and 2e-4; dW, ds by hand', () => {
  const q = make();
  // Step 1: previous signs = sign(W1) (first forward) → flip 0 → γ = clamp(0) = 1e-5.
  const s1 = step(q, W1, [1, 2, 3, 4, 5, 6]);
  close(q.lastStats!.flip, [0, 0], 'flip step 1');
  close(q.lastStats!.gamma, [1e-5, 1e-5], 'γ step 1');
  // ch0: α=0.5, R = W − 0.5·b = [0, −1, −0.25], mask [1,0,1]: dW = 0.5·G·mask + 1e-5·R
  close(s1.dW.slice(0, 3), [0.5, -1e-5, 1.5 - 2.5e-6], 'dW step 1');
  // backward alone does not commit the signs: the stored ones are still sign(W1)
  assert.deepEqual(vals(q.prevSign!.f32()), [1, -1, 1, -1, 1, -1]);
  q.afterStep();

  // Step 2: W2 differs from sign(W1) in 1/3 (ch0) and 2/3 (ch1) of the signs.
  const { dW, ds } = step(q, W2, G2);
  const st = q.lastStats!;
  close(st.flip, [1 / 3, 2 / 3], 'flip');
  close(st.gradMax, [3e-4, 1], 'max|G|');
  // γ0 = 1/3·3e-4 = 1e-4 (inside [1e-5, 2e-4]); γ1 = 2/3·1 → clamped to 2e-4
  close(st.gamma, [1e-4, 2e-4], 'γ');
  // ch0: α=0.5, b=[−,−,+], Ŵ=[−0.5,−0.5,0.5], R=[0,−1,−0.25], mask [1,0,1]
  //   dW = [0.5·3e-4, 1e-4·(−1), 1e-4·(−0.25)]
  //   dα = (−3e-4 + 1.5e-4 + 0) − 1e-4·(0 + 1 − 0.25) = −2.25e-4; s0 > 0 → ds0 = dα
  // ch1: α=2 (s=−2), b=[+,−,−], Ŵ=[2,−2,−2], R=[−1.75,1.25,0], mask [1,1,0]
  //   dW = [2·0.5 − 2e-4·1.75, 2·(−1) + 2e-4·1.25, 0]
  //   dα = (0.5 + 1 − 0.25) − 2e-4·(−1.75 − 1.25 + 0) = 1.2506; s1 < 0 → ds1 = −1.2506
  close(dW, [1.5e-4, -1e-4, -2.5e-5, 1 - 3.5e-4, -2 + 2.5e-4, 0], 'dW');
  close(ds, [-2.25e-4, -1.2506], 'ds');
  // L_R = 1e-4/2·(0 + 1 + 0.0625) + 2e-4/2·(3.0625 + 1.5625 + 0)
  assert.ok(Math.abs(q.auxLoss() - 5.15625e-4) < 1e-6 * 5.15625e-4, `auxLoss ${q.auxLoss()}`);
  assert.equal(q.lastStats!.reconLoss, q.auxLoss());
  // a second backward before afterStep compares against the same stored signs
  step(q, W2, G2);
  close(q.lastStats!.gamma, [1e-4, 2e-4], 'γ (repeat backward)');
  q.afterStep();
  assert.deepEqual(vals(q.prevSign!.f32()), [-1, -1, 1, 1, -1, -1], 'committed sign(W2)');

  // Step 3: ch0 flips 1/3 again but max|G| = 1.5e-5 → 5e-6 → clamped up to 1e-5; ch1 has no flip → 1e-5.
  step(q, [-0.5, 1.5, 0.25, 0.25, -0.75, -2], [1.5e-5, 0, 0, 1, 1, 1]);
  close(q.lastStats!.flip, [1 / 3, 0], 'flip step 3');
  close(q.lastStats!.gamma, [1e-5, 1e-5], 'γ step 3');
  // same W again after afterStep: nothing flipped
  q.afterStep();
  step(q, [-0.5, 1.5, 0.25, 0.25, -0.75, -2], G2);
  close(q.lastStats!.flip, [0, 0], 'flip with unchanged W');
});

test('rebnn_weight gamma = 2e-4 (the released code\'s constant, from its round_pass bug): γ ignores flips', () => {
  const q = make({ gamma: 2e-4 });
  step(q, W1, [1, 2, 3, 4, 5, 6]);
  close(q.lastStats!.gamma, [2e-4, 2e-4], 'γ at flip 0');
  q.afterStep();
  const { dW, ds } = step(q, W2, G2);
  close(q.lastStats!.flip, [1 / 3, 2 / 3], 'flip (still reported)');
  close(q.lastStats!.gamma, [2e-4, 2e-4], 'γ');
  // ch0: dW = [1.5e-4, 2e-4·(−1), 2e-4·(−0.25)]; dα = −1.5e-4 − 2e-4·0.75 = −3e-4
  close(dW, [1.5e-4, -2e-4, -5e-5, 1 - 3.5e-4, -2 + 2.5e-4, 0], 'dW');
  close(ds, [-3e-4, -1.2506], 'ds');
  // L_R = 1e-4·1.0625 + 1e-4·4.625
  assert.ok(Math.abs(q.auxLoss() - 5.6875e-4) < 1e-6 * 5.6875e-4, `auxLoss ${q.auxLoss()}`);
});

test('rebnn_weight steClip: false drops the 1[|W| <= 1] mask (released code)', () => {
  const { dW, ds } = twoSteps(make({ steClip: false }));
  // masked entries now get α·G: ch0[1] = 0.5·(−1.5e-4) − 1e-4, ch1[2] = 2·0.25 + 0
  close(dW, [1.5e-4, -7.5e-5 - 1e-4, -2.5e-5, 1 - 3.5e-4, -2 + 2.5e-4, 0.5], 'dW');
  close(ds, [-2.25e-4, -1.2506], 'ds (unchanged)');
});

test('rebnn_weight c0 = 0.02: R uses Ŵ = 0.02·α·b, dα carries c0, the STE factor is α (released code)', () => {
  const q = make({ c0: 0.02, gamma: 2e-4 });
  const { dW, ds } = step(q, W2, G2);
  // ch0: Ŵ = [−0.01,−0.01,0.01], R = [−0.49,−1.49,0.24]; dW = 0.5·G·mask + 2e-4·R
  //   dα = 0.02·(−1.5e-4) − 2e-4·0.02·(0.49 + 1.49 + 0.24) = −1.188e-5
  // ch1: Ŵ = [0.04,−0.04,−0.04], R = [0.21,−0.71,−1.96]
  //   dα = 0.02·1.25 − 2e-4·0.02·(0.21 + 0.71 + 1.96) = 0.02498848; s1 < 0 → ds1 = −dα
  close(dW, [1.5e-4 - 9.8e-5, -2.98e-4, 4.8e-5, 1 + 4.2e-5, -2 - 1.42e-4, -3.92e-4], 'dW');
  close(ds, [-1.188e-5, -0.02498848], 'ds');
});

test('rebnn_weight: with γ = 0 the s-gradient is the exact derivative (finite differences)', () => {
  const q = make({ gamma: 0, c0: 0.5 });
  const W = tensor(W2, [2, 3]);
  paramGradcheck(() => q.apply(W), [q.s]);
});

test('rebnn_weight checkpoint: the state dict restores the previous signs, so the next γ is identical', () => {
  const q1 = make();
  step(q1, W1, [1, 2, 3, 4, 5, 6]);
  q1.afterStep();
  const ref = step(q1, W2, G2);
  // save after step 1 (as the trainer would): copy q1's state before step 2 into a fresh quantizer
  const q0 = make();
  step(q0, W1, [1, 2, 3, 4, 5, 6]);
  q0.afterStep();
  const ck = decodeCheckpoint(encodeCheckpoint({ meta: {}, tensors: new Map([...q0.stateDict()].map(([k, t]) => [k, { shape: [...t.shape], data: Float32Array.from(t.f32()) }])) }));
  assert.deepEqual([...ck.tensors.keys()].sort(), ['initialized', 'prevSign', 's']);
  const q2 = createQuantizer('rebnn_weight', CTX) as RebnnWeight;
  q2.loadStateDict(new Map([...ck.tensors].map(([k, t]) => [k, t.data])));
  assert.deepEqual(vals(q2.prevSign!.f32()), [1, -1, 1, -1, 1, -1]);
  const got = step(q2, W2, G2);
  assert.deepEqual(vals(q2.lastStats!.gamma), vals(q1.lastStats!.gamma));
  assert.deepEqual(vals(q2.lastStats!.flip), vals(q1.lastStats!.flip));
  assert.deepEqual(got, ref);
  assert.equal(q2.auxLoss(), q1.auxLoss());
  // without the stored signs, the resumed step would see no flips (γ = 1e-5)
  const fresh = make();
  step(fresh, W2, G2);
  close(fresh.lastStats!.gamma, [1e-5, 1e-5], 'γ without restored signs');
});

test('rebnn_weight without a shape in the context: prevSign is created at the first forward', () => {
  const src = make();
  step(src, W1, [1, 2, 3, 4, 5, 6]);
  src.afterStep();
  const lazy = createQuantizer('rebnn_weight', { role: 'kernel', channels: 2 }) as RebnnWeight;
  assert.equal(lazy.prevSign, null);
  assert.deepEqual([...lazy.stateDict().keys()].sort(), ['initialized', 's']);
  // a strict load of a state that has prevSign fails before the first forward (the documented limitation) ...
  assert.throws(() => lazy.loadStateDict(src.stateDict()), /1 unexpected \(prevSign\)/);
  // ... and works after it
  lazy.apply(tensor(W2, [2, 3]));
  lazy.loadStateDict(src.stateDict());
  step(lazy, W2, G2);
  close(lazy.lastStats!.gamma, [1e-4, 2e-4], 'γ');
  assert.throws(() => lazy.apply(tensor([1, 2, 3, 4], [2, 2])), /stored previous signs/);
});

test('rebnn_weight in a BinaryLinear: SGD steps with the trainer hooks; auxLoss is Σ γ/2·||W − Ŵ||²', () => {
  manualSeed(3);
  const layer = new BinaryLinear(6, 2, { inputQuantizer: null, kernelQuantizer: 'rebnn_weight' });
  const q = layer.kernelQuantizer as RebnnWeight;
  const opt = new SGD(layer.parameters(), { lr: 0.5 });
  const x = tensor([1, -2, 0.5, 3, -1, 2, -0.5, 1, 2, -3, 0.25, 1], [2, 6]);
  const target = tensor([1, -1, -1, 1], [2, 2]);
  for (let t = 0; t < 4; t++) {
    const wBefore = Float32Array.from(layer.weight.f32());
    const y = layer.forward(x);
    const sBefore = Float32Array.from(q.s.f32()); // after the forward: the first one initialises s to mean|W|
    backward(sum(mul(y, target)));
    opt.step();
    opt.zeroGrad();
    const st = q.lastStats!;
    assert.ok(st.gamma.every((g) => g >= 1e-5 && g <= 2e-4), `γ ${Array.from(st.gamma)}`);
    // auxLoss recomputed from the weights and scale the forward used
    let lr = 0;
    for (let i = 0; i < 2; i++) {
      for (let j = 0; j < 6; j++) {
        const w = wBefore[i * 6 + j]!;
        lr += (st.gamma[i]! / 2) * (w - Math.abs(sBefore[i]!) * (w >= 0 ? 1 : -1)) ** 2;
      }
    }
    assert.ok(lr > 0 && Math.abs(q.auxLoss() - lr) <= 1e-6 * lr, `auxLoss ${q.auxLoss()} vs ${lr}`);
    q.afterStep();
    assert.deepEqual(vals(q.prevSign!.f32()), Array.from(wBefore, (v) => (v >= 0 ? 1 : -1)), 'committed the signs the step used');
  }
  assert.ok(layer.stateDict().has('kernelQuantizer.prevSign'));
  assert.ok(layer.parameters().includes(q.s));
});
