import './util/poison_outputs.js';
import '../src/index.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { refBackend } from '../src/backends/ref/index.js';
import { createNativeBackend } from '../src/backends/native/index.js';
import { manualSeed } from '../src/core/rng.js';
import { setBackend, Tensor } from '../src/core/tensor.js';
import { backward, fresh, record } from '../src/autograd/tape.js';
import { sum } from '../src/ops/reduce.js';
import { add, mul } from '../src/ops/elementwise.js';
import { BinaryConv2d, BinaryLinear } from '../src/nn/binary.js';
import { BatchNorm2d } from '../src/nn/layers.js';
import type { Module } from '../src/nn/module.js';
import { assertClose, randTensor } from './util/gradcheck.js';

// Parity of the packed binary forward with the float-simulated forward, on the reference backend
// (the oracle), toggled with ONEBIT_PACKED. Forward values must be identical: both compute
// fl32(s·a_i·count) exactly. Gradients use the same float kernels on the same values.
setBackend(refBackend);

/** t itself, with a backward that returns a fresh copy of the incoming gradient. */
function freshGrad(t: Tensor): Tensor {
  return record(t.detach(), 'freshGrad', [t], (g) => [fresh(new Tensor(Float32Array.from(g.f32()), g.shape))]);
}

/** The layer's output (plus its input, with `residual`: a shortcut) and gradients for a fixed upstream gradient. */
function run(layer: Module & { weight: Tensor }, x: Tensor, packed: boolean, residual: boolean | BatchNorm2d = false): { y: Float32Array; gx: Float32Array; gw: Float32Array } {
  process.env.ONEBIT_PACKED = packed ? '1' : '0';
  try {
    const xl = new Tensor(Float32Array.from(x.f32()), x.shape);
    xl.requiresGrad = true;
    layer.weight.grad = null;
    // With a batch norm: BN(conv(x)) + x, then an op whose gradient is a fresh array (as the next
    // layer's backward gives in a network), so the gradient the batch norm hands the shortcut is
    // one only the tape holds.
    const y = residual instanceof BatchNorm2d ? freshGrad(residual.forwardAdd(layer.forward(xl), xl))
      : residual ? add(layer.forward(xl), xl) : layer.forward(xl);
    backward(sum(mul(y, randTensor([...y.shape], 7, 0.5, 1.5))));
    return { y: Float32Array.from(y.f32()), gx: xl.grad!.f32(), gw: layer.weight.grad!.f32() };
  } finally {
    delete process.env.ONEBIT_PACKED;
  }
}

const convCases: { c: number; o: number; hw: [number, number]; k: number; stride: number; pad: number; padValue: -1 | 0 | 1; kq: string; iq: string }[] = [
  { c: 3, o: 5, hw: [7, 5], k: 3, stride: 1, pad: 1, padValue: 0, kq: 'ste_sign', iq: 'ste_sign' },
  { c: 33, o: 31, hw: [9, 9], k: 3, stride: 2, pad: 1, padValue: 0, kq: 'xnor_sign', iq: 'ste_sign' },
  { c: 64, o: 65, hw: [5, 7], k: 3, stride: 1, pad: 1, padValue: 1, kq: 'xnor_sign', iq: 'approx_sign' },
  { c: 32, o: 16, hw: [8, 8], k: 3, stride: 2, pad: 1, padValue: -1, kq: 'ste_sign', iq: 'ste_sign' },
  { c: 63, o: 33, hw: [6, 6], k: 1, stride: 1, pad: 0, padValue: 0, kq: 'magnitude_aware_sign', iq: 'ste_sign' },
  { c: 16, o: 16, hw: [6, 6], k: 1, stride: 2, pad: 0, padValue: 0, kq: 'sabnn_sign', iq: 'approx_sign' },
];

for (const t of convCases) {
  test(`packed BinaryConv2d forward == float forward: ${JSON.stringify(t)}`, () => {
    manualSeed(1);
    const layer = new BinaryConv2d(t.c, t.o, t.k, { stride: t.stride, padding: t.pad, padValue: t.padValue, kernelQuantizer: t.kq, inputQuantizer: t.iq });
    const x = randTensor([2, t.c, ...t.hw], 3, -1.5, 1.5);
    const f = run(layer, x, false);
    const p = run(layer, x, true);
    assert.deepEqual(Buffer.from(p.y.buffer), Buffer.from(f.y.buffer), 'forward');
    assertClose(p.gx, f.gx, 1e-5, 1e-5, 'dx');
    assertClose(p.gw, f.gw, 1e-4, 1e-5, 'dw');
  });
}

