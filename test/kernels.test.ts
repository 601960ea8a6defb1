import '../src/index.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BinaryKernel, Shape } from '../src/core/backend.js';
import { Rng } from '../src/core/rng.js';
import { refBackend as K } from '../src/backends/ref/index.js';
import { assertClose } from './util/gradcheck.js';

/*
 * The reference kernels against naive oracles written here (index arithmetic and float64 loops,
 * nothing shared with the kernels).
 */

const size = (shape: Shape): number => shape.reduce((a, b) => a * b, 1);

function rand(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => r.uniform(lo, hi));
}

/** Small integers: make ties and equalities common for comparisons. */
function randInt(n: number, seed: number, lo = -3, hi = 3): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => lo + r.int(hi - lo + 1));
}

/** Row-major multi-index of flat index i. */
function unravel(i: number, shape: Shape): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = i % shape[d]!;
    i = Math.floor(i / shape[d]!);
  }
  return idx;
}

/** Flat index into an array of `shape` for an index of the broadcast output (right-aligned, dims of 1 repeat). */
function broadcastIndex(outIdx: number[], shape: Shape): number {
  const off = outIdx.length - shape.length;
  let flat = 0;
  for (let d = 0; d < shape.length; d++) flat = flat * shape[d]! + (shape[d] === 1 ? 0 : outIdx[d + off]!);
  return flat;
}

function broadcastShape(a: Shape, b: Shape): number[] {
  const n = Math.max(a.length, b.length);
  return Array.from({ length: n }, (_, i) => {
    const da = a[a.length - n + i] ?? 1, db = b[b.length - n + i] ?? 1;
    assert.ok(da === db || da === 1 || db === 1, `test bug: ${a} vs ${b}`);
    return Math.max(da, db);
  });
}

const ORACLE: Record<BinaryKernel, (x: number, y: number) => number> = {
  add: (x, y) => x + y,
  sub: (x, y) => x - y,
  mul: (x, y) => x * y,
  div: (x, y) => x / y,
  maximum: (x, y) => Math.max(x, y),
  minimum: (x, y) => Math.min(x, y),
  greater: (x, y) => Number(x > y),
  greaterEqual: (x, y) => Number(x >= y),
  equal: (x, y) => Number(x === y),
  pow: (x, y) => x ** y,
};

// ---------------------------------------------------------------------------------------------
// binary

function checkBinary(aShape: Shape, bShape: Shape, seed: number): void {
  const out = broadcastShape(aShape, bShape);
  for (const op of Object.keys(ORACLE) as BinaryKernel[]) {
    // pow: positive bases and small exponents; div: no zero denominators; comparisons: small integers (ties)
    const cmp = op === 'greater' || op === 'greaterEqual' || op === 'equal' || op === 'maximum' || op === 'minimum';
    const a = op === 'pow' ? rand(size(aShape), seed, 0.5, 2) : cmp ? randInt(size(aShape), seed) : rand(size(aShape), seed);
    const b = op === 'div' ? rand(size(bShape), seed + 1, 0.5, 2) : cmp ? randInt(size(bShape), seed + 1) : rand(size(bShape), seed + 1, -2, 2);
    const got = K.binary(op, a, aShape, b, bShape, out);
    assert.equal(got.length, size(out), `${op} ${aShape}·${bShape}: length`);
    for (let i = 0; i < got.length; i++) {
      const idx = unravel(i, out);
      const want = Math.fround(ORACLE[op](a[broadcastIndex(idx, aShape)]!, b[broadcastIndex(idx, bShape)]!));
      // one float64 op rounded to float32 on both sides: bit-identical
      assert.ok(Object.is(got[i], want), `${op} [${aShape}]·[${bShape}] at [${idx}]: ${got[i]} vs ${want}`);
    }
  }
}

