import './util/poison_outputs.js';
import '../src/index.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import type { Conv2dParams } from '../src/core/backend.js';
import { Rng } from '../src/core/rng.js';
import { binaryConv2d, binaryMatmul, bitpack, wordsFor } from '../src/backends/ref/binary.js';
import { conv2d } from '../src/backends/ref/conv2d.js';
import { pad2d } from '../src/backends/ref/pad2d.js';
import { binaryAddon, binaryKernels, prepareBinaryConv2d } from '../src/backends/native/binary.js';

/*
 * Binary (1-bit) kernels. (a) The TypeScript reference against plain float oracles (sign, then a
 * float dot product / the float reference conv2d; ±1 borders through pad2d). (b) The native addon
 * (every ISA variant this CPU runs) against the reference. Everything must be EXACTLY equal: the
 * outputs are small integers. Sizes are the awkward ones: word boundaries (K = 31..33, 63..65,
 * 127, 129), odd spatial sizes, strides, paddings with each pad value, groups, dilation.
 */

const KS = [1, 31, 32, 33, 63, 64, 65, 127, 129, 1000];
const ROWS: [number, number][] = [[1, 1], [3, 5], [17, 33]];

/** Uniform in (−1, 1) with exact zeros and negative zeros mixed in (both count as +1). */
function values(n: number, seed: number): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, (_, i) => (i % 11 === 3 ? 0 : i % 13 === 5 ? -0 : r.uniform(-1, 1)));
}

const sign = (v: number): number => (v < 0 ? -1 : 1);
const signs = (x: Float32Array): Float32Array => x.map(sign);

/** Σ_j sign(a_ij)·sign(b_lj) in float64. */
function floatDots(a: Float32Array, b: Float32Array, m: number, n: number, k: number): Float32Array {
  const c = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let l = 0; l < n; l++) {
      let s = 0;
      for (let j = 0; j < k; j++) s += sign(a[i * k + j]!) * sign(b[l * k + j]!);
      c[i * n + l] = s;
    }
  }
  return c;
}

interface ConvCase {
  N: number; C: number; H: number; W: number; Cout: number; k: number;
  stride: number; pad: number; padValue: number; groups: number; dilation: number;
}

function params(c: ConvCase): Conv2dParams {
  return { stride: [c.stride, c.stride], padding: [c.pad, c.pad], dilation: [c.dilation, c.dilation], groups: c.groups };
}

/** conv2d(sign(x) padded with padValue, sign(w)) with the float reference conv. */
function floatConv(x: Float32Array, w: Float32Array, c: ConvCase): Float32Array {
  const xs = signs(x), ws = signs(w), p = params(c);
  const wShape = [c.Cout, c.C / c.groups, c.k, c.k];
  if (c.padValue === 0 || c.pad === 0) return conv2d(xs, [c.N, c.C, c.H, c.W], ws, wShape, p);
  const xp = pad2d(xs, [c.N, c.C, c.H, c.W], [c.pad, c.pad, c.pad, c.pad], c.padValue);
  return conv2d(xp, [c.N, c.C, c.H + 2 * c.pad, c.W + 2 * c.pad], ws, wShape, { ...p, padding: [0, 0] });
}

const name = (c: ConvCase): string =>
  `N${c.N} C${c.C} ${c.H}x${c.W} Cout${c.Cout} k${c.k} s${c.stride} p${c.pad} pv${c.padValue} g${c.groups} d${c.dilation}`;

