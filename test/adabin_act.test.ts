import './util/poison_outputs.js';
import '../src/index.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { eltwiseAddon } from '../src/backends/native/eltwise.js';
import { createNativeBackend } from '../src/backends/native/index.js';
import { refBackend } from '../src/backends/ref/index.js';
import { ADABIN_BLOCK, adabinAct, adabinActBackward, adabinActLevels } from '../src/backends/ref/adabin_act.js';
import { affineCombine, twoValues } from '../src/backends/ref/affine_conv.js';
import { Rng } from '../src/core/rng.js';
import { backend, setBackend, Tensor, tensor } from '../src/core/tensor.js';
import { backward } from '../src/autograd/tape.js';
import { mul } from '../src/ops/elementwise.js';
import { sum } from '../src/ops/reduce.js';
import { adabinActComposed, adabinActFused } from '../src/quantizers/adabin_act.js';
import { assertClose } from './util/gradcheck.js';

const addon = eltwiseAddon();
const native = addon?.adabinActF32 ? createNativeBackend() : null;

/** Values compared as Object.is does (every NaN equal: its sign and payload carry no meaning). */
const vals = (a: Float32Array | null): number[] | null => (a ? Array.from(a) : null);

/** Uniform data with the awkward values mixed in: x = b (V = 0), x = b ± a (V = ±1), ±0, NaN, ±inf. */
function data(len: number, seed: number, a: number, b: number, specials: boolean): Float32Array {
  const r = new Rng(seed);
  const x = Float32Array.from({ length: len }, () => r.uniform(-3, 3));
  if (specials) {
    const s = [b, Math.fround(b + a), Math.fround(b - a), 0, -0, NaN, Infinity, -Infinity];
    for (let i = 0; i < len; i += 7) x[i] = s[(i / 7) % s.length]!;
  }
  return x;
}

// Lengths: empty, one, below / at / above the 8 lanes, a block and a block plus a tail, and above the
// native backend's size threshold (65,536) with a tail.
const LENGTHS = [0, 1, 7, 8, 9, 100, ADABIN_BLOCK, ADABIN_BLOCK + 13, 3 * ADABIN_BLOCK - 1, 70_001];
// (α, β): the init, typical values, a negative α (threshold direction flipped) and α = 0 (±inf V).
const SCALARS: [number, number][] = [[1, 0], [2, 0.5], [0.37, -0.8], [-1.3, 0.2], [0, 0.1]].map(([a, b]) => [Math.fround(a!), Math.fround(b!)]);

test('native adabinAct / adabinActBackward == the reference kernels, bit for bit (awkward sizes and values)', { skip: native ? false : 'native addon not built' }, () => {
  for (const len of LENGTHS) {
    for (const [a, b] of SCALARS) {
      for (const code of [true, false]) {
        for (const specials of [false, true]) {
          const x = data(len, len + 1, a, b, specials), g = data(len, len + 2, 1, 0, specials && len % 2 === 1);
          const what = `len ${len} α=${a} β=${b} ${code ? 'code' : 'paper'} specials ${specials}`;
          const [lo, hi] = adabinActLevels(a, b, code);
          const y = new Float32Array(len);
          addon!.adabinActF32!(y, x, a, b, lo, hi);
          assert.deepEqual(vals(y), vals(adabinAct(x, a, b, code)), `${what}: y`);
          for (const wantDx of [true, false]) {
            const dx = wantDx ? new Float32Array(len) : null, sums = new Float64Array(2);
            addon!.adabinActBackwardF32!(dx, sums, g, x, a, b, code);
            const r = adabinActBackward(g, x, a, b, code, wantDx);
            assert.deepEqual(vals(dx), vals(r.dx), `${what}: dx`);
            assert.deepEqual([sums[0], sums[1]], [r.da, r.db], `${what}: da, db`);
            // Through the backend (the size threshold picks native or reference): the same results.
            const nb = native!.adabinActBackward!(g, x, a, b, code, wantDx);
            assert.deepEqual([vals(nb.dx), nb.da, nb.db], [vals(r.dx), r.da, r.db], `${what}: backend backward`);
          }
          assert.deepEqual(vals(native!.adabinAct!(x, a, b, code)), vals(y), `${what}: backend forward`);
        }
      }
    }
  }
  assert.throws(() => addon!.adabinActBackwardF32!(null, new Float64Array(2), new Float32Array(3), new Float32Array(4), 1, 0, true), /adabinActBackwardF32: expected dx \(or null\), g and x of equal lengths/);
  assert.throws(() => addon!.adabinActF32!(new Float32Array(3), new Float32Array(4), 1, 0, -1, 1), /adabinActF32: out and x must have equal lengths/);
});