test('binary: broadcasting on hand-picked awkward shapes (rank 0-4, dims of 1)', () => {
  const pairs: [number[], number[]][] = [
    [[5], [5]], [[5], [1]], [[1], [5]], [[], [2, 3]], [[2, 3], []], [[], []],
    [[3, 1], [1, 4]], [[1, 4], [3, 1]], [[2, 3, 4], [4]], [[4], [2, 3, 4]], [[2, 1, 4], [3, 1]],
    [[2, 3], [1, 1]], [[1, 1], [2, 3]], [[2, 3, 4, 1], [1, 1, 1, 5]], [[1, 3, 1, 5], [2, 1, 4, 1]],
    [[2, 3, 4, 5], [2, 3, 4, 5]], [[2, 3, 4, 5], [3, 1, 5]], [[1], [2, 1, 3, 1]], [[7, 1], [1]], [[1, 1, 1, 1], [3, 2, 1, 2]],
    [[3, 4], [3, 1]], [[3, 4], [1, 4]],
  ];
  pairs.forEach(([a, b], i) => checkBinary(a, b, 10 + i));
});

test('binary: 200 random broadcastable shape pairs', () => {
  const r = new Rng(7);
  for (let t = 0; t < 200; t++) {
    const rank = 1 + r.int(4);
    const base = Array.from({ length: rank }, () => 1 + r.int(4));
    const derive = (): number[] => {
      const drop = r.int(rank + 1); // leading dims dropped (rank 0 possible)
      return base.slice(drop).map((d) => (r.next() < 0.35 ? 1 : d));
    };
    checkBinary(derive(), derive(), 1000 + t);
  }
});

test('unary and clamp vs Math (sign(0) = +1)', () => {
  const x = Float32Array.from([...rand(40, 3, -3, 3), 0, -0, 1, -1]);
  const pos = rand(20, 4, 0.01, 5);
  const ref: Record<string, (v: number) => number> = {
    neg: (v) => -v, exp: Math.exp, abs: Math.abs, sign: (v) => (v < 0 ? -1 : 1), relu: (v) => Math.max(v, 0),
    tanh: Math.tanh, square: (v) => v * v,
  };
  for (const [op, f] of Object.entries(ref)) {
    const got = K.unary(op as 'neg', x);
    x.forEach((v, i) => assert.ok(got[i] === Math.fround(f(v)), `${op}(${v}): ${got[i]}`));
  }
  for (const [op, f] of Object.entries({ log: Math.log, sqrt: Math.sqrt, reciprocal: (v: number) => 1 / v })) {
    const got = K.unary(op as 'log', pos);
    pos.forEach((v, i) => assert.ok(got[i] === Math.fround(f(v)), `${op}(${v}): ${got[i]}`));
  }
  const c = K.clamp(x, -0.5, 1.25);
  x.forEach((v, i) => assert.equal(c[i], Math.fround(Math.min(Math.max(v, -0.5), 1.25))));
});

// ---------------------------------------------------------------------------------------------
// contiguous

function permutations(n: number): number[][] {
  if (n === 0) return [[]];
  return permutations(n - 1).flatMap((p) => Array.from({ length: n }, (_, i) => [...p.slice(0, i), n - 1, ...p.slice(i)]));
}

function naiveGather(data: Float32Array, shape: Shape, strides: Shape, offset: number): Float32Array {
  const out = new Float32Array(size(shape));
  for (let i = 0; i < out.length; i++) {
    const idx = unravel(i, shape);
    out[i] = data[offset + idx.reduce((s, v, d) => s + v * strides[d]!, 0)]!;
  }
  return out;
}

test('contiguous: every permutation of rank-2/3/4 views, plus offsets and steps', () => {
  for (const base of [[3, 5], [2, 3, 4], [2, 3, 1, 5]]) {
    const data = rand(size(base), 5);
    const strides = base.map((_, d) => size(base.slice(d + 1)));
    for (const perm of permutations(base.length)) {
      const shape = perm.map((p) => base[p]!), st = perm.map((p) => strides[p]!);
      const got = K.contiguous(data, shape, st, 0);
      assert.deepEqual(got, naiveGather(data, shape, st, 0), `perm [${perm}] of [${base}]`);
    }
  }
  // a sub-block view: rows 1..2, every other column from column 1, of a 4x7 array (offset and step)
  const data = rand(28, 6);
  assert.deepEqual(K.contiguous(data, [2, 3], [7, 2], 8), naiveGather(data, [2, 3], [7, 2], 8));
  // a column of a transposed view, and a rank-0 view at an offset
  assert.deepEqual(K.contiguous(data, [4], [7], 3), naiveGather(data, [4], [7], 3));
  assert.deepEqual(Array.from(K.contiguous(data, [], [], 11)), [data[11]]);
  // transposed sub-block with offset
  assert.deepEqual(K.contiguous(data, [3, 2, 2], [1, 14, 7], 2), naiveGather(data, [3, 2, 2], [1, 14, 7], 2));
});