test('packed BinaryLinear forward == float forward (K = 1, 31, 33, 65, 200)', () => {
  for (const k of [1, 31, 33, 65, 200]) {
    for (const kq of ['ste_sign', 'xnor_sign']) {
      manualSeed(k);
      const layer = new BinaryLinear(k, 7, { kernelQuantizer: kq, bias: true });
      const x = randTensor([5, k], k, -1.5, 1.5);
      const f = run(layer, x, false);
      const p = run(layer, x, true);
      assert.deepEqual(Buffer.from(p.y.buffer), Buffer.from(f.y.buffer), `forward k=${k} ${kq}`);
      assertClose(p.gx, f.gx, 1e-5, 1e-5, 'dx');
      assertClose(p.gw, f.gw, 1e-5, 1e-5, 'dw');
    }
  }
});

/** Sets AdaBin-style values: activation scalars, and weights far from their channel mean so the sets are wide. */
function adabinLayer(c: number, o: number, k: number, opts: { stride?: number; padding?: number; dilation?: number; padValue?: -1 | 0 | 1 }, alpha: number, beta: number): BinaryConv2d {
  const layer = new BinaryConv2d(c, o, k, { ...opts, inputQuantizer: 'adabin_act', kernelQuantizer: 'adabin_weight' });
  const sd = layer.inputQuantizer!.stateDict();
  (sd.get('alpha')!.storage as Float32Array)[0] = alpha;
  (sd.get('beta')!.storage as Float32Array)[0] = beta;
  return layer;
}

/** `run` with the backend's binaryConv2d calls counted. */
function runCounting(layer: BinaryConv2d, x: Tensor, packed: boolean, backendUsed: object = refBackend) {
  const be = backendUsed as unknown as { binaryConv2d: (...a: unknown[]) => unknown };
  const orig = be.binaryConv2d;
  let calls = 0;
  be.binaryConv2d = (...a: unknown[]) => (calls++, orig(...a));
  try {
    return { ...run(layer, x, packed), calls };
  } finally {
    be.binaryConv2d = orig;
  }
}

const nativeBackend = createNativeBackend();
for (const be of [refBackend, nativeBackend]) {
  test(`two-valued operands (AdaBin sets) take the packed forward: equal to the float forward to rounding, gradients equal (${be?.name ?? 'native'} backend)`, { skip: be ? false : 'native addon not built' }, () => {
  setBackend(be!);
  try {
  const cases = [
    { c: 4, o: 4, hw: [5, 5], k: 3, stride: 1, pad: 1, dil: 1, alpha: 1, beta: 0 }, // init: x_b = ±1, weights offset
    { c: 3, o: 5, hw: [7, 5], k: 3, stride: 1, pad: 1, dil: 1, alpha: 0.7, beta: 0.4 },
    { c: 33, o: 31, hw: [9, 9], k: 3, stride: 2, pad: 1, dil: 1, alpha: 1.3, beta: -0.2 },
    { c: 16, o: 16, hw: [6, 6], k: 1, stride: 2, pad: 0, dil: 1, alpha: 0.5, beta: 1.5 }, // both values positive
    { c: 8, o: 6, hw: [8, 7], k: 3, stride: 1, pad: 2, dil: 2, alpha: -0.9, beta: 0.3 }, // dilation, α < 0
    { c: 5, o: 3, hw: [4, 6], k: 3, stride: 1, pad: 0, dil: 1, alpha: 2, beta: -1.25 }, // no border
  ];
  for (const t of cases) {
    manualSeed(4);
    const layer = adabinLayer(t.c, t.o, t.k, { stride: t.stride, padding: t.pad, dilation: t.dil }, t.alpha, t.beta);
    // A constant weight channel (one value: h = 0) next to ordinary ones.
    (layer.weight.storage as Float32Array).fill(0.05, 0, t.c * t.k * t.k);
    const x = randTensor([2, t.c, ...t.hw], 6, -2.5, 2.5);
    const f = runCounting(layer, x, false, be!);
    const p = runCounting(layer, x, true, be!);
    const what = JSON.stringify(t);
    assert.equal(f.calls, 0, `${what}: float path`);
    assert.equal(p.calls, 1, `${what}: packed path taken`);
    // The float conv accumulates in float32 and the packed one in float64 (rounded once): each
    // output differs by rounding, at most a few ulp of the largest partial sum (|x|·|w| ≤ ~5, K ≤ 297 terms).
    assertClose(p.y, f.y, 2e-5, 1e-5, `${what}: forward`);
    // The backward runs the same float kernels on the same values.
    assert.deepEqual(Buffer.from(p.gw.buffer), Buffer.from(f.gw.buffer), `${what}: dw`);
    assertClose(p.gx, f.gx, 1e-5, 1e-5, `${what}: dx`);
  }
  } finally {
    setBackend(refBackend);
  }
  });
}

