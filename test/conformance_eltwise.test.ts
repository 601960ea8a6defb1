import './util/poison_outputs.js';
import '../src/index.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BinaryKernel, UnaryKernel } from '../src/core/backend.js';
import { Rng } from '../src/core/rng.js';
import { binary, unary } from '../src/backends/ref/elementwise.js';
import { outputF32 } from '../src/backends/native/alloc.js';
import { shortcutA as refShortcutA } from '../src/backends/ref/shortcut.js';
import { spread as refSpread, sum as refSum } from '../src/backends/ref/reduce.js';
import { eltwiseAddon, eltwiseKernels, NATIVE_ELTWISE_MIN, nativeChannelAct } from '../src/backends/native/eltwise.js';
import { clippedSteLoop } from '../src/quantizers/ste_sign.js';
import { approxSignBackwardLoop } from '../src/quantizers/approx_sign.js';
import { symmetricScaleLoop } from '../src/ops/binary_forward.js';

/*
 * Native float32 elementwise kernels (native/eltwise/eltwise.cc) against the TypeScript reference:
 * EXACTLY equal, element by element (Object.is: NaN equals NaN, +0 differs from −0). Sizes cover
 * tiny arrays, the serial/parallel split (300_001 > 256k) and the wrapper's native threshold.
 * Inputs mix NaN, ±0, ±Infinity and values at the clip boundary into uniform values.
 */

const SIZES = [1, 3, 31, 32, 33, 65, 100_000, 300_001];
const UNARY: [UnaryKernel, number][] = [['sign', 0], ['abs', 1], ['neg', 2], ['relu', 3]];
const BINARY: [BinaryKernel, number][] = [['add', 0], ['sub', 1], ['mul', 2]];
const SPECIAL = [NaN, 0, -0, Infinity, -Infinity, 1, -1, Math.fround(1 + 2 ** -23), 1e-45, -3.4e38];

function values(n: number, seed: number): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, (_, i) => (i % 7 === seed % 7 ? SPECIAL[(i + seed) % SPECIAL.length]! : r.uniform(-2, 2)));
}

function assertSame(got: Float32Array, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    if (!Object.is(got[i], want[i])) assert.fail(`${what}: [${i}] = ${got[i]}, want ${want[i]}`);
  }
}

const addon = eltwiseAddon();
const skip = addon && eltwiseKernels ? false : 'native addon not built (build/Release/onebit.node); run `node native/build.cjs`';

test('native unary kernels equal the reference exactly', { skip }, () => {
  for (const n of SIZES) {
    const x = values(n, n);
    for (const [op, code] of UNARY) {
      const want = unary(op, x);
      const direct = new Float32Array(n);
      addon!.unaryF32(code, direct, x);
      assertSame(direct, want, `unaryF32 ${op} n=${n}`);
      assertSame(eltwiseKernels!.unary(op, x), want, `backend unary ${op} n=${n}`);
    }
    // Ops without a native kernel fall back to the reference.
    assertSame(eltwiseKernels!.unary('exp', x), unary('exp', x), `backend unary exp n=${n}`);
  }
});

