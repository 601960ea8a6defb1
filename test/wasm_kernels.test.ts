import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Conv2dParams } from '../src/core/backend.js';
import { OnebitError } from '../src/core/errors.js';
import { Rng } from '../src/core/rng.js';
import { binaryConv2d, binaryMatmul, bitpack } from '../src/backends/ref/binary.js';
import { conv2d } from '../src/backends/ref/conv2d.js';
import { matmul } from '../src/backends/ref/matmul.js';
import { prepareBinaryConv2d as nativePrepare } from '../src/backends/native/binary.js';
import type { InferBackend } from '../src/infer/backend.js';
import { channelAct } from '../src/infer/kernels.js';
import type { WasmKernels } from '../src/infer/wasm/index.js';
import { loadWasmKernelsNode, wasmKernelsPath } from '../src/infer/wasm/node.js';

/*
 * The WebAssembly kernels (native/wasm, both builds) against the reference ones: bitpack,
 * binaryMatmul and the prepared binary conv EXACTLY (and against the native prepared conv when the
 * addon is built), channelAct bit for bit against the TypeScript loop, the float conv2d / matmul
 * within the float32 summation bound |Δ| ≤ (K + 2)·2⁻²⁴·Σ|a·b| of the float64 reference (and the
 * two builds bit-identical to each other). Awkward sizes: C = 1, 3, 31, 33, 65, K off word
 * boundaries, groups, strides, dilation, 1x1 / 3x3 / 5x3 kernels, ph ≠ pw, every pad value.
 */

const KINDS = ['wasm-simd', 'wasm'] as const;

/** The kernels of a build, or the reason to skip (only when the file is absent and not required). */
function load(kind: 'wasm-simd' | 'wasm'): WasmKernels | string {
  try {
    wasmKernelsPath(kind);
  } catch (e) {
    if (process.env.ONEBIT_REQUIRE_WASM === '1') throw e;
    return `${kind === 'wasm-simd' ? 'onebit-simd.wasm' : 'onebit.wasm'} is not built (node native/build-wasm.cjs needs clang + lld)`;
  }
  return loadWasmKernelsNode(kind);
}
const kernels = Object.fromEntries(KINDS.map((k) => [k, load(k)])) as Record<(typeof KINDS)[number], WasmKernels | string>;

/** A test per build, skipped with the reason when that build is absent. */
function each(name: string, body: (k: WasmKernels) => void): void {
  for (const kind of KINDS) {
    const k = kernels[kind];
    test(`${kind}: ${name}`, (t) => {
      if (typeof k === 'string') return t.skip(k);
      body(k);
    });
  }
}

/** Uniform in (−1, 1) with exact zeros and negative zeros mixed in (both count as +1). */
function values(n: number, seed: number): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, (_, i) => (i % 11 === 3 ? 0 : i % 13 === 5 ? -0 : r.uniform(-1, 1)));
}

const bitsOf = (a: Float32Array): Uint32Array => new Uint32Array(a.buffer, a.byteOffset, a.length);

/** Exactly equal, float by float (NaN equals NaN; +0 and −0 differ). */
function assertBits(got: Float32Array, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  const g = bitsOf(got), w = bitsOf(want);
  for (let i = 0; i < g.length; i++) {
    if (g[i] !== w[i] && !(Number.isNaN(got[i]) && Number.isNaN(want[i]))) assert.fail(`${what}[${i}]: ${got[i]} vs ${want[i]}`);
  }
}

/** |got − want| ≤ (K + 2)·2⁻²⁴·bound (bound = Σ|a·b| per element). */
function assertSum(got: Float32Array, want: Float32Array, bound: Float32Array, K: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; i++) {
    const tol = (K + 2) * 2 ** -24 * bound[i]! + 1e-30;
    if (!(Math.abs(got[i]! - want[i]!) <= tol)) assert.fail(`${what}[${i}]: ${got[i]} vs ${want[i]} (tolerance ${tol})`);
  }
}

const KS = [1, 31, 32, 33, 63, 64, 65, 127, 129, 1000];

each('bitpack equals the reference (word boundaries, 0, −0, NaN, ±Infinity, one-hot bit order)', (k) => {
  for (const rows of [1, 3, 17]) {
    for (const K of KS) {
      const x = values(rows * K, rows * 1000 + K);
      x[0] = NaN;
      if (x.length > 2) x[2] = -Infinity;
      if (x.length > 3) x[3] = Infinity;
      assert.deepEqual(k.bitpack(x, rows, K), bitpack(x, rows, K), `rows ${rows} k ${K}`);
    }
  }
  for (let j = 0; j < 70; j++) {
    const x = new Float32Array(70).fill(1);
    x[j] = -1;
    const want = new Uint32Array(3);
    want[j >>> 5] = (1 << (j & 31)) >>> 0;
    assert.deepEqual(k.bitpack(x, 1, 70), want, `one-hot bit ${j}`);
  }
});

