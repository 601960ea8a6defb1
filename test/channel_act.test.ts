import './util/poison_outputs.js';
import '../src/index.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { refBackend } from '../src/backends/ref/index.js';
import { createNativeBackend } from '../src/backends/native/index.js';
import { eltwiseAddon } from '../src/backends/native/eltwise.js';
import { channelAct as refChannelAct, channelActBackward as refChannelActBackward } from '../src/backends/ref/channel_act.js';
import { manualSeed, Rng } from '../src/core/rng.js';
import { setBackend, Tensor, tensor } from '../src/core/tensor.js';
import { backward } from '../src/autograd/tape.js';
import { add, maximum, minimum, mul, neg, relu, sub } from '../src/ops/elementwise.js';
import { reshape } from '../src/ops/shape.js';
import { sum } from '../src/ops/reduce.js';
import { channelAct } from '../src/ops/channel_act.js';
import { Maxout, RPReLU } from '../src/nn/react.js';
import { PReLU } from '../src/nn/layers.js';
import { BinaryConv2d } from '../src/nn/binary.js';
import type { RSign } from '../src/quantizers/rsign.js';
import { assertClose, gradcheck, randTensor } from './util/gradcheck.js';

const bits = (a: Float32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
/**
 * Values compared as Object.is does: exact, −0 ≠ +0, every NaN equal (a NaN's sign and payload
 * carry no meaning; x86 and V8 differ on them).
 */
const nanBits = (a: Float32Array): number[] => Array.from(a);

/** Random data with the awkward values mixed in: ±0, exact zeros after the shift, NaN, ±inf. */
function awkward(len: number, seed: number, specials: boolean): Float32Array {
  const r = new Rng(seed);
  const a = Float32Array.from({ length: len }, () => r.uniform(-2, 2));
  if (specials) {
    const s = [0, -0, NaN, Infinity, -Infinity, 1e-40, -1e-40, 0.5];
    for (let i = 0; i < len; i += 5) a[i] = s[(i / 5) % s.length]!;
  }
  return a;
}

function vec(C: number, seed: number, lo: number, hi: number): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: C }, () => r.uniform(lo, hi));
}

// [n, C, inner]: empty batch, single element, inner below / at / above the 8 summation lanes, odd
// planes (the row tail), and one above the native size threshold with a tail.
const SHAPES: [number, number, number][] = [[0, 3, 5], [1, 1, 1], [2, 3, 7], [3, 2, 8], [2, 5, 9], [2, 4, 63], [1, 3, 65], [3, 7, 4097]];

const addon = eltwiseAddon();

test('native channelAct / channelActBackward == the reference kernels, bit for bit (awkward sizes and values)', { skip: addon?.channelActBackwardF32 ? false : 'native addon not built' }, () => {
  for (const [si, [n, C, inner]] of SHAPES.entries()) {
    for (const specials of [false, true]) {
      const len = n * C * inner;
      const x = awkward(len, 10 + si, specials), g = awkward(len, 20 + si, specials);
      for (const combo of [{ b0: true, pos: false, b1: true }, { b0: false, pos: true, b1: false }, { b0: true, pos: true, b1: true }, { b0: false, pos: false, b1: false }]) {
        const b0 = combo.b0 ? vec(C, 1, -0.5, 0.5) : null, pos = combo.pos ? vec(C, 2, 0.5, 1.5) : null, negS = vec(C, 3, -0.5, 0.5), b1 = combo.b1 ? vec(C, 4, -1, 1) : null;
        const what = `[${n}, ${C}, ${inner}] ${JSON.stringify(combo)} specials ${specials}`;
        const y = new Float32Array(len);
        addon!.channelActF32!(y, x, null, n, C, inner, b0, pos, negS, b1);
        assert.deepEqual(nanBits(y), nanBits(refChannelAct(x, n, C, inner, b0, pos, negS, b1)), `${what}: y`);
        const dx = new Float32Array(len), dp = new Float32Array(4 * C);
        addon!.channelActBackwardF32!(dx, dp, g, x, n, C, inner, b0, pos, negS);
        const r = refChannelActBackward(g, x, n, C, inner, b0, pos, negS);
        assert.deepEqual(nanBits(dx), nanBits(r.dx), `${what}: dx`);
        assert.deepEqual(nanBits(dp), nanBits(Float32Array.from([...r.db0, ...r.dpos, ...r.dneg, ...r.db1])), `${what}: parameter gradients`);
      }
    }
  }
  // Bad arguments are one clear error, not a crash.
  assert.throws(() => addon!.channelActBackwardF32!(new Float32Array(3), new Float32Array(8), new Float32Array(4), new Float32Array(4), 1, 2, 2, null, null, new Float32Array(2)),
    /channelActBackwardF32: expected dx, g, x of n·C·inner elements/);
  assert.throws(() => addon!.channelActBackwardF32!(new Float32Array(4), new Float32Array(8), new Float32Array(4), new Float32Array(4), 1, 2, 2, null, null, new Float32Array(3)),
    /b0, pos and neg must have C elements/);
});