test('native binary kernels equal the reference exactly (same shape, scalar either side, broadcast fallback)', { skip }, () => {
  for (const n of SIZES) {
    const a = values(n, n + 1), b = values(n, n + 2), y = Float32Array.of(-0.75), z = Float32Array.of(NaN);
    for (const [op, code] of BINARY) {
      const want = binary(op, a, [n], b, [n], [n]);
      const direct = new Float32Array(n);
      addon!.binarySameF32(code, direct, a, b);
      assertSame(direct, want, `binarySameF32 ${op} n=${n}`);
      assertSame(eltwiseKernels!.binary(op, a, [n], b, [n], [n]), want, `backend binary ${op} n=${n}`);
      for (const s of [y, z, Float32Array.of(-0), Float32Array.of(Infinity)]) {
        assertSame(eltwiseKernels!.binary(op, a, [n], s, [1], [n]), binary(op, a, [n], s, [1], [n]), `${op} a·scalar ${s[0]} n=${n}`);
        assertSame(eltwiseKernels!.binary(op, s, [], a, [n], [n]), binary(op, s, [], a, [n], [n]), `${op} scalar·a ${s[0]} n=${n}`);
        const d1 = new Float32Array(n), d2 = new Float32Array(n);
        addon!.binaryScalarF32(code, d1, a, s[0]!, false);
        addon!.binaryScalarF32(code, d2, a, s[0]!, true);
        assertSame(d1, binary(op, a, [n], s, [1], [n]), `binaryScalarF32 ${op} ${s[0]} n=${n}`);
        assertSame(d2, binary(op, s, [1], a, [n], [n]), `binaryScalarF32 first ${op} ${s[0]} n=${n}`);
      }
    }
  }
  // Real broadcasting and ops without a native kernel (large): the reference path.
  const rows = 1000, cols = 101, big = values(rows * cols, 5), row = values(cols, 6);
  assert.ok(rows * cols >= NATIVE_ELTWISE_MIN);
  for (const op of ['add', 'sub', 'mul', 'div', 'maximum'] as BinaryKernel[]) {
    assertSame(eltwiseKernels!.binary(op, big, [rows, cols], row, [1, cols], [rows, cols]), binary(op, big, [rows, cols], row, [1, cols], [rows, cols]), `broadcast ${op}`);
  }
  assertSame(eltwiseKernels!.binary('div', big, [rows * cols], big, [rows * cols], [rows * cols]), binary('div', big, [rows * cols], big, [rows * cols], [rows * cols]), 'same-shape div');
});

test('native clippedSte equals the TypeScript loop exactly', { skip }, () => {
  for (const n of SIZES) {
    const g = values(n, n + 3), x = values(n, n + 4);
    for (const clip of [1, 0.5, 1.3, Math.fround(1 + 2 ** -23), 0, Infinity, -1, NaN, 3.5e38, 1e-46]) {
      // The float neighbours of ±clip (the native kernel compares in float; TypeScript in double).
      const xc = x.slice(), f = Math.fround(clip), step = Number.isFinite(f) && f !== 0 ? Math.abs(f) * 2 ** -23 : 0;
      for (let i = 0; i < Math.min(n, 6); i++) xc[i] = (i % 2 ? -1 : 1) * (f + (i % 3 - 1) * step);
      assertSame(eltwiseKernels!.clippedSte(g, xc, clip), clippedSteLoop(g, xc, clip), `clippedSte clip=${clip} n=${n}`);
    }
  }
});

test('native approxSignBackward equals the TypeScript loop exactly (edges ±1, 0, −0, NaN, ±Infinity)', { skip }, () => {
  for (const n of [...SIZES, NATIVE_ELTWISE_MIN]) {
    const g = values(n, n + 7), x = values(n, n + 8);
    const edges = [-1, Math.fround(-1 - 2 ** -23), Math.fround(-1 + 2 ** -24), 1, Math.fround(1 - 2 ** -24), 0, -0, 0.5, -0.5];
    for (let i = 0; i < Math.min(n, edges.length); i++) x[i] = edges[i]!;
    assertSame(eltwiseKernels!.approxSignBackward(g, x), approxSignBackwardLoop(g, x), `approxSignBackward n=${n}`);
    const direct = new Float32Array(n);
    addon!.approxSignBackwardF32(direct, g, x);
    assertSame(direct, approxSignBackwardLoop(g, x), `approxSignBackwardF32 n=${n}`);
    const inPlace = g.slice(), steInPlace = g.slice();
    addon!.approxSignBackwardF32(inPlace, inPlace, x);
    assertSame(inPlace, approxSignBackwardLoop(g, x), `approxSignBackwardF32 in place n=${n}`);
    addon!.clippedSteF32(steInPlace, steInPlace, x, 1);
    assertSame(steInPlace, clippedSteLoop(g, x, 1), `clippedSteF32 in place n=${n}`);
  }
});