// ---------------------------------------------------------------------------------------------
// reductions

test('sum over every subset of axes of a rank-3 tensor vs a naive loop', () => {
  const shape = [3, 4, 5];
  const x = rand(60, 8);
  for (let mask = 0; mask < 8; mask++) {
    const axes = [0, 1, 2].filter((a) => mask & (1 << a));
    const kept = shape.map((d, i) => (axes.includes(i) ? 1 : d));
    const want = new Float64Array(size(kept));
    for (let i = 0; i < 60; i++) {
      const idx = unravel(i, shape).map((v, d) => (axes.includes(d) ? 0 : v));
      want[idx.reduce((f, v, d) => f * kept[d]! + v, 0)]! += x[i]!;
    }
    const got = K.sum(x, shape, axes);
    // the kernel reduces one axis at a time and rounds each partial to float32: |err| <= 60·2⁻²⁴·max|partial| < 1e-5
    assertClose(got, want, 1e-5, 1e-6, `sum axes [${axes}]`);
    if (axes.length === 0) assert.notEqual(got, x, 'sum over no axes must return a copy');
  }
});

test('max and argmax along each axis vs a naive loop (argmax: first on ties)', () => {
  const shape = [3, 4, 5];
  const x = randInt(60, 9, -5, 5); // many ties
  for (let axis = 0; axis < 3; axis++) {
    const kept = shape.map((d, i) => (i === axis ? 1 : d));
    const mx = new Float32Array(size(kept)).fill(-Infinity);
    const am = new Int32Array(size(kept)).fill(-1);
    for (let i = 0; i < 60; i++) {
      const idx = unravel(i, shape);
      const o = idx.map((v, d) => (d === axis ? 0 : v)).reduce((f, v, d) => f * kept[d]! + v, 0);
      if (x[i]! > mx[o]!) {
        mx[o] = x[i]!;
        am[o] = idx[axis]!;
      }
    }
    assert.deepEqual(K.max(x, shape, axis), mx, `max axis ${axis}`);
    assert.deepEqual(K.argmax(x, shape, axis), am, `argmax axis ${axis}`);
  }
});

// ---------------------------------------------------------------------------------------------
// matmul

test('matmul: all flag combos on sizes {1,3,31,32,33,63,64,65}³ vs a triple loop', () => {
  const sizes = [1, 3, 31, 32, 33, 63, 64, 65];
  let seed = 100;
  for (const m of sizes) for (const k of sizes) for (const n of sizes) {
    const a = rand(m * k, seed++), b = rand(k * n, seed++);
    // logical A[i,p] and B[p,j]; stored as given by the flags
    for (const [tA, tB] of [[false, false], [true, false], [false, true], [true, true]] as const) {
      const As = tA ? transposeNaive(a, m, k) : a; // stored [K,M] when transA
      const Bs = tB ? transposeNaive(b, k, n) : b; // stored [N,K] when transB
      const got = K.matmul(As, Bs, m, k, n, tA, tB);
      const want = new Float32Array(m * n);
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let s = 0; // float64 accumulation of exact float32·float32 products
          for (let p = 0; p < k; p++) s += a[i * k + p]! * b[p * n + j]!;
          want[i * n + j] = s;
        }
      }
      // Tolerance: both sides accumulate in float64 and round once to float32, so they may differ
      // by the float32 rounding of nearly equal float64 sums: 2 ulp (rel 2.4e-7) plus an absolute
      // 1e-9 for float64 order effects (K·2⁻⁵³·Σ|a·b| < 1e-13). Float32 accumulation, or a wrong
      // index, fails this.
      assertClose(got, want, 1e-9, 2.4e-7, `matmul m=${m} k=${k} n=${n} transA=${tA} transB=${tB}`);
    }
  }
});

function transposeNaive(x: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = x[r * cols + c]!;
  return out;
}

// ---------------------------------------------------------------------------------------------
// batch norm