each('binaryMatmul equals the reference', (k) => {
  for (const [m, n] of [[1, 1], [3, 5], [17, 33], [4, 70], [65, 9]] as const) {
    for (const K of KS) {
      const a = bitpack(values(m * K, m + K), m, K), b = bitpack(values(n * K, 7 * n + K), n, K);
      assert.deepEqual(k.binaryMatmul(a, b, m, n, K), binaryMatmul(a, b, m, n, K), `m ${m} n ${n} k ${K}`);
    }
  }
});

/** Conv cases: input [C, H, W], weights [Cout, C/groups, kh, kw], params. */
interface Case { C: number; H: number; W: number; Cout: number; kh: number; kw: number; p: Conv2dParams }
const cp = (stride: [number, number], padding: [number, number], dilation: [number, number] = [1, 1], groups = 1): Conv2dParams => ({ stride, padding, dilation, groups });
const CASES: Case[] = [
  { C: 1, H: 5, W: 7, Cout: 1, kh: 3, kw: 3, p: cp([1, 1], [1, 1]) },
  { C: 3, H: 8, W: 9, Cout: 5, kh: 5, kw: 3, p: cp([1, 1], [2, 1]) },
  { C: 31, H: 7, W: 6, Cout: 7, kh: 3, kw: 3, p: cp([2, 2], [1, 0]) },
  { C: 33, H: 6, W: 5, Cout: 9, kh: 3, kw: 3, p: cp([1, 1], [2, 2], [2, 2]) },
  { C: 65, H: 5, W: 5, Cout: 6, kh: 1, kw: 1, p: cp([2, 2], [0, 0]) },
  { C: 34, H: 6, W: 7, Cout: 6, kh: 3, kw: 3, p: cp([1, 1], [1, 1], [1, 1], 2) },
  { C: 16, H: 17, W: 19, Cout: 16, kh: 3, kw: 3, p: cp([1, 1], [1, 1]) },
  { C: 32, H: 9, W: 9, Cout: 13, kh: 3, kw: 3, p: cp([2, 2], [1, 1]) },
  { C: 64, H: 4, W: 4, Cout: 8, kh: 3, kw: 3, p: cp([1, 2], [0, 1], [1, 2]) },
  { C: 6, H: 5, W: 6, Cout: 6, kh: 3, kw: 3, p: cp([1, 1], [1, 1], [1, 1], 3) },
];
const tag = (c: Case): string => `C${c.C} ${c.H}x${c.W} → ${c.Cout} k${c.kh}x${c.kw} s${c.p.stride} p${c.p.padding} d${c.p.dilation} g${c.p.groups}`;
const wLen = (c: Case): number => c.Cout * (c.C / c.p.groups) * c.kh * c.kw;
const wShapeOf = (c: Case): number[] => [c.Cout, c.C / c.p.groups, c.kh, c.kw];

/** The prepared conv's epilogue in float32: ·scale when given, then + bias when given (the native kernel's order). */
function affine(y: Float32Array, n: number, Cout: number, scale: Float32Array | null, bias: Float32Array | null): Float32Array {
  const P = y.length / (n * Cout), out = new Float32Array(y.length);
  for (let i = 0; i < y.length; i++) {
    const co = Math.floor(i / P) % Cout;
    let v = y[i]!;
    if (scale) v = Math.fround(v * scale[co]!);
    if (bias) v = Math.fround(v + bias[co]!);
    out[i] = v;
  }
  return out;
}