test('native scaleChannels equals the float32 loop exactly (in place, per channel)', { skip }, () => {
  for (const [n, c, plane] of [[1, 1, 1], [2, 3, 5], [3, 17, 65], [128, 16, 1024], [1, 64, 4097]] as const) {
    const y = values(n * c * plane, c + plane), f = values(c, n + c);
    const want = y.slice();
    for (let i = 0; i < n; i++) for (let ch = 0; ch < c; ch++) for (let j = 0; j < plane; j++) {
      const o = (i * c + ch) * plane + j;
      want[o] = Math.fround(want[o]! * f[ch]!);
    }
    eltwiseKernels!.scaleChannels(y, n, c, plane, f);
    assertSame(y, want, `scaleChannels ${n}x${c}x${plane}`);
  }
  assert.throws(() => eltwiseKernels!.scaleChannels(new Float32Array(6), 2, 2, 2, new Float32Array(2)), /scaleChannels: expected y of 2·2·2/);
});

test('native symmetricScale equals the TypeScript loop (two-valued or not, ±0, NaN, ±Infinity)', { skip }, () => {
  const cases: [string, Float32Array][] = [['empty', new Float32Array(0)]];
  for (const n of SIZES) {
    const r = new Rng(n);
    const s = Math.fround(0.37);
    const two = Float32Array.from({ length: n }, () => (r.uniform(-1, 1) < 0 ? -s : s));
    cases.push([`±s n=${n}`, two]);
    cases.push([`±1 n=${n}`, two.map((v) => Math.sign(v))]);
    cases.push([`±Infinity n=${n}`, two.map((v) => v * Infinity)]);
    cases.push([`zeros n=${n}`, new Float32Array(n)]);
    cases.push([`−0/0 mix n=${n}`, Float32Array.from({ length: n }, (_, i) => (i % 2 ? -0 : 0))]);
    cases.push([`−s first n=${n}`, Float32Array.from({ length: n }, (_, i) => (i ? s : -s))]);
    cases.push([`NaN first n=${n}`, two.map((v, i) => (i ? v : NaN))]);
    for (const at of [1, Math.floor(n / 2), 255, 256, n - 1]) {
      if (at < 1 || at >= n) continue;
      for (const bad of [NaN, 0, -0, Math.fround(0.37 + 1e-6), 1, -Infinity]) {
        const c = two.slice();
        c[at] = bad;
        cases.push([`±s with ${bad} at ${at} n=${n}`, c]);
      }
    }
    cases.push([`random n=${n}`, values(n, n + 5)]);
  }
  for (const [what, x] of cases) assert.equal(eltwiseKernels!.symmetricScale(x), symmetricScaleLoop(x), what);
});

/** Naive broadcasting oracle: unravel every output index and read each operand by its own index. */
function naiveBroadcast(op: BinaryKernel, a: Float32Array, as: number[], b: Float32Array, bs: number[], os: number[]): Float32Array {
  const f: Record<string, (x: number, y: number) => number> = {
    add: (x, y) => x + y, sub: (x, y) => x - y, mul: (x, y) => x * y, div: (x, y) => x / y,
    maximum: (x, y) => (x >= y ? x : y), minimum: (x, y) => (x <= y ? x : y),
    greater: (x, y) => (x > y ? 1 : 0), greaterEqual: (x, y) => (x >= y ? 1 : 0), equal: (x, y) => (x === y ? 1 : 0),
  };
  const n = os.reduce((p, q) => p * q, 1), out = new Float32Array(n);
  const at = (shape: number[], idx: number[]) => {
    const off = os.length - shape.length;
    let k = 0;
    for (let d = 0; d < shape.length; d++) k = k * shape[d]! + (shape[d] === 1 ? 0 : idx[d + off]!);
    return k;
  };
  for (let i = 0; i < n; i++) {
    const idx: number[] = [];
    for (let d = os.length - 1, r = i; d >= 0; d--) { idx[d] = r % os[d]!; r = Math.floor(r / os[d]!); }
    out[i] = f[op]!(a[at(as, idx)]!, b[at(bs, idx)]!);
  }
  return out;
}