test('batchNormStats/Apply/Backward vs naive formulas (rank 2, 3, 4)', () => {
  for (const shape of [[5, 3], [2, 4, 7], [3, 2, 4, 5], [1, 2, 3]]) {
    const [N, C] = shape as [number, number];
    const S = size(shape.slice(2));
    const x = rand(size(shape), 11, -2, 3);
    const at = (n: number, c: number, s: number): number => (n * C + c) * S + s;
    const { mean, variance } = K.batchNormStats(x, shape);
    const mu = new Float64Array(C), v = new Float64Array(C);
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let n = 0; n < N; n++) for (let i = 0; i < S; i++) s += x[at(n, c, i)]!;
      mu[c] = s / (N * S);
      let q = 0;
      for (let n = 0; n < N; n++) for (let i = 0; i < S; i++) q += (x[at(n, c, i)]! - mu[c]!) ** 2;
      v[c] = q / (N * S); // biased
    }
    assertClose(mean, mu, 1e-6, 1e-6, `mean ${shape}`);
    assertClose(variance, v, 1e-6, 1e-6, `variance ${shape}`);

    const gamma = rand(C, 12, 0.5, 1.5), beta = rand(C, 13);
    const invStd = Float32Array.from(variance, (vv) => 1 / Math.sqrt(vv + 1e-5));
    const y = K.batchNormApply(x, shape, mean, invStd, gamma, beta);
    const yWant = new Float64Array(x.length);
    for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let i = 0; i < S; i++) {
      yWant[at(n, c, i)] = (x[at(n, c, i)]! - mean[c]!) * invStd[c]! * gamma[c]! + beta[c]!;
    }
    assertClose(y, yWant, 1e-5, 1e-5, `apply ${shape}`);

    // backward, written as dx = γ·σ⁻¹·(dy − mean(dy) − x̂·mean(dy·x̂)) (a different form from the kernel's)
    const dy = rand(x.length, 14);
    const r = K.batchNormBackward(dy, x, shape, mean, invStd, gamma);
    const m = N * S;
    const dbeta = new Float64Array(C), dgamma = new Float64Array(C), dx = new Float64Array(x.length);
    for (let c = 0; c < C; c++) {
      const xhat = (n: number, i: number): number => (x[at(n, c, i)]! - mean[c]!) * invStd[c]!;
      for (let n = 0; n < N; n++) for (let i = 0; i < S; i++) {
        dbeta[c]! += dy[at(n, c, i)]!;
        dgamma[c]! += dy[at(n, c, i)]! * xhat(n, i);
      }
      for (let n = 0; n < N; n++) for (let i = 0; i < S; i++) {
        dx[at(n, c, i)] = gamma[c]! * invStd[c]! * (dy[at(n, c, i)]! - dbeta[c]! / m - xhat(n, i) * (dgamma[c]! / m));
      }
    }
    assertClose(r.dbeta, dbeta, 1e-5, 1e-5, `dbeta ${shape}`);
    assertClose(r.dgamma, dgamma, 1e-5, 1e-5, `dgamma ${shape}`);
    assertClose(r.dx, dx, 1e-5, 1e-4, `dx ${shape}`);
  }
});

// ---------------------------------------------------------------------------------------------
// log-softmax

test('logSoftmax: matches log(exp(x)/Σexp), rows sum to 1 after exp', () => {
  const rows = 6, cols = 9;
  const x = rand(rows * cols, 15, -4, 4);
  const y = K.logSoftmax(x, rows, cols);
  for (let r = 0; r < rows; r++) {
    let z = 0;
    for (let c = 0; c < cols; c++) z += Math.exp(x[r * cols + c]!);
    const want = Array.from({ length: cols }, (_, c) => x[r * cols + c]! - Math.log(z));
    assertClose(y.subarray(r * cols, (r + 1) * cols), want, 1e-6, 1e-6, `row ${r}`);
    let s = 0;
    for (let c = 0; c < cols; c++) s += Math.exp(y[r * cols + c]!);
    assertClose([s], [1], 1e-6, 0, `Σ exp row ${r}`);
  }
  assert.deepEqual(Array.from(K.logSoftmax(Float32Array.of(3, -7), 2, 1)), [0, 0]); // one class: log 1
});