/** Channels 1, 3, 31–33, 63–65 × kernel/stride/padding/pad-value combinations, plus groups and dilation. */
function convCases(): ConvCase[] {
  const cases: ConvCase[] = [];
  const combos: [number, number, number, number][] = [ // k, stride, pad, padValue
    [3, 1, 1, 0], [3, 1, 1, 1], [3, 1, 1, -1], [3, 2, 1, 0], [3, 2, 1, -1], [3, 2, 0, 0],
    [1, 1, 0, 0], [1, 2, 0, 0], [1, 1, 1, -1], [3, 1, 0, 1],
  ];
  const couts = [1, 3, 16, 17, 33];
  let i = 0;
  for (const C of [1, 3, 31, 32, 33, 63, 64, 65]) {
    for (const [k, stride, pad, padValue] of combos) {
      const [H, W] = i % 2 ? [9, 9] : [7, 5];
      cases.push({ N: 2, C, H, W, Cout: couts[i % couts.length]!, k, stride, pad, padValue, groups: 1, dilation: 1 });
      i++;
    }
  }
  for (const [C, Cout, padValue] of [[2, 2, 0], [4, 6, 1], [64, 32, -1], [66, 34, 0]] as const) {
    cases.push({ N: 2, C, H: 7, W: 5, Cout, k: 3, stride: 1, pad: 1, padValue, groups: 2, dilation: 1 });
    cases.push({ N: 1, C, H: 9, W: 9, Cout, k: 3, stride: 2, pad: 1, padValue, groups: 2, dilation: 1 });
  }
  for (const padValue of [0, 1, -1]) {
    cases.push({ N: 2, C: 33, H: 9, W: 9, Cout: 5, k: 3, stride: 1, pad: 2, padValue, groups: 1, dilation: 2 });
  }
  return cases;
}

function convInputs(c: ConvCase, seed: number): { x: Float32Array; w: Float32Array } {
  return {
    x: values(c.N * c.C * c.H * c.W, seed),
    w: values(c.Cout * (c.C / c.groups) * c.k * c.k, seed + 1),
  };
}

// ---- (a) reference kernels vs float oracles ----

test('ref bitpack: bit j of row r is x[r, j] < 0, LSB first, tail bits 0', () => {
  for (const k of KS) {
    for (const rows of [1, 3]) {
      const x = values(rows * k, k + rows);
      const out = bitpack(x, rows, k);
      const words = wordsFor(k);
      assert.equal(out.length, rows * words);
      for (let r = 0; r < rows; r++) {
        for (let j = 0; j < words * 32; j++) {
          const bit = (out[r * words + (j >>> 5)]! >>> (j & 31)) & 1;
          assert.equal(bit, j < k && x[r * k + j]! < 0 ? 1 : 0, `k=${k} row ${r} bit ${j}`);
        }
      }
    }
  }
});

/** Every value +1 except x[i] = −1: only bit i (word i >> 5, bit i & 31) is set. */
function oneHot(k: number, i: number): { x: Float32Array; want: Uint32Array } {
  const x = new Float32Array(k).fill(1);
  x[i] = -1;
  const want = new Uint32Array(wordsFor(k));
  want[i >>> 5] = (1 << (i & 31)) >>> 0;
  return { x, want };
}

const ONE_HOT: [number, number][] = [[1, 0], [32, 0], [32, 31], [33, 32], [64, 31], [64, 32], [65, 64], [129, 100], [1000, 999]];

test('ref bitpack: one-hot bit order', () => {
  for (const [k, i] of ONE_HOT) {
    const { x, want } = oneHot(k, i);
    assert.deepEqual(bitpack(x, 1, k), want, `k=${k} i=${i}`);
  }
});

test('ref binaryMatmul == float dot of signs (K − 2·popcount(a XOR b))', () => {
  for (const k of KS) {
    for (const [m, n] of ROWS) {
      const a = values(m * k, 3 * k + m), b = values(n * k, 5 * k + n);
      const got = binaryMatmul(bitpack(a, m, k), bitpack(b, n, k), m, n, k);
      assert.deepEqual(got, floatDots(a, b, m, n, k), `m=${m} n=${n} k=${k}`);
    }
  }
});

test('ref binaryConv2d == float conv2d of signs (zero and ±1 padding)', () => {
  convCases().forEach((c, i) => {
    const { x, w } = convInputs(c, 100 + 2 * i);
    const got = binaryConv2d(x, [c.N, c.C, c.H, c.W], w, [c.Cout, c.C / c.groups, c.k, c.k], params(c), c.padValue);
    assert.deepEqual(got, floatConv(x, w, c), name(c));
  });
});

// ---- (b) native kernels vs the reference ----

const addon = binaryAddon();
const skip = addon && binaryKernels ? false : 'native addon not built (build/Release/onebit.node); run `node native/build.cjs`';