test('broadcasting binary kernels (collapsed to 3 dims) equal a naive oracle exactly, on both backends', () => {
  const cases: [number[], number[]][] = [
    [[5, 3, 7, 9], [1, 3, 1, 1]], [[1, 3, 1, 1], [5, 3, 7, 9]], [[5, 3, 7, 9], [5, 3, 1, 1]], [[5, 1, 7, 9], [1, 3, 1, 1]],
    [[33, 65], [33, 1]], [[33, 65], [65]], [[2, 3, 4, 5, 6], [1, 3, 1, 5, 1]], [[64, 33, 9, 11], [1, 33, 1, 1]], [[64, 33, 9, 11], [64, 33, 1, 1]], [[1, 33, 1, 1], [64, 33, 9, 11]], [[3, 1], [1, 4]],
  ];
  const ops: BinaryKernel[] = ['add', 'sub', 'mul', 'div', 'maximum', 'minimum', 'greater', 'greaterEqual', 'equal'];
  cases.forEach(([as, bs], k) => {
    const os = as.length >= bs.length ? as.map((d, i) => Math.max(d, bs[i - (as.length - bs.length)] ?? 1)) : bs.map((d, i) => Math.max(d, as[i - (bs.length - as.length)] ?? 1));
    const a = values(as.reduce((p, q) => p * q, 1), 11 + k), b = values(bs.reduce((p, q) => p * q, 1), 12 + k);
    for (const op of ops) {
      const want = naiveBroadcast(op, a, as, b, bs, os);
      assertSame(binary(op, a, as, b, bs, os), want, `ref ${op} ${JSON.stringify(as)}∘${JSON.stringify(bs)}`);
      if (eltwiseKernels) assertSame(eltwiseKernels.binary(op, a, as, b, bs, os), want, `native ${op} ${JSON.stringify(as)}∘${JSON.stringify(bs)}`);
    }
  });
});

test('native channelAct (inference: residual add + per-channel PReLU/RPReLU/Maxout) equals the float32 TypeScript steps exactly', { skip: nativeChannelAct ? false : 'addon without channelActF32' }, () => {
  for (const [n, C, inner] of [[1, 3, 5], [2, 64, 33], [1, 512, 16], [3, 7, 1]] as const) {
    const x = values(n * C * inner, C), r = values(n * C * inner, C + 1);
    const b0 = values(C, 2), pos = values(C, 3), neg = values(C, 4), b1 = values(C, 5);
    for (const [withR, withB, withPos] of [[true, true, false], [false, false, false], [true, true, true], [false, true, true]]) {
      const got = nativeChannelAct!(x, withR ? r : null, n, C, inner, withB ? b0 : null, withPos ? pos : null, neg, withB ? b1 : null);
      const want = new Float32Array(x.length), fr = Math.fround;
      for (let i = 0; i < x.length; i++) {
        const c = Math.floor(i / inner) % C;
        const v = withR ? fr(x[i]! + r[i]!) : x[i]!;
        const u = fr(v + (withB ? b0[c]! : 0));
        want[i] = fr(u >= 0 ? (withPos ? pos[c]! : 1) * u : neg[c]! * u) + (withB ? b1[c]! : 0);
      }
      assertSame(got, want, `channelAct n${n} C${C} inner${inner} r${withR} b${withB} pos${withPos}`);
    }
  }
});

test('uninitialized native outputs are NaN-poisoned in the conformance tests (unwritten elements cannot pass as zeros)', () => {
  const small = outputF32(16), big = outputF32(1 << 14);
  assert.ok(small.every((v) => v === 0), 'small outputs are plain zero-filled arrays');
  assert.equal(big.length, 1 << 14);
  assert.ok(big.every((v) => Number.isNaN(v)), 'large outputs are poisoned');
});