test('operands the packed forward cannot take fall back to the float conv (same values)', () => {
  manualSeed(7);
  const x = randTensor([1, 4, 5, 5], 4, -2, 2);
  // A ±1 border (padValue 1) around offset values.
  const border = adabinLayer(4, 4, 3, { padding: 1, padValue: 1 }, 0.8, 0.3);
  // One input value only (every x above the threshold).
  const single = adabinLayer(4, 4, 3, { padding: 1 }, 1, -5);
  // Off: ONEBIT_PACKED_AFFINE=0.
  const off = adabinLayer(4, 4, 3, { padding: 1 }, 0.8, 0.3);
  for (const [layer, env] of [[border, undefined], [single, undefined], [off, '0']] as const) {
    if (env) process.env.ONEBIT_PACKED_AFFINE = env;
    try {
      const f = runCounting(layer, x, false);
      const p = runCounting(layer, x, true);
      assert.equal(p.calls, 0);
      assert.deepEqual(Array.from(p.y), Array.from(f.y));
    } finally {
      delete process.env.ONEBIT_PACKED_AFFINE;
    }
  }
});

/** Forward and gradients of a layer with the sign quantizer fused into the packed conv or not. */
function runFused(layer: Module & { weight: Tensor }, x: Tensor, fused: boolean, residual: boolean | BatchNorm2d = false) {
  process.env.ONEBIT_FUSED_SIGN = fused ? '1' : '0';
  try {
    return run(layer, x, true, residual);
  } finally {
    delete process.env.ONEBIT_FUSED_SIGN;
  }
}