test('logSoftmax: stable for large inputs (±1e4)', () => {
  const cols = 5;
  const small = Float32Array.of(0, 1, 2, 3, 4, -2, 0.5, 0, 1.5, -1);
  const want = K.logSoftmax(small, 2, cols);
  for (const shift of [1e4, -1e4]) {
    const big = Float32Array.from(small, (v) => v + shift); // exact in float32 (quarter steps at 1e4)
    const y = K.logSoftmax(big, 2, cols);
    assert.ok(y.every(Number.isFinite), `non-finite output for shift ${shift}: ${Array.from(y)}`);
    assertClose(y, want, 1e-5, 1e-5, `shift ${shift}`);
    for (let r = 0; r < 2; r++) {
      const s = y.subarray(r * cols, (r + 1) * cols).reduce((a, v) => a + Math.exp(v), 0);
      assertClose([s], [1], 1e-5, 0, `Σ exp shift ${shift} row ${r}`);
    }
  }
  // one huge logit dominates: log-probability 0 there, ≈ -1e4 elsewhere (no -Infinity, no NaN)
  const y = K.logSoftmax(Float32Array.of(1e4, 0, -1e4), 1, 3);
  assert.deepEqual(Array.from(y), [0, -1e4, -2e4]);
});

// ---------------------------------------------------------------------------------------------
// sign packing

test('packSigns: one-hot bit order (only element i negative → only bit i set; 0 counts as +1)', () => {
  for (const len of [1, 31, 32, 33, 65]) {
    const words = Math.ceil(len / 32);
    // background of positives and (±)zeros: none of them may set a bit
    const bg = Float32Array.from({ length: len }, (_, i) => (i % 3 === 0 ? 0 : i % 3 === 1 ? -0 : 0.5 + i));
    assert.deepEqual(Array.from(K.packSigns(bg)), new Array(words).fill(0), `len ${len}: zeros/positives set bits`);
    for (let i = 0; i < len; i++) {
      const x = Float32Array.from(bg);
      x[i] = i % 2 ? -1e-30 : -3; // tiny and ordinary negatives
      const want = new Array(words).fill(0);
      want[i >> 5] = 2 ** (i % 32); // bit i of the stream: word i/32, LSB first
      assert.deepEqual(Array.from(K.packSigns(x)), want, `len ${len}, negative at ${i}`);
    }
    // all negative: full words and a zero tail in the last word
    const all = K.packSigns(new Float32Array(len).fill(-1));
    for (let w = 0; w < words; w++) {
      const bits = Math.min(32, len - 32 * w);
      assert.equal(all[w], 2 ** bits - 1, `len ${len}, all negative, word ${w}`);
    }
  }
});

test('popcountXor on lengths 1, 31, 32, 33, 65 vs counting sign disagreements', () => {
  for (const len of [1, 31, 32, 33, 65]) {
    for (let s = 0; s < 5; s++) {
      const a = rand(len, 200 + len * 10 + s), b = rand(len, 300 + len * 10 + s);
      if (s === 1) b.set(a.map((v) => -v)); // every sign differs (with zero-free data)
      if (s === 2) b.set(a); // none differs
      let want = 0;
      for (let i = 0; i < len; i++) if (a[i]! < 0 !== b[i]! < 0) want++;
      assert.equal(K.popcountXor(K.packSigns(a), K.packSigns(b)), want, `len ${len} case ${s}`);
      if (s === 1) assert.equal(want, len);
      if (s === 2) assert.equal(want, 0);
    }
    // all bits of every word (including 0xFFFFFFFF words) against zero words
    assert.equal(K.popcountXor(K.packSigns(new Float32Array(len).fill(-1)), K.packSigns(new Float32Array(len))), len);
  }
  // raw words: high bit and full words
  assert.equal(K.popcountXor(Uint32Array.of(0x80000000, 0xffffffff, 0), Uint32Array.of(0, 0, 0xffffffff)), 65);
  assert.equal(K.popcountXor(Uint32Array.of(0x55555555), Uint32Array.of(0xaaaaaaaa)), 32);
  assert.equal(K.popcountXor(Uint32Array.of(0x12345678), Uint32Array.of(0x12345678)), 0);
});
