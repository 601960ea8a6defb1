import './util/poison_outputs.js';
import '../src/index.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Conv2dParams, Pool2dParams, Shape } from '../src/core/backend.js';
import { Rng } from '../src/core/rng.js';
import { approxSignBackwardLoop, clippedSteLoop } from '../src/backends/ref/elementwise.js';
import { refBackend as R } from '../src/backends/ref/index.js';
import { loadAddon, nativeLoadError } from '../src/backends/native/addon.js';
import { DNNL_MATMUL_MIN_MACS, dnnlKernels, dnnlMatmulNative, prepareConv2d, type PreparedConvLayout } from '../src/backends/native/dnnl.js';

/*
 * Conformance of the native float kernels (oneDNN conv/matmul, OpenMP batch norm and pooling)
 * against the TypeScript reference kernels, the oracle, on awkward sizes: channels 1, 3, 31–33,
 * 63–65; odd spatial sizes; strides 1/2; paddings 0/1/2; dilation 2; groups 2; matmul sizes 1, 3,
 * 31–33, 63–65 with every transA/transB combination.
 *
 * Tolerances, for outputs that are sums of K products (float32 in oneDNN, in another order and
 * with FMAs, against the reference's float64 accumulation):
 *   |got − want| <= 1e-4 · (1 + |want|) · sqrt(K)
 * with K the number of terms per output: Cin/groups·kh·kw (conv forward), Cout/groups·kh·kw
 * (backward data, an upper bound), N·Ho·Wo (backward weights), k (matmul).
 * Batch norm evaluates the reference's float64 formulas in a different summation order, so it
 * must agree to float32 rounding: |got − want| <= 1e-5 · (1 + |want|).
 * Pooling repeats the reference's arithmetic exactly and must be bit-identical (argmax included).
 */

const size = (s: Shape): number => s.reduce((a, b) => a * b, 1);

function rand(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => r.uniform(lo, hi));
}

/** Small integers: ties in max pooling are common. */
function randInt(n: number, seed: number): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => r.int(5) - 2);
}

function assertSumClose(got: Float32Array, want: Float32Array, K: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length ${got.length} vs ${want.length}`);
  const s = Math.sqrt(Math.max(1, K));
  for (let i = 0; i < got.length; i++) {
    const a = got[i]!, b = want[i]!;
    if (!(Math.abs(a - b) <= 1e-4 * (1 + Math.abs(b)) * s)) assert.fail(`${what}[${i}]: ${a} vs reference ${b} (K = ${K})`);
  }
}

function assertNear(got: Float32Array, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: length ${got.length} vs ${want.length}`);
  for (let i = 0; i < got.length; i++) {
    const a = got[i]!, b = want[i]!;
    if (!(Math.abs(a - b) <= 1e-5 * (1 + Math.abs(b)))) assert.fail(`${what}[${i}]: ${a} vs reference ${b}`);
  }
}