each('prepared binary conv equals the reference (pad −1/0/+1, thresholds, scale/bias, n = 1 and 3, out, repeated calls)', (k) => {
  let seed = 1;
  for (const c of CASES) {
    const w = values(wLen(c), seed++), wShape = wShapeOf(c);
    for (const pad of [0, -1, 1]) {
      const prep = k.prepareBinaryConv2d(w, wShape, [c.C, c.H, c.W], c.p, pad)!;
      const native = nativePrepare(w, wShape, [c.C, c.H, c.W], c.p, pad);
      for (const n of [1, 3]) {
        for (const variant of [0, 1, 2, 3]) {
          const x = values(n * c.C * c.H * c.W, seed++);
          const thr = variant & 1 ? Float32Array.from(values(c.C, seed++), (v) => v * 0.5) : null;
          const scale = variant >= 2 ? Float32Array.from(values(c.Cout, seed++), (v) => v * 3 + 0.1) : null;
          const bias = variant === 1 || variant === 3 ? values(c.Cout, seed++) : null;
          const t = thr ? x.map((v, i) => (v < thr[Math.floor(i / (c.H * c.W)) % c.C]! ? -1 : 1)) : x;
          const want = affine(binaryConv2d(t, [n, c.C, c.H, c.W], w, wShape, c.p, pad), n, c.Cout, scale, bias);
          const what = `${tag(c)} pad ${pad} n ${n} variant ${variant}`;
          assertBits(prep.run(x, n, scale, bias, thr), want, what);
          const out = new Float32Array(want.length).fill(NaN);
          assert.equal(prep.run(x, n, scale, bias, thr, out), out, `${what}: writes into out`);
          assertBits(out, want, `${what} (out)`);
          if (native) assertBits(native.run(x, n, scale, bias, thr), want, `${what} (native)`);
        }
      }
      assert.deepEqual(prep.outShape(2), [2, c.Cout, ...outHW(c)]);
      prep.dispose();
    }
  }
});

/** y[i] = t[i] + r[i] in float32 (the separate `add` a fused residual replaces). */
const addF32 = (t: Float32Array, r: Float32Array): Float32Array => t.map((v, i) => v + r[i]!);

/** A residual with −0, NaN, ±Infinity, huge and subnormal values mixed in. */
function residualOf(n: number, seed: number): Float32Array {
  return values(n, seed).map((v, i) => (i % 29 === 7 ? -0 : i % 31 === 3 ? NaN : i % 37 === 5 ? -Infinity : i % 41 === 9 ? 3e38 : i % 43 === 1 ? 1e-42 : v * 100));
}

each('prepared binary conv with a residual equals conv then a float32 add, bit for bit (with/without scale, bias, thr)', (k) => {
  let seed = 500;
  for (const c of CASES) {
    const w = values(wLen(c), seed++), wShape = wShapeOf(c);
    for (const pad of [0, -1, 1]) {
      const prep = k.prepareBinaryConv2d(w, wShape, [c.C, c.H, c.W], c.p, pad)!;
      assert.equal(prep.residual, true);
      for (const n of [1, 3]) {
        for (const variant of [0, 1, 2, 3, 4]) {
          const x = values(n * c.C * c.H * c.W, seed++);
          const thr = variant & 1 ? Float32Array.from(values(c.C, seed++), (v) => v * 0.5) : null;
          const scale = variant >= 2 ? Float32Array.from(values(c.Cout, seed++), (v) => v * 3 + 0.1) : null;
          const bias = variant === 1 || variant === 3 || variant === 4 ? values(c.Cout, seed++) : null;
          const plain = prep.run(x, n, scale, bias, thr);
          const r = residualOf(plain.length, seed++);
          const want = addF32(plain, r), what = `${tag(c)} pad ${pad} n ${n} variant ${variant}`;
          assertBits(prep.run(x, n, scale, bias, thr, undefined, r), want, what);
          const out = new Float32Array(want.length).fill(NaN);
          assert.equal(prep.run(x, n, scale, bias, thr, out, r), out, `${what}: writes into out`);
          assertBits(out, want, `${what} (out)`);
          const rCopy = r.slice(), xCopy = x.slice();
          assertBits(prep.run(x, n, scale, bias, thr, r, r), want, `${what} (out = residual)`);
          assertBits(x, xCopy, `${what}: x untouched`);
          assertBits(prep.run(x, n, scale, bias, thr, undefined, rCopy), want, `${what} (again)`);
        }
      }
      assert.throws(() => prep.run(values(c.C * c.H * c.W, 1), 1, null, null, null, undefined, new Float32Array(3)), OnebitError);
      prep.dispose();
    }
  }
});

each('prepared float conv with a residual equals conv then a float32 add, bit for bit', (k) => {
  let seed = 600;
  for (const c of CASES) {
    const w = values(wLen(c), seed++), wShape = wShapeOf(c);
    for (const bias of [null, values(c.Cout, seed++)]) {
      const prep = k.prepareConv2d(w, wShape, [c.C, c.H, c.W], c.p, bias);
      assert.equal(prep.residual, true);
      for (const n of [1, 3]) {
        const x = values(n * c.C * c.H * c.W, seed++), plain = prep.run(x, n), r = residualOf(plain.length, seed++);
        const want = addF32(plain, r), what = `${tag(c)} n ${n} bias ${!!bias}`;
        assertBits(prep.run(x, n, undefined, r), want, what);
        const out = new Float32Array(want.length);
        assert.equal(prep.run(x, n, out, r), out);
        assertBits(out, want, `${what} (out)`);
      }
      prep.dispose();
    }
  }
});