test('native shortcutA (option-A shortcut, forward and gradient) equals the reference kernel exactly; bad sizes throw', { skip }, () => {
  // [N, C, H, W, outC]: odd and even sides, no padding channels, a 1×1 image, the ResNet-20 layers (threaded).
  const cases = [[1, 1, 1, 1, 1], [2, 3, 5, 7, 5], [3, 4, 6, 3, 4], [2, 5, 9, 9, 9], [1, 2, 2, 2, 8], [128, 16, 32, 32, 32], [64, 32, 16, 16, 64]] as const;
  cases.forEach(([N, C, H, W, outC], i) => {
    const x = values(N * C * H * W, 30 + i);
    const fwd = eltwiseKernels!.shortcutA!('forward', x, N, C, H, W, outC);
    assertSame(fwd, refShortcutA('forward', x, N, C, H, W, outC), `shortcutA forward ${[N, C, H, W, outC]}`);
    const g = values(fwd.length, 60 + i);
    assertSame(eltwiseKernels!.shortcutA!('backward', g, N, C, H, W, outC), refShortcutA('backward', g, N, C, H, W, outC), `shortcutA backward ${[N, C, H, W, outC]}`);
  });
  assert.throws(() => eltwiseAddon()!.shortcutAF32!(0, new Float32Array(5), new Float32Array(8), 1, 2, 2, 2, 4), /shortcutAF32: array lengths/);
  assert.throws(() => eltwiseAddon()!.shortcutAF32!(0, new Float32Array(4), new Float32Array(8), 1, 2, 2, 2, 3), /shortcutAF32: expected/);
});

test('native sum (float64 per axis, as the reference) equals the reference exactly, on awkward shapes and axes', { skip }, () => {
  // The kernel itself on small [outer, len, inner] views: block edges of inner (63, 64, 65), len 1, empty.
  const views = [[1, 1, 1], [3, 5, 1], [2, 7, 63], [2, 3, 64], [3, 2, 65], [1, 33, 129], [4, 0, 3], [0, 3, 2], [5, 1, 31]] as const;
  views.forEach(([outer, len, inner], i) => {
    const x = values(outer * len * inner, 70 + i);
    const out = new Float32Array(outer * inner).fill(NaN);
    eltwiseAddon()!.sumAxisF32!(out, x, outer, len, inner);
    assertSame(out, refSum(x, [outer, len, inner], [1]), `sumAxisF32 ${[outer, len, inner]}`);
  });
  // Through the backend (native above NATIVE_ELTWISE_MIN elements): several axes in sequence.
  const cases: [number[], number[]][] = [
    [[128, 64, 8, 8], [2, 3]], [[128, 64, 8, 8], [0]], [[3, 65, 17, 19], [1, 3]], [[7, 11, 13, 67], [0, 1, 2, 3]], [[300_001], [0]], [[2, 40_000], [1]],
  ];
  cases.forEach(([shape, axes], i) => {
    const x = values(shape.reduce((a, b) => a * b, 1), 80 + i);
    assertSame(eltwiseKernels!.sum!(x, shape, axes), refSum(x, shape, axes), `sum ${shape} over ${axes}`);
  });
  assert.throws(() => eltwiseAddon()!.sumAxisF32!(new Float32Array(3), new Float32Array(8), 2, 2, 2), /sumAxisF32: expected/);
});

test('native spread (a sum / mean gradient over trailing axes) equals the reference exactly', { skip }, () => {
  const cases = [[1, 1, 0], [3, 7, 7], [5, 64, 0], [128 * 64, 64, 64], [1000, 300, 3], [70_000, 1, 0], [33, 4096, 4096]] as const;
  cases.forEach(([n, spread, divisor], i) => {
    const g = values(n, 90 + i);
    assertSame(eltwiseKernels!.spread!(g, spread, divisor), refSpread(g, spread, divisor), `spread ${[n, spread, divisor]}`);
    const out = new Float32Array(n * spread).fill(NaN);
    eltwiseAddon()!.spreadF32!(out, g, spread, divisor);
    assertSame(out, refSpread(g, spread, divisor), `spreadF32 ${[n, spread, divisor]}`);
  });
  assert.throws(() => eltwiseAddon()!.spreadF32!(new Float32Array(5), new Float32Array(2), 2, 0), /spreadF32: expected/);
});