test('native bitpack == ref (and one-hot bit order)', { skip }, () => {
  const nat = binaryKernels!;
  for (const k of KS) {
    for (const rows of [1, 3, 17]) {
      const x = values(rows * k, 7 * k + rows);
      assert.deepEqual(nat.bitpack(x, rows, k), bitpack(x, rows, k), `rows=${rows} k=${k}`);
    }
  }
  for (const [k, i] of ONE_HOT) {
    const { x, want } = oneHot(k, i);
    assert.deepEqual(nat.bitpack(x, 1, k), want, `k=${k} i=${i}`);
  }
});

test('native binaryMatmul == ref, every ISA variant this CPU runs', { skip }, (t) => {
  const isas = addon!.binaryIsas();
  t.diagnostic(`variants: ${isas.join(', ')} (selected: ${addon!.info().isa})`);
  const shapes: [number, number, number][] = [];
  for (const k of KS) for (const [m, n] of [...ROWS, [8, 16], [9, 17], [64, 100]] as [number, number][]) shapes.push([m, n, k]);
  shapes.push([64, 2048, 576], [16, 4097, 144]); // large enough for the threaded path
  for (const [m, n, k] of shapes) {
    const a = bitpack(values(m * k, 11 * k + m), m, k), b = bitpack(values(n * k, 13 * k + n), n, k);
    const want = binaryMatmul(a, b, m, n, k);
    assert.deepEqual(binaryKernels!.binaryMatmul(a, b, m, n, k), want, `selected m=${m} n=${n} k=${k}`);
    for (const isa of isas) {
      const out = new Float32Array(m * n).fill(NaN);
      addon!.binaryMatmulIsa(isa, out, a, b, m, n, k);
      assert.deepEqual(out, want, `${isa} m=${m} n=${n} k=${k}`);
    }
  }
});

test('native binaryMatmul reads unaligned views (typed-array offsets)', { skip }, () => {
  const m = 5, n = 19, k = 65, words = wordsFor(k);
  const a = bitpack(values(m * k, 1), m, k), b = bitpack(values(n * k, 2), n, k);
  const a1 = new Uint32Array(a.length + 1), b1 = new Uint32Array(b.length + 3);
  a1.set(a, 1);
  b1.set(b, 3);
  const want = binaryMatmul(a, b, m, n, k);
  for (const isa of addon!.binaryIsas()) {
    const out = new Float32Array(m * n + 1);
    addon!.binaryMatmulIsa(isa, out.subarray(1), a1.subarray(1), b1.subarray(3), m, n, k);
    assert.deepEqual(out.subarray(1), want, `${isa} words=${words}`);
  }
});

test('native binaryConv2d == ref (zero and ±1 padding, strides, groups, dilation)', { skip }, () => {
  const cases = convCases();
  // Larger, threaded cases (ResNet-20-like layers, batch 16).
  for (const padValue of [0, 1, -1]) {
    cases.push({ N: 16, C: 64, H: 8, W: 8, Cout: 64, k: 3, stride: 1, pad: 1, padValue, groups: 1, dilation: 1 });
  }
  cases.push({ N: 8, C: 16, H: 32, W: 32, Cout: 32, k: 3, stride: 2, pad: 1, padValue: -1, groups: 1, dilation: 1 });
  cases.forEach((c, i) => {
    const { x, w } = convInputs(c, 300 + 2 * i);
    const xShape = [c.N, c.C, c.H, c.W], wShape = [c.Cout, c.C / c.groups, c.k, c.k];
    const got = binaryKernels!.binaryConv2d(x, xShape, w, wShape, params(c), c.padValue);
    assert.deepEqual(got, binaryConv2d(x, xShape, w, wShape, params(c), c.padValue), name(c));
  });
});