function outHW(c: Case): [number, number] {
  const [sh, sw] = c.p.stride, [ph, pw] = c.p.padding, [dh, dw] = c.p.dilation;
  return [Math.floor((c.H + 2 * ph - dh * (c.kh - 1) - 1) / sh) + 1, Math.floor((c.W + 2 * pw - dw * (c.kw - 1) - 1) / sw) + 1];
}

each('binaryConv2d (unprepared) equals the reference; other pad values give null', (k) => {
  for (const c of CASES.slice(0, 6)) {
    const w = values(wLen(c), 5), x = values(2 * c.C * c.H * c.W, 6);
    for (const pad of [0, -1, 1]) {
      assertBits(k.binaryConv2d(x, [2, c.C, c.H, c.W], w, wShapeOf(c), c.p, pad), binaryConv2d(x, [2, c.C, c.H, c.W], w, wShapeOf(c), c.p, pad), tag(c));
    }
  }
  assert.equal(k.prepareBinaryConv2d(new Float32Array(9), [1, 1, 3, 3], [1, 4, 4], cp([1, 1], [1, 1]), 0.5), null);
});

/** Σ|a·b| of each output: the reference op on |a|, |b|. */
const absOf = (a: Float32Array): Float32Array => a.map(Math.abs);

each('conv2d and prepareConv2d within the float32 bound of the reference (bias, n = 1 and 3, out)', (k) => {
  let seed = 100;
  for (const c of CASES) {
    const w = values(wLen(c), seed++), wShape = wShapeOf(c), bias = values(c.Cout, seed++);
    const K = (c.C / c.p.groups) * c.kh * c.kw;
    const prep = k.prepareConv2d(w, wShape, [c.C, c.H, c.W], c.p, bias);
    for (const n of [1, 3]) {
      const x = values(n * c.C * c.H * c.W, seed++), xShape = [n, c.C, c.H, c.W];
      const ref = conv2d(x, xShape, w, wShape, c.p), bound = conv2d(absOf(x), xShape, absOf(w), wShape, c.p);
      assertSum(k.conv2d(x, xShape, w, wShape, c.p), ref, bound, K, `${tag(c)} n ${n}`);
      const P = ref.length / (n * c.Cout);
      const withBias = ref.map((v, i) => v + bias[Math.floor(i / P) % c.Cout]!);
      const boundB = bound.map((v, i) => v + Math.abs(bias[Math.floor(i / P) % c.Cout]!));
      assertSum(prep.run(x, n), withBias, boundB, K + 1, `${tag(c)} n ${n} prepared`);
      const out = new Float32Array(ref.length);
      assert.equal(prep.run(x, n, out), out);
      assertSum(out, withBias, boundB, K + 1, `${tag(c)} n ${n} prepared (out)`);
    }
    prep.dispose();
  }
});

each('matmul within the float32 bound of the reference (all transposes)', (k) => {
  let seed = 200;
  for (const [m, K, n] of [[1, 1, 1], [3, 8, 9], [9, 31, 33], [33, 65, 3], [65, 3, 17], [4, 0, 5]] as const) {
    for (const tA of [false, true]) {
      for (const tB of [false, true]) {
        const a = values(m * K, seed++), b = values(K * n, seed++);
        const want = matmul(a, b, m, K, n, tA, tB), bound = matmul(absOf(a), absOf(b), m, K, n, tA, tB);
        assertSum(k.matmul(a, b, m, K, n, tA, tB), want, bound, K, `m ${m} k ${K} n ${n} tA ${tA} tB ${tB}`);
      }
    }
  }
});

test('wasm-simd and wasm: float conv2d and matmul bit-identical to each other', (t) => {
  const [s, p] = [kernels['wasm-simd'], kernels.wasm];
  if (typeof s === 'string' || typeof p === 'string') return t.skip(typeof s === 'string' ? s : (p as string));
  for (const c of CASES) {
    const w = values(wLen(c), 7), x = values(2 * c.C * c.H * c.W, 8), xs = [2, c.C, c.H, c.W];
    assertBits(s.conv2d(x, xs, w, wShapeOf(c), c.p), p.conv2d(x, xs, w, wShapeOf(c), c.p), tag(c));
  }
  const a = values(33 * 65, 9), b = values(65 * 17, 10);
  assertBits(s.matmul(a, b, 33, 65, 17, false, false), p.matmul(a, b, 33, 65, 17, false, false), 'matmul');
});