function assertSame(got: Float32Array | Int32Array, want: Float32Array | Int32Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: length ${got.length} vs ${want.length}`);
  for (let i = 0; i < got.length; i++) {
    if (!Object.is(got[i], want[i])) assert.fail(`${what}[${i}]: ${got[i]} vs reference ${want[i]}`);
  }
}

const K = dnnlKernels;
const nativeMatmul = dnnlMatmulNative;

if (!K || !nativeMatmul) {
  const why = loadAddon()
    ? 'the native addon was built without oneDNN (install libdnnl-dev and run `npm rebuild onebit`)'
    : `the native addon is not built (${nativeLoadError() || 'build/Release/onebit.node missing'})`;
  test.skip(`oneDNN float-kernel conformance: skipped because ${why}`, () => {});
} else {
  interface ConvCase { n: number; c: number; h: number; w: number; cout: number; kh: number; kw: number; p: Conv2dParams }
  const conv = (n: number, c: number, h: number, w: number, cout: number, k: number | [number, number], s: number, pad: number, dil = 1, groups = 1): ConvCase => {
    const [kh, kw] = typeof k === 'number' ? [k, k] : k;
    return { n, c, h, w, cout, kh, kw, p: { stride: [s, s], padding: [pad, pad], dilation: [dil, dil], groups } };
  };
  const channels = [1, 3, 31, 32, 33, 63, 64, 65];
  const couts = [3, 65, 1, 33, 64, 31, 32, 63];
  const cases: ConvCase[] = [];
  channels.forEach((c, i) => {
    const [h, w] = i % 2 === 0 ? [7, 5] : [9, 9];
    cases.push(conv(2, c, h, w, couts[i]!, 3, 1 + (i % 2), i % 3));
    cases.push(conv(1, c, 9, 9, c, 3, 2 - (i % 2), 1));
  });
  cases.push(
    conv(2, 3, 8, 6, 5, 3, 2, 0), // floor drops the last row/column: backward data must leave them 0
    conv(2, 16, 9, 9, 16, 3, 1, 2, 2), // dilation 2
    conv(2, 33, 7, 5, 17, 3, 1, 0, 2),
    conv(1, 32, 9, 9, 31, 3, 2, 2, 2),
    conv(2, 2, 7, 5, 2, 3, 1, 1, 1, 2), // groups 2
    conv(2, 32, 9, 9, 64, 3, 2, 1, 1, 2),
    conv(2, 64, 7, 5, 32, 3, 1, 1, 1, 2),
    conv(1, 66, 9, 9, 34, 3, 1, 0, 2, 2),
    conv(2, 33, 7, 5, 65, 1, 1, 0), // pointwise
    conv(2, 64, 9, 9, 32, 1, 2, 0),
    conv(2, 31, 9, 9, 33, [1, 3], 1, 1),
    conv(2, 3, 9, 9, 8, 5, 2, 2),
  );

  test('dnnl conv2d forward / backward data / backward weights match the reference', () => {
    let seed = 1;
    for (const cc of cases) {
      const { n, c, h, w, cout, kh, kw, p } = cc;
      const xShape = [n, c, h, w], wShape = [cout, c / p.groups, kh, kw];
      const ho = Math.floor((h + 2 * p.padding[0] - p.dilation[0] * (kh - 1) - 1) / p.stride[0]) + 1;
      const wo = Math.floor((w + 2 * p.padding[1] - p.dilation[1] * (kw - 1) - 1) / p.stride[1]) + 1;
      const yShape = [n, cout, ho, wo];
      const x = rand(size(xShape), seed++), wt = rand(size(wShape), seed++), dy = rand(size(yShape), seed++);
      const tag = `x[${xShape}] w[${wShape}] stride ${p.stride[0]} pad ${p.padding[0]} dil ${p.dilation[0]} groups ${p.groups}`;
      assertSumClose(K.conv2d(x, xShape, wt, wShape, p), R.conv2d(x, xShape, wt, wShape, p), (c / p.groups) * kh * kw, `conv2d ${tag}`);
      assertSumClose(
        K.conv2dBackwardInput(dy, yShape, wt, wShape, xShape, p), R.conv2dBackwardInput(dy, yShape, wt, wShape, xShape, p),
        (cout / p.groups) * kh * kw, `conv2dBackwardInput ${tag}`,
      );
      assertSumClose(
        K.conv2dBackwardFilter(x, xShape, dy, yShape, wShape, p), R.conv2dBackwardFilter(x, xShape, dy, yShape, wShape, p),
        n * ho * wo, `conv2dBackwardFilter ${tag}`,
      );
    }
  });

  test('conv2dBackwardSign (sign-fused conv backward) matches the reference kernels, bit for bit against its own separate kernels', () => {
    let seed = 500;
    // groups 1 cases (the kernel's domain), plus the ResNet-20 shapes where oneDNN picks the blocked layout.
    const signCases = [...cases.filter((cc) => cc.p.groups === 1), conv(4, 16, 8, 8, 16, 3, 1, 1), conv(2, 32, 6, 6, 64, 3, 2, 1), conv(2, 8, 5, 7, 8, 3, 1, 1)];
    for (const cc of signCases) {
      const { n, c, h, w, cout, kh, kw, p } = cc;
      const xShape = [n, c, h, w], wShape = [cout, c, kh, kw];
      const ho = Math.floor((h + 2 * p.padding[0] - p.dilation[0] * (kh - 1) - 1) / p.stride[0]) + 1;
      const wo = Math.floor((w + 2 * p.padding[1] - p.dilation[1] * (kw - 1) - 1) / p.stride[1]) + 1;
      const yShape = [n, cout, ho, wo];
      const x = rand(size(xShape), seed++, -1.5, 1.5), wt = rand(size(wShape), seed++), dy = rand(size(yShape), seed++);
      for (let i = 0; i < Math.min(x.length, 6); i++) x[i * 5 % x.length] = [1, -1, 0, -0, 1.25, -1.25][i]!; // (no NaN: the fused forward sends NaN inputs to the float path)
      const sx = x.map((v) => (v >= 0 ? 1 : v < 0 ? -1 : NaN));
      const tag = `x[${xShape}] w[${wShape}] stride ${p.stride[0]} pad ${p.padding[0]} dil ${p.dilation[0]}`;
      for (const grad of [{ kind: 'clipped_ste', clip: 1.25 }, { kind: 'approx_sign' }] as const) {
        const got = K.conv2dBackwardSign!(x, xShape, dy, wt, wShape, p, grad);
        const dq = K.conv2dBackwardInput(dy, yShape, wt, wShape, xShape, p);
        const want = grad.kind === 'clipped_ste' ? clippedSteLoop(dq, x, grad.clip) : approxSignBackwardLoop(dq, x);
        assertSame(got.dx, want, `conv2dBackwardSign dx (${grad.kind}) ${tag}`);
        // With an addend (the tape's gradient so far): the same bits as adding it afterwards.
        const addend = rand(x.length, seed++, -2, 2);
        const summed = K.conv2dBackwardSign!(x, xShape, dy, wt, wShape, p, grad, addend);
        assertSame(summed.dx, want.map((v, i) => v + addend[i]!), `conv2dBackwardSign dx + addend (${grad.kind}) ${tag}`);
        assertSame(summed.dw, got.dw, `conv2dBackwardSign dw with an addend ${tag}`);
        // In place: the addend array receives dx (blocked and generic paths alike).
        const into = Float32Array.from(addend);
        const inPlace = K.conv2dBackwardSign!(x, xShape, dy, wt, wShape, p, grad, into, true);
        assert.equal(inPlace.dx, into, 'in place: dx is the addend array');
        assertSame(inPlace.dx, summed.dx, `conv2dBackwardSign dx accumulated in place (${grad.kind}) ${tag}`);
        assertSame(inPlace.dw, got.dw, `conv2dBackwardSign dw, dx in place ${tag}`);
        assertSame(got.dw, K.conv2dBackwardFilter(sx, xShape, dy, yShape, wShape, p), `conv2dBackwardSign dw ${tag}`);
        const rq = R.conv2dBackwardInput(dy, yShape, wt, wShape, xShape, p);
        const rdx = grad.kind === 'clipped_ste' ? clippedSteLoop(rq, x, grad.clip) : approxSignBackwardLoop(rq, x);
        assertSumClose(got.dx, rdx, cout * kh * kw * 2, `conv2dBackwardSign dx vs reference ${tag}`);
        assertSumClose(got.dw, R.conv2dBackwardFilter(sx, xShape, dy, yShape, wShape, p), n * ho * wo, `conv2dBackwardSign dw vs reference ${tag}`);
      }
    }
    assert.throws(() => K.conv2dBackwardSign!(new Float32Array(16), [1, 4, 2, 2], new Float32Array(16), new Float32Array(72), [4, 2, 3, 3], { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 2 }, { kind: 'approx_sign' }),
      /conv2dBackwardSign: groups must be 1/);
    assert.throws(() => K.conv2dBackwardSign!(new Float32Array(16), [1, 4, 2, 2], new Float32Array(16), new Float32Array(144), [4, 4, 3, 3], { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 }, { kind: 'approx_sign' }, new Float32Array(15)),
      /dxAddend/);
  });

  test('prepared dnnl conv2d (weights once, bias fused) matches the reference conv + bias, every layout, batch size and thread count', () => {
    const addon = loadAddon()!;
    const threads0 = addon.info().threads;
    // The ResNet-18 CIFAR float convs (stem, 1x1 shortcuts), then the awkward cases above.
    const prepCases: ConvCase[] = [
      conv(1, 3, 32, 32, 64, 3, 1, 1), conv(1, 64, 16, 16, 128, 1, 1, 0), conv(1, 128, 8, 8, 256, 1, 1, 0), conv(1, 256, 4, 4, 512, 1, 1, 0),
      conv(1, 64, 32, 32, 128, 1, 2, 0), ...cases,
    ];
    let seed = 5000;
    try {
      prepCases.forEach((cc, i) => {
        const { c, h, w, cout, kh, kw, p } = cc;
        const wShape = [cout, c / p.groups, kh, kw];
        const wt = rand(size(wShape), seed++);
        const bias = i % 3 === 2 ? null : rand(cout, seed++);
        const layouts: PreparedConvLayout[] = ['auto', 'blocked', 'plain'];
        for (const layout of layouts) {
          const prep = prepareConv2d(wt, wShape, [c, h, w], p, bias, layout);
          assert.ok(prep, 'prepareConv2d returned null with oneDNN built');
          for (const [n, t] of [[1, 2], [3, 1], [1, 1], [3, 2], [1, 2]] as const) { // back to a cached (n, threads) entry
            addon.setThreads(t);
            const xShape = [n, c, h, w], x = rand(size(xShape), seed++);
            const want = R.conv2d(x, xShape, wt, wShape, p);
            const [, , ho, wo] = prep.outShape(n);
            if (bias) for (let o = 0; o < want.length; o++) want[o] = want[o]! + bias[Math.floor(o / (ho * wo)) % cout]!;
            const out = new Float32Array(want.length).fill(NaN);
            const got = prep.run(x, n, out);
            assert.equal(got, out, 'run writes into a given array of the right length');
            const tag = `prepared ${layout} x[${xShape}] w[${wShape}] stride ${p.stride[0]} pad ${p.padding[0]} dil ${p.dilation[0]} groups ${p.groups} bias ${!!bias} threads ${t}`;
            assertSumClose(got, want, (c / p.groups) * kh * kw + 1, tag);
            assertSumClose(prep.run(x, n, new Float32Array(1)), want, (c / p.groups) * kh * kw + 1, `${tag} (new array)`);
          }
        }
      });
    } finally {
      addon.setThreads(threads0);
    }
    const p: Conv2dParams = { stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1 };
    const prep = prepareConv2d(rand(9, 1), [1, 1, 3, 3], [1, 3, 3], p, null)!;
    assert.throws(() => prep.run(new Float32Array(5), 1), /onebit native: conv2dExec: x has 5 elements/);
    const exec = (loadAddon() as unknown as { conv2dExec(h: unknown, y: Float32Array, x: Float32Array, n: number): void }).conv2dExec;
    assert.throws(() => exec({}, new Float32Array(1), new Float32Array(9), 1), /handle from conv2dCreate/);
  });

  test('dnnl conv2d: repeated calls reuse the cached primitive and see new data', () => {
    const p: Conv2dParams = { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };
    const xShape = [2, 33, 9, 9], wShape = [31, 33, 3, 3];
    for (let s = 0; s < 3; s++) {
      const x = rand(size(xShape), 100 + s), wt = rand(size(wShape), 200 + s);
      assertSumClose(K.conv2d(x, xShape, wt, wShape, p), R.conv2d(x, xShape, wt, wShape, p), 33 * 9, `conv2d call ${s}`);
    }
  });

  test('dnnl conv2d reads typed-array views at any byte offset', () => {
    const p: Conv2dParams = { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };
    const xShape = [1, 3, 7, 5], wShape = [4, 3, 3, 3];
    const xs = rand(size(xShape) + 1, 7).subarray(1), ws = rand(size(wShape) + 3, 8).subarray(3); // 4- and 12-byte offsets
    assertSumClose(K.conv2d(xs, xShape, ws, wShape, p), R.conv2d(xs, xShape, ws, wShape, p), 27, 'conv2d on offset views');
  });

  test('dnnl matmul matches the reference for every transA/transB combination', () => {
    const sizes = [1, 3, 31, 32, 33, 63, 64, 65];
    let seed = 1000;
    for (const [ti, m] of sizes.entries()) {
      for (const [tj, n] of sizes.entries()) {
        const k = sizes[(ti + 3 * tj) % sizes.length]!;
        for (const transA of [false, true]) {
          for (const transB of [false, true]) {
            const a = rand(m * k, seed++), b = rand(k * n, seed++);
            const want = R.matmul(a, b, m, k, n, transA, transB);
            const what = `matmul m=${m} k=${k} n=${n} transA=${transA} transB=${transB}`;
            assertSumClose(nativeMatmul(a, b, m, k, n, transA, transB), want, k, what);
            assertSumClose(K.matmul(a, b, m, k, n, transA, transB), want, k, `${what} (backend entry)`);
          }
        }
      }
    }
    // Both sides of the small-product shortcut, and an empty inner dimension.
    assert.ok(65 * 65 * 65 >= DNNL_MATMUL_MIN_MACS && 3 * 3 * 3 < DNNL_MATMUL_MIN_MACS);
    assertSame(nativeMatmul(new Float32Array(0), new Float32Array(0), 3, 0, 2, false, false), new Float32Array(6), 'matmul k=0');
  });

  test('dnnl addon rejects arrays that do not match the shapes with one JS Error', () => {
    const p: Conv2dParams = { stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1 };
    assert.throws(() => K.conv2d(new Float32Array(5), [1, 1, 3, 3], new Float32Array(9), [1, 1, 3, 3], p), /onebit native: conv2d: x has 5 elements/);
    assert.throws(() => nativeMatmul(new Float32Array(5), new Float32Array(6), 2, 3, 2, false, false), /onebit native: matmul/);
  });

  test('native batch norm matches the reference (stats, apply, backward)', () => {
    const shapes: Shape[] = [[2, 1, 7, 5], [2, 3, 9, 9], [3, 31, 7, 5], [2, 32, 5], [2, 33, 9, 9], [4, 63], [1, 64, 7, 5], [2, 65, 3, 3], [64, 16, 16, 16]];
    let seed = 2000;
    for (const shape of shapes) {
      const C = shape[1]!, n = size(shape);
      const x = rand(n, seed++, -2, 3), dy = rand(n, seed++);
      const gamma = rand(C, seed++, 0.5, 1.5), beta = rand(C, seed++);
      const want = R.batchNormStats(x, shape), got = K.batchNormStats(x, shape);
      assertNear(got.mean, want.mean, `batchNormStats mean [${shape}]`);
      assertNear(got.variance, want.variance, `batchNormStats variance [${shape}]`);
      const invStd = want.variance.map((v) => 1 / Math.sqrt(v + 1e-5));
      assertNear(K.batchNormApply(x, shape, want.mean, invStd, gamma, beta), R.batchNormApply(x, shape, want.mean, invStd, gamma, beta), `batchNormApply [${shape}]`);
      // The fused residual add: the native apply + add in one pass equals its own apply, then add, bit for bit.
      const res = rand(n, seed++);
      const fused = K.batchNormApplyAdd!(x, shape, want.mean, invStd, gamma, beta, res);
      const twoPass = K.batchNormApply(x, shape, want.mean, invStd, gamma, beta).map((v, i) => v + res[i]!);
      assert.deepEqual(Array.from(fused), Array.from(twoPass), `batchNormApplyAdd [${shape}]`);
      const gb = K.batchNormBackward(dy, x, shape, want.mean, invStd, gamma), rb = R.batchNormBackward(dy, x, shape, want.mean, invStd, gamma);
      assertNear(gb.dx, rb.dx, `batchNormBackward dx [${shape}]`);
      assertNear(gb.dgamma, rb.dgamma, `batchNormBackward dgamma [${shape}]`);
      assertNear(gb.dbeta, rb.dbeta, `batchNormBackward dbeta [${shape}]`);
    }
  });

  test('native pooling is bit-identical to the reference (max with argmax and ties, avg without padding)', () => {
    const xShapes: Shape[] = [[2, 1, 7, 5], [2, 3, 9, 9], [1, 33, 7, 5], [2, 64, 9, 9], [1, 65, 8, 6], [32, 16, 16, 16], [1, 64, 32, 32], [1, 3, 11, 19]];
    const params: Pool2dParams[] = [
      { kernel: [2, 2], stride: [2, 2], padding: [0, 0] },
      { kernel: [3, 3], stride: [1, 1], padding: [1, 1] },
      { kernel: [3, 3], stride: [2, 2], padding: [1, 1] },
      { kernel: [3, 2], stride: [2, 1], padding: [1, 0] },
      { kernel: [5, 5], stride: [2, 2], padding: [2, 2] },
    ];
    let seed = 3000;
    for (const xShape of xShapes) {
      for (const p of params) {
        const tag = `x[${xShape}] kernel ${p.kernel} stride ${p.stride} pad ${p.padding}`;
        const n = size(xShape);
        const zeros = Float32Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 0 : -0)); // avg of four −0 is +0 (sum from +0)
        for (const x of [randInt(n, seed++), rand(n, seed++), zeros]) {
          const got = K.maxPool2d(x, xShape, p), want = R.maxPool2d(x, xShape, p);
          assertSame(got.y, want.y, `maxPool2d y ${tag}`);
          assertSame(got.argmax, want.argmax, `maxPool2d argmax ${tag}`);
          const dy = rand(want.y.length, seed++);
          assertSame(K.maxPool2dBackward(dy, want.argmax, n), R.maxPool2dBackward(dy, want.argmax, n), `maxPool2dBackward ${tag}`);
          const ya = R.avgPool2d(x, xShape, p);
          assertSame(K.avgPool2d(x, xShape, p), ya, `avgPool2d ${tag}`);
          const yShape = [xShape[0]!, xShape[1]!, ...[0, 1].map((d) => Math.floor((xShape[2 + d]! + 2 * p.padding[d]! - p.kernel[d]!) / p.stride[d]!) + 1)];
          assertSame(K.avgPool2dBackward(dy, yShape, xShape, p), R.avgPool2dBackward(dy, yShape, xShape, p), `avgPool2dBackward ${tag}`);
        }
      }
    }
  });
}