test('native channelActBackward == the reference under the portable variant too (ONEBIT_ISA=ref, child process)', { skip: addon?.channelActBackwardF32 ? false : 'native addon not built' }, () => {
  const url = (rel: string): string => new URL(rel, import.meta.url).href;
  const code = `
    const { eltwiseAddon } = await import(${JSON.stringify(url('../src/backends/native/eltwise.js'))});
    const { channelActBackward } = await import(${JSON.stringify(url('../src/backends/ref/channel_act.js'))});
    const { Rng } = await import(${JSON.stringify(url('../src/core/rng.js'))});
    const a = eltwiseAddon(), bad = [];
    for (const [n, C, inner] of ${JSON.stringify(SHAPES)}) {
      const r = new Rng(n * 100 + inner), len = n * C * inner;
      const v = (k, lo, hi) => Float32Array.from({ length: k }, (_, i) => (i % 7 === 3 ? 0 : r.uniform(lo, hi)));
      const x = v(len, -2, 2), g = v(len, -1, 1), b0 = v(C, -0.5, 0.5), pos = v(C, 0.5, 1.5), neg = v(C, -0.5, 0.5);
      const dx = new Float32Array(len), dp = new Float32Array(4 * C);
      a.channelActBackwardF32(dx, dp, g, x, n, C, inner, b0, pos, neg);
      const want = channelActBackward(g, x, n, C, inner, b0, pos, neg);
      const all = [...want.db0, ...want.dpos, ...want.dneg, ...want.db1];
      if (dx.some((e, i) => !Object.is(e, want.dx[i])) || dp.some((e, i) => !Object.is(e, Math.fround(all[i])))) bad.push(n + ',' + C + ',' + inner);
    }
    console.log(a.info().isa + ' ' + (bad.length ? 'MISMATCH ' + bad.join(' ') : 'ok'));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { env: { ...process.env, ONEBIT_ISA: 'ref' }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'ref ok');
});

test('reference channelActBackward: the per-channel sums are the float64 sums of their terms', () => {
  const [n, C, inner] = [3, 2, 11];
  const x = awkward(n * C * inner, 5, false), g = awkward(n * C * inner, 6, false);
  const b0 = vec(C, 1, -0.3, 0.3), pos = vec(C, 2, 0.5, 1.5), negS = vec(C, 3, 0.1, 0.4);
  const r = refChannelActBackward(g, x, n, C, inner, b0, pos, negS);
  for (let c = 0; c < C; c++) {
    let s0 = 0, sp = 0, sn = 0, s1 = 0;
    for (let b = 0; b < n; b++) {
      for (let j = 0; j < inner; j++) {
        const i = (b * C + c) * inner + j, u = Math.fround(x[i]! + b0[c]!);
        s0 += r.dx[i]!;
        if (u >= 0) sp += g[i]! * u;
        else sn += g[i]! * u;
        s1 += g[i]!;
        assert.equal(r.dx[i], Math.fround(g[i]! * (u >= 0 ? pos[c]! : negS[c]!)));
      }
    }
    // Only the summation order differs (lanes vs one running sum): float32 results agree closely.
    assertClose([r.db0[c]!, r.dpos[c]!, r.dneg[c]!, r.db1[c]!], [s0, sp, sn, s1], 1e-6, 1e-6, `channel ${c}`);
  }
});

for (const be of ['ref', 'native'] as const) {
  const native = be === 'native' ? createNativeBackend() : null;
  const skip = be === 'native' && !native ? 'native addon not built' : false;

  test(`channelAct op: gradient check of x and every parameter combination (${be} backend)`, { skip }, () => {
    setBackend(native ?? refBackend);
    try {
      // Values away from u = 0 (the kink), where finite differences are valid.
      const x = randTensor([2, 3, 2, 3], 1, 0.2, 1.5);
      const xd = x.f32();
      for (let i = 0; i < xd.length; i += 2) xd[i] = -xd[i]!;
      const p = (seed: number, lo: number, hi: number) => randTensor([3], seed, lo, hi);
      gradcheck((xi, b0, negS, b1) => channelAct(xi!, { b0, neg: negS!, b1 }), [x, p(2, -0.1, 0.1), p(3, 0.1, 0.4), p(4, -1, 1)]);
      gradcheck((xi, pos, negS) => channelAct(xi!, { pos, neg: negS! }), [x, p(5, 0.5, 1.5), p(6, -0.5, 0.5)]);
      gradcheck((xi, negS) => channelAct(xi!, { neg: negS! }), [randTensor([4, 3], 7, 0.3, 1), p(8, 0.1, 0.3)].map((t, i) => (i === 0 ? mulSigns(t) : t)));
      // Above the native threshold too (the native kernels run; sums over many rows).
      const big = mulSigns(randTensor([4, 3, 80, 80], 9, 0.05, 1));
      gradcheck((xi, negS, b1) => channelAct(xi!, { neg: negS!, b1 }), [big, p(10, 0.1, 0.4), p(11, -1, 1)], { check: [false, true, true] });
      // Bad parameter shapes: one clear error.
      assert.throws(() => channelAct(x, { neg: randTensor([2]) }), /channelAct neg: expected shape \[3\] \(one value per channel of the input\), but got shape \[2\]/);
      assert.throws(() => channelAct(randTensor([3]), { neg: randTensor([3]) }), /channelAct: expected input \[N, C, \.\.\.\]/);
    } finally {
      setBackend(refBackend);
    }
  });

  test(`RPReLU, Maxout and per-channel PReLU give the composite's forward values, bit for bit (${be} backend)`, { skip }, () => {
    setBackend(native ?? refBackend);
    try {
      for (const shape of [[3, 4], [2, 4, 5, 7], [4, 4, 64, 70]]) {
        manualSeed(2);
        const x = randTensor(shape, 12, -2, 2);
        x.f32()[0] = 0;
        const C = 4, bc = (t: Tensor) => reshape(t, [1, C, ...Array<number>(shape.length - 2).fill(1)]);
        const r = new RPReLU(C);
        r.move0.bias.f32().set(vec(C, 1, -0.5, 0.5));
        r.prelu.weight.f32().set(vec(C, 2, 0, 0.5));
        r.move1.bias.f32().set(vec(C, 3, -1, 1));
        const u = add(x, bc(r.move0.bias));
        const composite = add(add(maximum(u, 0), mul(bc(r.prelu.weight), minimum(u, 0))), bc(r.move1.bias));
        assert.deepEqual(Array.from(r.forward(x).f32(), (v) => v + 0), Array.from(composite.f32(), (v) => v + 0), `RPReLU ${shape}`);
        const m = new Maxout(C);
        m.posScale.f32().set(vec(C, 4, 0.5, 1.5));
        m.negScale.f32().set(vec(C, 5, -0.5, 0.5));
        const mc = sub(mul(bc(m.posScale), relu(x)), mul(bc(m.negScale), relu(neg(x))));
        assert.deepEqual(Array.from(m.forward(x).f32(), (v) => v + 0), Array.from(mc.f32(), (v) => v + 0), `Maxout ${shape}`);
        const pr = new PReLU(C);
        pr.weight.f32().set(vec(C, 6, 0, 0.5));
        const pc = add(maximum(x, 0), mul(bc(pr.weight), minimum(x, 0)));
        assert.deepEqual(Array.from(pr.forward(x).f32(), (v) => v + 0), Array.from(pc.f32(), (v) => v + 0), `PReLU ${shape}`);
      }
    } finally {
      setBackend(refBackend);
    }
  });

  test(`RSign fused into the packed conv == unfused: forward and dx, dw bit for bit, threshold gradient close (${be} backend)`, { skip }, () => {
    setBackend(native ?? refBackend);
    try {
      for (const t of [{ c: 3, o: 5, hw: [7, 5], stride: 1 }, { c: 16, o: 16, hw: [8, 8], stride: 1 }, { c: 33, o: 17, hw: [9, 7], stride: 2 }]) {
        manualSeed(3);
        const layer = new BinaryConv2d(t.c, t.o, 3, { stride: t.stride, padding: 1, inputQuantizer: 'rsign', kernelQuantizer: 'xnor_sign' });
        const q = layer.inputQuantizer as RSign;
        q.bias.f32().set(vec(t.c, 7, -0.3, 0.3));
        const x = randTensor([3, t.c, ...t.hw], 8, -1.5, 1.5);
        // Values where x + b lands on ApproxSign's breakpoints or on 0 exactly.
        for (let i = 0; i < 6; i++) x.f32()[i * t.hw[0]! * t.hw[1]!] = [0, 1, -1, 0.5, -0.5, 0][i]! - q.bias.f32()[i % t.c]!;
        const runIt = (fused: boolean) => {
          process.env.ONEBIT_FUSED_SIGN = fused ? '1' : '0';
          process.env.ONEBIT_PACKED = '1';
          try {
            const xl = new Tensor(Float32Array.from(x.f32()), x.shape);
            xl.requiresGrad = true;
            layer.weight.grad = null;
            q.bias.grad = null;
            const y = layer.forward(xl);
            backward(sum(mul(y, randTensor([...y.shape], 9, 0.5, 1.5))));
            return { y: Float32Array.from(y.f32()), gx: Float32Array.from(xl.grad!.f32()), gw: Float32Array.from(layer.weight.grad!.f32()), gb: Float32Array.from(q.bias.grad!.f32()) };
          } finally {
            delete process.env.ONEBIT_FUSED_SIGN;
            delete process.env.ONEBIT_PACKED;
          }
        };
        const f = runIt(true), u = runIt(false);
        for (const k of ['y', 'gx', 'gw'] as const) assert.deepEqual(bits(f[k]), bits(u[k]), `${JSON.stringify(t)} ${k}`);
        // The threshold's gradient: the same terms, summed by the reduction instead of RSign's loop.
        assertClose(f.gb, u.gb, 1e-4, 1e-5, `${JSON.stringify(t)} threshold gradient`);
        assert.ok(u.gb.some((v) => v !== 0), 'the threshold gradient is not trivially zero');
      }
      // A patched apply is still called (no fusion).
      const patched = new BinaryConv2d(4, 4, 3, { inputQuantizer: 'rsign' });
      let calls = 0;
      const orig = patched.inputQuantizer!.apply.bind(patched.inputQuantizer!);
      patched.inputQuantizer!.apply = (v: Tensor) => (calls++, orig(v));
      assert.equal(patched.inputQuantizer!.fusedSign(randTensor([1, 4, 5, 5])), null);
      process.env.ONEBIT_PACKED = '1';
      try {
        patched.forward(randTensor([1, 4, 5, 5], 8));
      } finally {
        delete process.env.ONEBIT_PACKED;
      }
      assert.equal(calls, 1);
    } finally {
      setBackend(refBackend);
    }
  });
}

/** Flips every other element's sign (values of both signs, none near the kink). */
function mulSigns(t: Tensor): Tensor {
  const d = Float32Array.from(t.f32());
  for (let i = 0; i < d.length; i += 2) d[i] = -d[i]!;
  return tensor(Array.from(d), [...t.shape]);
}