for (const be of ['ref', 'native'] as const) {
  const native = be === 'native' ? createNativeBackend() : null;
  test(`sign quantizer fused into the packed conv == unfused, bit for bit (${be} backend)`, { skip: be === 'native' && !native ? 'native addon not built' : false }, () => {
    setBackend(native ?? refBackend);
    try {
      for (const t of convCases.filter((c) => c.iq === 'ste_sign' || c.iq === 'approx_sign')) {
        manualSeed(3);
        const layer = new BinaryConv2d(t.c, t.o, t.k, { stride: t.stride, padding: t.pad, padValue: t.padValue, kernelQuantizer: t.kq, inputQuantizer: t.iq });
        assert.ok(layer.inputQuantizer!.signGrad(), `${t.iq} has a fused gradient`);
        // Values on and near the quantizers' clip points (±1, 0, −0) as well as inside and outside.
        const x = randTensor([2, t.c, ...t.hw], 5, -1.5, 1.5);
        const xd = x.f32();
        for (let i = 0; i < 12; i++) xd[i * 7] = [1, -1, 0, -0, Math.fround(1 + 2 ** -23), Math.fround(-1 + 2 ** -24)][i % 6]!;
        const u = runFused(layer, x, false);
        const f = runFused(layer, x, true);
        for (const k of ['y', 'gx', 'gw'] as const) assert.deepEqual(Buffer.from(f[k].buffer), Buffer.from(u[k].buffer), `${JSON.stringify(t)} ${k}`);
      }
      if (native) {
        // Shapes where oneDNN picks the blocked layout with C a multiple of the block (the native
        // backward writes signs / unblocks gradients itself) and where it does not; a clip that is
        // not a float32 value. Fused (one-call backward) == fused (separate kernels) == unfused.
        const shapes = [
          { c: 16, o: 16, hw: [8, 8], stride: 1, iq: { alias: 'ste_sign', clipValue: 1.3 } },
          { c: 32, o: 64, hw: [9, 7], stride: 2, iq: { alias: 'approx_sign' } },
          { c: 8, o: 8, hw: [7, 5], stride: 1, iq: { alias: 'ste_sign' } },
          { c: 24, o: 16, hw: [6, 6], stride: 1, iq: { alias: 'approx_sign' } },
          { c: 64, o: 64, hw: [4, 4], stride: 1, iq: { alias: 'ste_sign' } },
        ];
        for (const t of shapes) {
          manualSeed(5);
          const layer = new BinaryConv2d(t.c, t.o, 3, { stride: t.stride, padding: 1, inputQuantizer: t.iq, kernelQuantizer: 'magnitude_aware_sign' });
          const x = randTensor([3, t.c, ...t.hw] as number[], 9, -1.6, 1.6);
          const xd = x.f32();
          for (let i = 0; i < 10; i++) xd[i * 13] = [1, -1, 0, -0, Math.fround(1.3), -Math.fround(1.3), 1.3000001, NaN, 2, -2][i]!;
          xd[7 * 13] = 0.25; // (a NaN would send the forward to the float path)
          const u = runFused(layer, x, false);
          const f = runFused(layer, x, true);
          process.env.ONEBIT_FUSED_SIGN_BACKWARD = '0';
          let s: typeof f;
          try {
            s = runFused(layer, x, true);
          } finally {
            delete process.env.ONEBIT_FUSED_SIGN_BACKWARD;
          }
          for (const k of ['y', 'gx', 'gw'] as const) {
            assert.deepEqual(Buffer.from(f[k].buffer), Buffer.from(u[k].buffer), `${JSON.stringify(t)} ${k} fused vs unfused`);
            assert.deepEqual(Buffer.from(s[k].buffer), Buffer.from(u[k].buffer), `${JSON.stringify(t)} ${k} separate kernels vs unfused`);
          }
          if (t.c === t.o && t.stride === 1) {
            // Fused (counting the one-call backwards whose argument `arg` is set) vs unfused, bit for bit.
            const be = native as unknown as { conv2dBackwardSign: (...a: unknown[]) => unknown };
            const compare = (residual: true | BatchNorm2d, arg: number, what: string) => {
              const orig = be.conv2dBackwardSign;
              let used = 0;
              be.conv2dBackwardSign = (...a: unknown[]) => (a[arg] && used++, orig(...a));
              let fr: typeof f;
              try {
                fr = runFused(layer, x, true, residual);
              } finally {
                be.conv2dBackwardSign = orig;
              }
              assert.equal(used, 1, `${JSON.stringify(t)}: ${what}`);
              const ur = runFused(layer, x, false, residual);
              for (const k of ['y', 'gx', 'gw'] as const) assert.deepEqual(Buffer.from(fr[k].buffer), Buffer.from(ur[k].buffer), `${JSON.stringify(t)} ${k}: ${what}, fused vs unfused`);
            };
            // A shortcut around the layer (y = conv(x) + x): the tape offers the shortcut's gradient
            // to the fused backward, which adds it in its own pass; the same bits as the tape's add.
            compare(true, 7, "the shortcut's gradient offered and used");
            // The residual block's form, BN(conv(x)) + x: the batch norm hands the shortcut a
            // gradient array only the tape holds, and the fused backward adds into it in place.
            compare(new BatchNorm2d(t.o), 8, 'dx accumulated in place (BN + shortcut)');
          }
        }
      }
      // Quantizers without a pointwise sign gradient do not fuse, nor a sign quantizer whose apply
      // was replaced (a subclass or a patch observing the activations must still be called).
      const patched = new BinaryConv2d(4, 4, 3, { inputQuantizer: 'ste_sign' });
      let calls = 0;
      const orig = patched.inputQuantizer!.apply.bind(patched.inputQuantizer!);
      patched.inputQuantizer!.apply = (t: Tensor) => (calls++, orig(t));
      assert.equal(patched.inputQuantizer!.signGrad(), null);
      process.env.ONEBIT_PACKED = '1';
      try {
        patched.forward(randTensor([1, 4, 5, 5], 8));
      } finally {
        delete process.env.ONEBIT_PACKED;
      }
      assert.equal(calls, 1, 'a patched apply runs');
      assert.equal(new BinaryConv2d(4, 4, 3, { inputQuantizer: 'rsign' }).inputQuantizer!.signGrad(), null);
    } finally {
      setBackend(refBackend);
    }
  });
}

test('a NaN input to a fused sign conv falls back to the float path (NaN out, not a silent +1)', () => {
  manualSeed(4);
  const layer = new BinaryConv2d(3, 2, 3, { padding: 1, inputQuantizer: 'ste_sign', kernelQuantizer: 'ste_sign' });
  const x = randTensor([1, 3, 4, 4], 6);
  x.f32()[5] = NaN;
  process.env.ONEBIT_PACKED = '1';
  try {
    const y = layer.forward(x).f32();
    assert.ok(Array.from(y).some(Number.isNaN), 'the NaN reaches the output');
  } finally {
    delete process.env.ONEBIT_PACKED;
  }
});