test('native adabinActBackward == the reference under the portable variant too (ONEBIT_ISA=ref, child process)', { skip: native ? false : 'native addon not built' }, () => {
  const url = (rel: string): string => new URL(rel, import.meta.url).href;
  const code = `
    const { eltwiseAddon } = await import(${JSON.stringify(url('../src/backends/native/eltwise.js'))});
    const { adabinActBackward } = await import(${JSON.stringify(url('../src/backends/ref/adabin_act.js'))});
    const { Rng } = await import(${JSON.stringify(url('../src/core/rng.js'))});
    const A = eltwiseAddon(), bad = [];
    for (const len of ${JSON.stringify(LENGTHS)}) {
      for (const [a, b] of ${JSON.stringify(SCALARS)}) {
        const r = new Rng(len + 7);
        const v = (lo, hi) => Float32Array.from({ length: len }, (_, i) => (i % 9 === 4 ? b : r.uniform(lo, hi)));
        const x = v(-3, 3), g = v(-1, 1);
        for (const code of [true, false]) {
          const dx = new Float32Array(len), sums = new Float64Array(2);
          A.adabinActBackwardF32(dx, sums, g, x, a, b, code);
          const want = adabinActBackward(g, x, a, b, code, true);
          if (dx.some((e, i) => !Object.is(e, want.dx[i])) || !Object.is(sums[0], want.da) || !Object.is(sums[1], want.db)) bad.push(len + ':' + a + ':' + code);
        }
      }
    }
    console.log(A.info().isa + ' ' + (bad.length ? 'MISMATCH ' + bad.join(' ') : 'ok'));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { env: { ...process.env, ONEBIT_ISA: 'ref' }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'ref ok');
});

test('adabin_act fused op == the op-by-op composition on each backend (values and dx bit for bit, dα/dβ to rounding)', () => {
  const saved = backend();
  try {
    for (const be of native ? [refBackend, native] : [refBackend]) {
      setBackend(be);
      for (const shape of [[2, 3, 5, 5], [128, 4, 16, 11]]) {
        for (const [a, b] of SCALARS.slice(0, 4)) {
          for (const form of ['code', 'paper'] as const) {
            const len = shape.reduce((p, q) => p * q, 1);
            const xd = data(len, 3, a, b, true).map((v) => (Number.isFinite(v) ? v : 0.25)), gd = data(len, 4, 1, 0, false);
            const run = (f: typeof adabinActFused) => {
              const x = new Tensor(Float32Array.from(xd), shape), al = tensor([a], [1]), bl = tensor([b], [1]);
              for (const t of [x, al, bl]) t.requiresGrad = true;
              const y = f(x, al, bl, form);
              backward(sum(mul(y, new Tensor(gd, shape))));
              return { y: Float32Array.from(y.f32()), dx: x.grad!.f32(), da: al.grad!.item(), db: bl.grad!.item() };
            };
            const f = run(adabinActFused), c = run(adabinActComposed);
            const what = `${be.name} [${shape}] α=${a} β=${b} ${form}`;
            assert.deepEqual(vals(f.y), vals(c.y), `${what}: y`);
            assert.deepEqual(vals(f.dx), vals(c.dx), `${what}: dx`);
            // The composition rounds every per-element term to float32 before its float64 sums
            // (in another order) and the fused op does not; over up to 84k terms the relative
            // difference measured at most 1.1e-6.
            assertClose([f.da, f.db], [c.da, c.db], 1e-6, 1e-5, `${what}: dα, dβ`);
          }
        }
      }
    }
  } finally {
    setBackend(saved);
  }
});

test('native twoValues / affineCombine == the reference kernels (awkward sizes and values)', { skip: native?.twoValues ? false : 'native addon not built' }, () => {
  const out = new Float64Array(2);
  const nt = (x: Float32Array) => (addon!.twoValuesF32!(x, out) ? [out[0], out[1]] : null);
  for (const len of LENGTHS) {
    const r = new Rng(len + 3);
    const two = Float32Array.from({ length: len }, () => (r.uniform(0, 1) < 0.5 ? -0.75 : 1.5));
    const cases: [string, Float32Array][] = [['two', two], ['one', new Float32Array(len).fill(0.25)], ['±0', Float32Array.from({ length: len }, (_, i) => (i % 2 ? 0 : -0))]];
    for (const [bad, v] of [['third', 0.5], ['NaN', NaN], ['inf', Infinity]] as const) {
      const c = Float32Array.from(two);
      if (len) c[len - 1] = v;
      cases.push([bad, c]);
    }
    for (const [what, x] of cases) {
      assert.deepEqual(nt(x), twoValues(x), `len ${len} ${what}`);
      assert.deepEqual(native!.twoValues!(x), twoValues(x), `len ${len} ${what}: backend`);
    }
    if (len > 1) assert.deepEqual(twoValues(two), [-0.75, 1.5]);
  }
  assert.equal(twoValues(new Float32Array([1, 1, 1])), null, 'one value');
  assert.equal(twoValues(new Float32Array([NaN, 1])), null);
  for (const [N, O, HW] of [[1, 1, 1], [2, 3, 7], [3, 16, 1024], [5, 64, 257]]) {
    const r = new Rng(N * O + HW);
    const p = Float32Array.from({ length: N * (O + 1) * HW }, () => Math.round(r.uniform(-300, 300)));
    const f1 = Float64Array.from({ length: O }, () => r.uniform(-1, 1)), f2 = Float64Array.from({ length: O }, () => r.uniform(-1, 1));
    const c2 = Float64Array.from({ length: O * HW }, () => r.uniform(-50, 50));
    const y = new Float32Array(N * O * HW);
    addon!.affineCombineF32!(y, p, N, O, HW, f1, f2, c2);
    assert.deepEqual(Array.from(y), Array.from(affineCombine(p, N, O, HW, f1, f2, c2)), `[${N}, ${O}, ${HW}]`);
    assert.deepEqual(Array.from(native!.affineCombine!(p, N, O, HW, f1, f2, c2)), Array.from(y), `[${N}, ${O}, ${HW}]: backend`);
  }
  assert.throws(() => addon!.affineCombineF32!(new Float32Array(4), new Float32Array(4), 1, 2, 2, new Float64Array(2), new Float64Array(2), new Float64Array(4)), /affineCombineF32: expected out/);
});