test('native binaryConv2dScaled == binaryConv2d then fround(y · scale[co]) (scale in the GEMM epilogue), bit for bit', { skip }, () => {
  const cases = convCases();
  cases.push({ N: 16, C: 64, H: 8, W: 8, Cout: 64, k: 3, stride: 1, pad: 1, padValue: 0, groups: 1, dilation: 1 });
  cases.push({ N: 8, C: 16, H: 32, W: 32, Cout: 32, k: 3, stride: 2, pad: 1, padValue: -1, groups: 1, dilation: 1 });
  cases.forEach((c, i) => {
    const { x, w } = convInputs(c, 700 + 2 * i);
    const xShape = [c.N, c.C, c.H, c.W], wShape = [c.Cout, c.C / c.groups, c.k, c.k];
    const r = new Rng(40 + i);
    // Scales of both signs and awkward magnitudes (products that round), one exact zero.
    const scale = Float32Array.from({ length: c.Cout }, (_, j) => (j === 1 ? 0 : r.uniform(-3, 3) * 10 ** r.uniform(-6, 4)));
    const want = binaryConv2d(x, xShape, w, wShape, params(c), c.padValue);
    const plane = want.length / (c.N * c.Cout);
    want.forEach((v, j) => { want[j] = Math.fround(v * scale[Math.floor(j / plane) % c.Cout]!); });
    assert.deepEqual(binaryKernels!.binaryConv2dScaled!(x, xShape, w, wShape, params(c), c.padValue, scale), want, name(c));
  });
  const c = cases[0]!, { x, w } = convInputs(c, 1);
  assert.throws(() => binaryKernels!.binaryConv2dScaled!(x, [c.N, c.C, c.H, c.W], w, [c.Cout, c.C / c.groups, c.k, c.k], params(c), c.padValue, new Float32Array(c.Cout + 1)),
    /binaryConv2dScaled: expected \d+ scales \(one per output channel\), but got \d+\./);
});

test('native binaryConv2dScaledIfFinite: null exactly when x holds a NaN (found while packing, any position), else binaryConv2dScaled', { skip }, () => {
  const cases = convCases().filter((_, i) => i % 4 === 0);
  cases.push({ N: 16, C: 64, H: 8, W: 8, Cout: 64, k: 3, stride: 1, pad: 1, padValue: 0, groups: 1, dilation: 1 });
  cases.push({ N: 8, C: 16, H: 32, W: 32, Cout: 16, k: 3, stride: 1, pad: 1, padValue: 0, groups: 1, dilation: 1 });
  cases.forEach((c, i) => {
    const { x, w } = convInputs(c, 800 + 2 * i);
    const xShape = [c.N, c.C, c.H, c.W], wShape = [c.Cout, c.C / c.groups, c.k, c.k];
    const scale = Float32Array.from({ length: c.Cout }, (_, j) => 0.5 + j / 7);
    x[0] = Infinity; // ±Infinity are signs like any other value
    x[x.length - 1] = -Infinity;
    const withInf = binaryKernels!.binaryConv2dScaled!(x, xShape, w, wShape, params(c), c.padValue, scale);
    assert.deepEqual(binaryKernels!.binaryConv2dScaledIfFinite!(x, xShape, w, wShape, params(c), c.padValue, scale), withInf, `${name(c)} finite`);
    // A NaN at the first and last element, in the last channel of the first plane word, in a
    // later word's channel, and at the last pixel of a plane (the packing's scalar tail).
    const HW = c.H * c.W;
    const spots = [0, x.length - 1, (c.C - 1) * HW + Math.floor(HW / 2), Math.min(c.C - 1, 32) * HW + 3, HW - 1, (c.N - 1) * c.C * HW + 7];
    for (const at of spots) {
      const xn = Float32Array.from(x);
      xn[at] = at % 2 ? NaN : -NaN;
      assert.equal(binaryKernels!.binaryConv2dScaledIfFinite!(xn, xShape, w, wShape, params(c), c.padValue, scale), null, `${name(c)} NaN at ${at}`);
    }
  });
});