each('channelAct bit-identical to the TypeScript loop (residual, optional b0/pos/b1, −0, NaN, subnormals, out)', (k) => {
  const ts = {} as InferBackend; // no channelAct: infer/kernels.ts runs its loop
  let seed = 300;
  for (const [n, C, m] of [[1, 1, 1], [1, 3, 7], [3, 5, 33], [2, 16, 64]] as const) {
    for (let mask = 0; mask < 16; mask++) {
      const x = values(n * C * m, seed++).map((v, i) => (i % 17 === 1 ? NaN : i % 19 === 2 ? 1e-41 : i % 23 === 4 ? -3e38 : v * 4));
      const r = mask & 1 ? values(x.length, seed++) : null;
      const b0 = mask & 2 ? values(C, seed++) : null, pos = mask & 4 ? values(C, seed++) : null, b1 = mask & 8 ? values(C, seed++) : null;
      const neg = values(C, seed++);
      const want = channelAct(ts, x, n, [C, m, 1], b0 ?? undefined, pos ?? undefined, neg, b1 ?? undefined, r ?? undefined);
      const what = `n ${n} C ${C} m ${m} mask ${mask}`;
      assertBits(k.channelAct(x, r, n, C, m, b0, pos, neg, b1), want, what);
      const out = new Float32Array(x.length);
      assert.equal(k.channelAct(x, r, n, C, m, b0, pos, neg, b1, out), out);
      assertBits(out, want, `${what} (out)`);
    }
  }
});

each('results stay right after the memory grows (a big call between two small ones), no growth in steady state', (k) => {
  const c = CASES[6]!, w = values(wLen(c), 11), x = values(c.C * c.H * c.W, 12), wShape = wShapeOf(c);
  const prep = k.prepareBinaryConv2d(w, wShape, [c.C, c.H, c.W], c.p, -1)!;
  const fprep = k.prepareConv2d(w, wShape, [c.C, c.H, c.W], c.p, null);
  const before = prep.run(x, 1, null, null), fbefore = fprep.run(x, 1);
  assertBits(before, binaryConv2d(x, [1, c.C, c.H, c.W], w, wShape, c.p, -1), 'before');
  const big = 6_000_000;
  const xb = values(big, 13), neg = Float32Array.of(0.25);
  const yb = k.channelAct(xb, null, 1, 1, big, null, null, neg, null);
  for (const i of [0, 1, big - 2, big - 1]) {
    const u = xb[i]! + 0; // −0 + 0 = +0, as the loop computes
    assert.equal(yb[i], u >= 0 ? u : Math.fround(u * 0.25), `big channelAct [${i}]`);
  }
  const grown = k.memoryBytes();
  for (let i = 0; i < 3; i++) {
    assertBits(prep.run(x, 1, null, null), before, 'binary conv after growth');
    assertBits(fprep.run(x, 1), fbefore, 'float conv after growth');
  }
  assert.equal(k.memoryBytes(), grown, 'no growth in steady state');
  const a = bitpack(values(5 * 40, 14), 5, 40), b = bitpack(values(3 * 40, 15), 3, 40);
  assert.deepEqual(k.binaryMatmul(a, b, 5, 3, 40), binaryMatmul(a, b, 5, 3, 40));
  prep.dispose();
  fprep.dispose();
});

each('bad arguments fail with an OnebitError', (k) => {
  const c = CASES[0]!;
  const prep = k.prepareBinaryConv2d(values(wLen(c), 1), wShapeOf(c), [c.C, c.H, c.W], c.p, 0)!;
  assert.throws(() => prep.run(new Float32Array(3), 1, null, null), OnebitError);
  assert.throws(() => k.prepareConv2d(new Float32Array(9), [1, 2, 3, 3], [3, 4, 4], cp([1, 1], [0, 0]), null), OnebitError);
  assert.throws(() => k.conv2d(new Float32Array(16), [1, 1, 4, 4], new Float32Array(25), [1, 1, 5, 5], cp([1, 1], [0, 0])), OnebitError);
  prep.dispose();
  assert.throws(() => prep.run(values(c.C * c.H * c.W, 1), 1, null, null), OnebitError);
});