test('native binaryConv2d == ref under every other ISA variant (ONEBIT_ISA, child process)', { skip }, (t) => {
  const others = addon!.binaryIsas().filter((isa) => isa !== addon!.info().isa);
  if (!others.length) {
    t.diagnostic('only one variant on this CPU');
    return;
  }
  // A subset of the cases (every third, plus one threaded layer) in a child with the variant forced.
  const cases = convCases().filter((_, i) => i % 3 === 0);
  cases.push({ N: 16, C: 64, H: 8, W: 8, Cout: 64, k: 3, stride: 1, pad: 1, padValue: 0, groups: 1, dilation: 1 });
  const url = (rel: string): string => new URL(rel, import.meta.url).href;
  const code = `
    const { binaryKernels, binaryAddon } = await import(${JSON.stringify(url('../src/backends/native/binary.js'))});
    const { binaryConv2d } = await import(${JSON.stringify(url('../src/backends/ref/binary.js'))});
    const { Rng } = await import(${JSON.stringify(url('../src/core/rng.js'))});
    const values = (n, seed) => { const r = new Rng(seed); return Float32Array.from({ length: n }, (_, i) => (i % 11 === 3 ? 0 : r.uniform(-1, 1))); };
    const bad = [];
    ${JSON.stringify(cases)}.forEach((c, i) => {
      const x = values(c.N * c.C * c.H * c.W, 500 + i), w = values(c.Cout * (c.C / c.groups) * c.k * c.k, 900 + i);
      const p = { stride: [c.stride, c.stride], padding: [c.pad, c.pad], dilation: [c.dilation, c.dilation], groups: c.groups };
      const xs = [c.N, c.C, c.H, c.W], ws = [c.Cout, c.C / c.groups, c.k, c.k];
      const got = binaryKernels.binaryConv2d(x, xs, w, ws, p, c.padValue), want = binaryConv2d(x, xs, w, ws, p, c.padValue);
      if (got.length !== want.length || got.some((v, j) => v !== want[j])) bad.push(JSON.stringify(c));
    });
    console.log(binaryAddon().info().isa + ' ' + (bad.length ? 'MISMATCH ' + bad.join(' ') : 'ok'));`;
  for (const isa of others) {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { env: { ...process.env, ONEBIT_ISA: isa }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), `${isa} ok`);
  }
});

test('native binary kernels reject wrong sizes with an Error', { skip }, () => {
  const a = new Uint32Array(2), b = new Uint32Array(2);
  assert.throws(() => addon!.binaryMatmul(new Float32Array(2), a, b, 1, 1, 64), /out must have 1 elements, but got 2/);
  assert.throws(() => addon!.binaryMatmul(new Float32Array(1), a, b, 1, 1, 65), /a must have 3 elements/);
  assert.throws(() => addon!.binaryMatmulIsa('sse' as never, new Float32Array(1), a, b, 1, 1, 64), /isa must be/);
  assert.throws(() => addon!.bitpack(new Uint32Array(2), new Float32Array(3), 1, 3), /out must have 1 elements/);
  const geom = Int32Array.of(1, 3, 5, 5, 2, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1); // C != Cg·groups
  assert.throws(() => addon!.binaryConv2d(new Float32Array(50), new Float32Array(75), new Float32Array(36), geom, 0), /geometry/);
});

test('prepared native binary conv (weights packed once, fused per-channel affine) equals the reference conv + affine exactly', { skip: prepareBinaryConv2d(new Float32Array(1), [1, 1, 1, 1], [1, 1, 1], { stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1 }, 0) ? false : 'native addon without binaryConv2dPrepare' }, () => {
  const cases: [number, number, number, number, number, number, number][] = [
    // C, Cout, H, W, k, stride, pad
    [1, 3, 5, 7, 3, 1, 1], [3, 16, 9, 9, 3, 2, 1], [33, 65, 7, 5, 3, 1, 1], [64, 64, 8, 8, 3, 1, 1], [65, 31, 6, 6, 1, 2, 0], [32, 33, 4, 4, 3, 1, 1],
  ];
  let k = 0;
  for (const [C, Cout, H, W, ks, s, pd] of cases) {
    for (const padValue of [0, 1, -1]) {
      const p: Conv2dParams = { stride: [s, s], padding: [pd, pd], dilation: [1, 1], groups: 1 };
      const w = values(Cout * C * ks * ks, 100 + k);
      const prep = prepareBinaryConv2d(w, [Cout, C, ks, ks], [C, H, W], p, padValue)!;
      const scale = values(Cout, 200 + k), bias = values(Cout, 300 + k);
      for (const N of [1, 3]) {
        const x = values(N * C * H * W, 400 + k++);
        const raw = binaryConv2d(x, [N, C, H, W], w, [Cout, C, ks, ks], p, padValue);
        const [, , Ho, Wo] = prep.outShape(N);
        const want = raw.map((v, i) => Math.fround(v * scale[Math.floor(i / (Ho * Wo)) % Cout]!) + bias[Math.floor(i / (Ho * Wo)) % Cout]!);
        const got = prep.run(x, N, scale, bias);
        const plain = prep.run(x, N, null, null);
        for (let i = 0; i < want.length; i++) {
          if (!Object.is(got[i], Math.fround(want[i]!))) assert.fail(`C${C} Cout${Cout} ${H}x${W} k${ks} s${s} p${pd} pv${padValue} N${N}: [${i}] = ${got[i]}, want ${want[i]}`);
          if (plain[i] !== raw[i]) assert.fail(`no affine: [${i}] = ${plain[i]}, want ${raw[i]}`);
        }
        // A per-input-channel threshold: the bits of sign(x − thr[c]); some x equal their threshold.
        const thr = values(C, 500 + k);
        const xt = x.map((v, i) => (i % 17 === 0 ? thr[Math.floor(i / (H * W)) % C]! : v));
        const shifted = xt.map((v, i) => v - thr[Math.floor(i / (H * W)) % C]!);
        const wantT = binaryConv2d(shifted, [N, C, H, W], w, [Cout, C, ks, ks], p, padValue);
        const gotT = prep.run(xt, N, null, null, thr);
        for (let i = 0; i < wantT.length; i++) if (gotT[i] !== wantT[i]) assert.fail(`thr: [${i}] = ${gotT[i]}, want ${wantT[i]}`);
      }
    }
  }
});

test('prepared native binary conv: ResNet-18 CIFAR layers, groups, dilation, tail words, batch sizes and thread counts (bit-exact)', { skip: prepareBinaryConv2d(new Float32Array(1), [1, 1, 1, 1], [1, 1, 1], { stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1 }, 0) ? false : 'native addon without binaryConv2dPrepare' }, () => {
  const threads0 = addon!.info().threads;
  // C, Cout, H, W, k, stride, pad, dilation, groups, padValue
  const cases: [number, number, number, number, number, number, number, number, number, number][] = [
    [64, 64, 32, 32, 3, 1, 1, 1, 1, 0], [64, 128, 32, 32, 3, 2, 1, 1, 1, -1], [128, 128, 16, 16, 3, 1, 1, 1, 1, 1],
    [128, 256, 16, 16, 3, 2, 1, 1, 1, 0], [256, 256, 8, 8, 3, 1, 1, 1, 1, -1], [256, 512, 8, 8, 3, 2, 1, 1, 1, 0], [512, 512, 4, 4, 3, 1, 1, 1, 1, 0],
    [97, 40, 11, 13, 3, 1, 1, 1, 1, 0], // three plane words (last one partial), odd sizes: packed pixels span rows
    [33, 12, 5, 19, 3, 2, 2, 2, 1, -1], // dilation 2, stride 2
    [66, 34, 9, 7, 3, 1, 1, 1, 2, 0], [64, 32, 6, 6, 1, 1, 0, 1, 2, 1], // groups 2
    [40, 24, 17, 9, 1, 2, 0, 1, 1, 0], [1, 5, 3, 3, 3, 1, 1, 1, 1, -1],
  ];
  let k = 0;
  try {
    for (const [C, Cout, H, W, ks, s, pd, dil, groups, padValue] of cases) {
      const p: Conv2dParams = { stride: [s, s], padding: [pd, pd], dilation: [dil, dil], groups };
      const wShape = [Cout, C / groups, ks, ks];
      const w = values(Cout * (C / groups) * ks * ks, 700 + k);
      const prep = prepareBinaryConv2d(w, wShape, [C, H, W], p, padValue)!;
      const scale = values(Cout, 800 + k), bias = values(Cout, 900 + k), thr = values(C, 1000 + k);
      // One reference run on the largest batch; smaller batches are its prefixes.
      const big = Cout * C * H * W > 1e6, Nmax = big ? 2 : 3, CHW = C * H * W;
      const xAll = values(Nmax * CHW, 1100 + k++).map((v, i) => (i % 23 === 0 ? thr[Math.floor(i / (H * W)) % C]! : v));
      const raw = binaryConv2d(xAll, [Nmax, C, H, W], w, wShape, p, padValue);
      const rawT = binaryConv2d(xAll.map((v, i) => v - thr[Math.floor(i / (H * W)) % C]!), [Nmax, C, H, W], w, wShape, p, padValue);
      const batches: (readonly [number, number])[] = big ? [[1, 2], [2, 1], [1, 2]] : [[1, 2], [3, 2], [1, 1], [2, 2], [1, 2]];
      for (const [N, t] of batches) { // the bit planes grow, then are reused for a smaller batch
        addon!.setThreads(t);
        const x = xAll.subarray(0, N * CHW);
        const tag = `C${C} Cout${Cout} ${H}x${W} k${ks} s${s} p${pd} d${dil} g${groups} pv${padValue} N${N} threads ${t}`;
        const [, , Ho, Wo] = prep.outShape(N);
        const P = Ho * Wo;
        const plain = prep.run(x, N, null, null);
        assert.equal(plain.length, N * Cout * P);
        for (let i = 0; i < plain.length; i++) if (plain[i] !== raw[i]) assert.fail(`${tag} plain: [${i}] = ${plain[i]}, want ${raw[i]}`);
        // The engine's call: thresholds folded into the packing, the affine map in the epilogue, a reused output.
        const out = new Float32Array(N * Cout * P).fill(NaN);
        const got = prep.run(x, N, scale, bias, thr, out);
        assert.equal(got, out);
        for (let i = 0; i < got.length; i++) {
          const co = Math.floor(i / P) % Cout;
          const want = Math.fround(Math.fround(rawT[i]! * scale[co]!) + bias[co]!);
          if (!Object.is(got[i], want)) assert.fail(`${tag} thr+affine: [${i}] = ${got[i]}, want ${want}`);
        }
        // The fused epilogue: + residual (the engine's `add`), then the channel activation, each
        // float32 step as kernels.ts channelAct: u = (y + r) + b0; y = u·(u >= 0 ? pos : neg) + b1.
        // Some residuals cancel y exactly (a +0 / −0 sum), some b0 are absent (+0 added), pos absent.
        const res = values(N * Cout * P, 1200 + k).map((v, i) => (i % 29 === 0 ? -got[i]! : v));
        const b0 = k % 2 ? values(Cout, 1300 + k) : null, pos = k % 3 ? values(Cout, 1400 + k) : null;
        const neg = values(Cout, 1500 + k), b1 = k % 2 ? null : values(Cout, 1600 + k);
        const fr = Math.fround;
        const withRes = prep.run(x, N, scale, bias, thr, undefined, res);
        const fused = prep.run(x, N, scale, bias, thr, new Float32Array(1), res, { b0, pos, neg, b1 });
        const actOnly = prep.run(x, N, scale, bias, thr, undefined, null, { b0, pos, neg, b1 });
        for (let i = 0; i < got.length; i++) {
          const co = Math.floor(i / P) % Cout;
          const act = (t: number): number => {
            const u = fr(t + (b0 ? b0[co]! : 0));
            return fr(fr(u * (u >= 0 ? (pos ? pos[co]! : 1) : neg[co]!)) + (b1 ? b1[co]! : 0));
          };
          const t = fr(got[i]! + res[i]!);
          if (!Object.is(withRes[i], t)) assert.fail(`${tag} + residual: [${i}] = ${withRes[i]}, want ${t}`);
          if (!Object.is(fused[i], act(t))) assert.fail(`${tag} + residual + act: [${i}] = ${fused[i]}, want ${act(t)}`);
          if (!Object.is(actOnly[i], act(got[i]!))) assert.fail(`${tag} act: [${i}] = ${actOnly[i]}, want ${act(got[i]!)}`);
        }
      }
    }
  } finally {
    addon!.setThreads(threads0);
  }
  const exec = addon!.binaryConv2dExec;
  if (exec) {
    assert.throws(() => exec({} as never, new Float32Array(1), new Float32Array(1), 1, null, null, null), /handle from binaryConv2dCreate/);
    const p: Conv2dParams = { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };
    const prep = prepareBinaryConv2d(values(2 * 3 * 9, 1), [2, 3, 3, 3], [3, 4, 4], p, 0)!;
    assert.ok(prep.residual);
    const x = values(3 * 16, 2);
    assert.throws(() => prep.run(x, 1, null, null, null, undefined, new Float32Array(5)), /res must have 32 elements/);
    assert.throws(() => prep.run(x, 1, null, null, null, undefined, null, { neg: new Float32Array(3) }), /neg must have 2 elements/);
  }
});
