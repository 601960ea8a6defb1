import '../src/index.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Conv2dParams } from '../src/core/backend.js';
import { OnebitError } from '../src/core/errors.js';
import { backend, tensor, Tensor } from '../src/core/tensor.js';
import { conv2d, pad2d, type Conv2dOpts } from '../src/ops/conv.js';
import { permute } from '../src/ops/shape.js';
import { assertClose, gradcheck, randTensor } from './util/gradcheck.js';

// ---- the oracle: direct loops, float64 accumulation ----

interface Cfg { N: number; C: number; H: number; W: number; Cout: number; kh: number; kw: number; s: number; pad: number; dil: number; groups: number }

function params(c: Cfg): Conv2dParams {
  return { stride: [c.s, c.s], padding: [c.pad, c.pad], dilation: [c.dil, c.dil], groups: c.groups };
}

function outSize(c: Cfg): [number, number] {
  return [
    Math.floor((c.H + 2 * c.pad - c.dil * (c.kh - 1) - 1) / c.s) + 1,
    Math.floor((c.W + 2 * c.pad - c.dil * (c.kw - 1) - 1) / c.s) + 1,
  ];
}

/** Calls f(xIndex, wIndex, yIndex) for every in-image term of the convolution sum (the 7 loops). */
function forEachTerm(c: Cfg, f: (xi: number, wi: number, yi: number) => void): void {
  const [Ho, Wo] = outSize(c);
  const Cg = c.C / c.groups, Cog = c.Cout / c.groups;
  for (let n = 0; n < c.N; n++)
    for (let co = 0; co < c.Cout; co++)
      for (let oh = 0; oh < Ho; oh++)
        for (let ow = 0; ow < Wo; ow++)
          for (let ci = 0; ci < Cg; ci++)
            for (let i = 0; i < c.kh; i++)
              for (let j = 0; j < c.kw; j++) {
                const ih = oh * c.s - c.pad + i * c.dil, iw = ow * c.s - c.pad + j * c.dil;
                if (ih < 0 || ih >= c.H || iw < 0 || iw >= c.W) continue;
                const cin = Math.floor(co / Cog) * Cg + ci;
                f(((n * c.C + cin) * c.H + ih) * c.W + iw, ((co * Cg + ci) * c.kh + i) * c.kw + j, ((n * c.Cout + co) * Ho + oh) * Wo + ow);
              }
}

function directConv(c: Cfg, x: Float32Array, w: Float32Array): Float64Array {
  const [Ho, Wo] = outSize(c);
  const y = new Float64Array(c.N * c.Cout * Ho * Wo);
  forEachTerm(c, (xi, wi, yi) => (y[yi] += x[xi]! * w[wi]!));
  return y;
}

function directBackwardInput(c: Cfg, dy: Float32Array, w: Float32Array): Float64Array {
  const dx = new Float64Array(c.N * c.C * c.H * c.W);
  forEachTerm(c, (xi, wi, yi) => (dx[xi] += dy[yi]! * w[wi]!));
  return dx;
}

function directBackwardFilter(c: Cfg, x: Float32Array, dy: Float32Array): Float64Array {
  const dw = new Float64Array(c.Cout * (c.C / c.groups) * c.kh * c.kw);
  forEachTerm(c, (xi, wi, yi) => (dw[wi] += x[xi]! * dy[yi]!));
  return dw;
}

const cfg = (N: number, C: number, H: number, W: number, Cout: number, kh: number, kw: number, s: number, pad: number, dil: number, groups: number): Cfg =>
  ({ N, C, H, W, Cout, kh, kw, s, pad, dil, groups });

const CONFIGS: Cfg[] = [
  cfg(2, 1, 7, 5, 3, 3, 3, 1, 0, 1, 1),
  cfg(2, 3, 9, 9, 4, 3, 3, 2, 1, 1, 1),
  cfg(1, 3, 9, 9, 6, 5, 5, 1, 2, 1, 3), // one channel per group
  cfg(1, 31, 7, 5, 5, 3, 3, 1, 1, 1, 1),
  cfg(1, 32, 9, 9, 8, 3, 3, 2, 2, 2, 2),
  cfg(1, 33, 7, 5, 6, 3, 1, 1, 1, 1, 3),
  cfg(1, 33, 5, 7, 33, 1, 1, 1, 0, 1, 1), // pointwise fast path
  cfg(2, 32, 5, 7, 6, 1, 1, 1, 0, 1, 2), // pointwise fast path, grouped
  cfg(1, 31, 9, 9, 7, 1, 1, 2, 0, 1, 1), // 1x1 with stride: im2col path
  cfg(1, 32, 7, 5, 32, 3, 3, 1, 1, 1, 32), // depthwise
  cfg(2, 64, 5, 5, 16, 3, 3, 1, 1, 1, 1),
  cfg(1, 63, 7, 5, 9, 3, 2, 2, 1, 2, 3),
  cfg(1, 65, 9, 9, 5, 1, 3, 1, 2, 1, 1),
  cfg(1, 4, 9, 9, 4, 3, 3, 2, 0, 2, 2),
  cfg(2, 2, 4, 3, 3, 5, 4, 1, 2, 1, 1), // kernel larger than the image, padding makes it fit
];

const name = (c: Cfg): string =>
  `N${c.N} C${c.C} ${c.H}x${c.W} -> ${c.Cout}, k${c.kh}x${c.kw} s${c.s} p${c.pad} d${c.dil} g${c.groups}`;

test('conv2d kernels match direct loops (forward, backward input, backward filter)', () => {
  CONFIGS.forEach((c, idx) => {
    const [Ho, Wo] = outSize(c);
    const xShape = [c.N, c.C, c.H, c.W], wShape = [c.Cout, c.C / c.groups, c.kh, c.kw], yShape = [c.N, c.Cout, Ho, Wo];
    const x = randTensor(xShape, 10 + idx).f32();
    const w = randTensor(wShape, 20 + idx).f32();
    const dy = randTensor(yShape, 30 + idx).f32();
    const p = params(c);
    assertClose(backend().conv2d(x, xShape, w, wShape, p), directConv(c, x, w), 1e-4, 1e-5, `forward ${name(c)}`);
    assertClose(backend().conv2dBackwardInput(dy, yShape, w, wShape, xShape, p), directBackwardInput(c, dy, w), 1e-4, 1e-5, `dx ${name(c)}`);
    assertClose(backend().conv2dBackwardFilter(x, xShape, dy, yShape, wShape, p), directBackwardFilter(c, x, dy), 1e-4, 1e-5, `dw ${name(c)}`);
  });
});

test('conv2d kernel handles non-square stride, padding and dilation', () => {
  const p: Conv2dParams = { stride: [2, 1], padding: [1, 0], dilation: [1, 2], groups: 1 };
  const x = randTensor([1, 3, 9, 7], 5).f32(), w = randTensor([4, 3, 3, 2], 6).f32();
  const y = backend().conv2d(x, [1, 3, 9, 7], w, [4, 3, 3, 2], p);
  // Oracle: direct loops with per-axis stride (2, 1), padding (1, 0) and dilation (1, 2).
  const Ho = Math.floor((9 + 2 - 3) / 2) + 1, Wo = Math.floor((7 - 2 * 1 - 1) / 1) + 1;
  assert.equal(y.length, 4 * Ho * Wo);
  for (let co = 0; co < 4; co++)
    for (let oh = 0; oh < Ho; oh++)
      for (let ow = 0; ow < Wo; ow++) {
        let s = 0;
        for (let ci = 0; ci < 3; ci++)
          for (let i = 0; i < 3; i++)
            for (let j = 0; j < 2; j++) {
              const ih = oh * 2 - 1 + i, iw = ow + 2 * j;
              if (ih >= 0 && ih < 9) s += x[(ci * 9 + ih) * 7 + iw]! * w[((co * 3 + ci) * 3 + i) * 2 + j]!;
            }
        assert.ok(Math.abs(y[(co * Ho + oh) * Wo + ow]! - s) < 1e-5);
      }
});

// ---- autograd ----

const GRAD_CASES: { what: string; x: number[]; w: number[]; opts: Conv2dOpts }[] = [
  { what: 'plain 3x3', x: [2, 3, 5, 5], w: [4, 3, 3, 3], opts: {} },
  { what: 'stride 2', x: [2, 2, 7, 6], w: [3, 2, 3, 3], opts: { stride: 2 } },
  { what: 'padding 1', x: [1, 3, 5, 4], w: [2, 3, 3, 3], opts: { padding: 1 } },
  { what: 'dilation 2', x: [1, 2, 7, 7], w: [3, 2, 3, 3], opts: { dilation: 2, padding: 1 } },
  { what: 'groups 2', x: [2, 4, 5, 5], w: [6, 2, 3, 3], opts: { groups: 2, padding: 1 } },
  { what: 'non-square kernel', x: [1, 2, 6, 5], w: [3, 2, 3, 1], opts: { stride: [2, 1], padding: [1, 0] } },
  { what: 'non-square kernel 1x3', x: [2, 2, 4, 6], w: [2, 2, 1, 3], opts: { padding: [0, 1], dilation: [1, 2] } },
  { what: '1x1 kernel', x: [2, 3, 4, 3], w: [5, 3, 1, 1], opts: {} },
  { what: '1x1 kernel, stride 2, groups 3', x: [1, 3, 5, 5], w: [3, 1, 1, 1], opts: { stride: 2, groups: 3 } },
];

for (const c of GRAD_CASES) {
  test(`conv2d gradients wrt x, w, bias: ${c.what}`, () => {
    const x = randTensor(c.x, 1), w = randTensor(c.w, 2), b = randTensor([c.w[0]!], 3);
    gradcheck((xx, ww, bb) => conv2d(xx, ww, bb, c.opts), [x, w, b]);
  });
}

test('conv2d without bias: gradients wrt x and w', () => {
  gradcheck((x, w) => conv2d(x, w, null, { padding: 1, stride: 2 }), [randTensor([2, 2, 5, 5], 4), randTensor([3, 2, 3, 3], 5)]);
});

test('conv2d adds the bias per output channel', () => {
  const x = randTensor([2, 3, 5, 5], 7), w = randTensor([4, 3, 3, 3], 8), b = tensor([1, -2, 3, 0.5]);
  const y0 = conv2d(x, w).f32(), y1 = conv2d(x, w, b).f32();
  for (let i = 0; i < y0.length; i++) assert.ok(Math.abs(y1[i]! - y0[i]! - b.f32()[Math.floor(i / 9) % 4]!) < 1e-5);
});

test('conv2d accepts a non-contiguous input view', () => {
  const base = randTensor([2, 5, 6, 3], 11); // NHWC
  const x = permute(base, [0, 3, 1, 2]); // NCHW view
  assert.equal(x.isContiguous, false);
  const w = randTensor([4, 3, 3, 3], 12);
  const xc = tensor(x.values(), x.shape);
  assertClose(conv2d(x, w, null, { padding: 1 }).f32(), conv2d(xc, w, null, { padding: 1 }).f32());
  gradcheck((xx) => conv2d(permute(xx, [0, 3, 1, 2]), w, null, { padding: 1 }), [base]);
});

// ---- pad2d ----

for (const value of [0, -1, 1]) {
  test(`pad2d with value ${value}: content and gradient`, () => {
    const x = randTensor([2, 3, 4, 5], 13);
    const y = pad2d(x, [1, 2, 2, 3], value);
    assert.deepEqual(y.shape, [2, 3, 7, 10]);
    const yd = y.f32(), xd = x.f32();
    for (let pl = 0; pl < 6; pl++)
      for (let h = 0; h < 7; h++)
        for (let w = 0; w < 10; w++) {
          const inside = h >= 1 && h < 5 && w >= 2 && w < 7;
          const want = inside ? xd[(pl * 4 + h - 1) * 5 + w - 2]! : value;
          assert.equal(yd[(pl * 7 + h) * 10 + w], want);
        }
    gradcheck((xx) => pad2d(xx, [1, 2, 2, 3], value), [x]);
    gradcheck((xx) => pad2d(xx, [0, 0, 0, 1], value), [randTensor([1, 2, 3, 3], 16)]);
  });
}

test('pad2d then conv2d: value 0 matches conv2d zero padding; value -1 has correct gradients', () => {
  const x = randTensor([1, 2, 5, 5], 14), w = randTensor([3, 2, 3, 3], 15);
  assertClose(conv2d(pad2d(x, [1, 1, 1, 1], 0), w).f32(), conv2d(x, w, null, { padding: 1 }).f32(), 1e-6);
  gradcheck((xx, ww) => conv2d(pad2d(xx, [1, 1, 2, 2], -1), ww, null, { stride: 2 }), [x, w]);
});

// ---- errors ----

function throwsWith(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof OnebitError, `expected an OnebitError, got ${String(e)}`);
    assert.match(e.message, pattern);
    return true;
  });
}

test('conv2d rejects bad input with one clear message each', () => {
  const w = randTensor([4, 3, 3, 3], 1);
  throwsWith(() => conv2d(randTensor([8, 32, 32], 1), randTensor([4, 8, 3, 3], 1)),
    /^conv2d: expected input of rank 4 \[N,C,H,W\], but got rank 3 \(shape \[8,32,32\]\)\. Add a batch dimension\.$/);
  throwsWith(() => conv2d(randTensor([1, 3, 5, 5], 1), randTensor([4, 27], 1)), /conv2d: expected a weight of rank 4 .*but got rank 2/);
  throwsWith(() => conv2d(randTensor([1, 2, 5, 5], 1), w), /conv2d: expected a weight \[Cout, 2, kh, kw\].* input with 2 channels, but got shape \[4,3,3,3\]/);
  throwsWith(() => conv2d(randTensor([1, 5, 5, 5], 1), randTensor([4, 2, 3, 3], 1), null, { groups: 2 }),
    /conv2d: expected input channels divisible by groups=2, but got 5 channels/);
  throwsWith(() => conv2d(randTensor([1, 4, 5, 5], 1), randTensor([3, 2, 3, 3], 1), null, { groups: 2 }),
    /conv2d: expected output channels divisible by groups=2, but got 3/);
  throwsWith(() => conv2d(randTensor([1, 3, 2, 2], 1), w), /conv2d: expected a spatial size of at least 3x3 .* but got 2x2/);
  throwsWith(() => conv2d(randTensor([1, 3, 5, 5], 1), w, null, { dilation: 3 }), /at least 7x7 .*but got 5x5/);
  throwsWith(() => conv2d(randTensor([1, 3, 5, 5], 1), w, tensor([1, 2, 3])), /conv2d: expected a bias of shape \[4\], but got shape \[3\]/);
  throwsWith(() => conv2d(randTensor([1, 3, 5, 5], 1), w, null, { stride: 0 }), /conv2d: expected stride as a positive integer/);
  throwsWith(() => conv2d(randTensor([1, 3, 5, 5], 1), w, null, { padding: [1, -1] }), /conv2d: expected padding as a non-negative/);
  throwsWith(() => conv2d(randTensor([1, 3, 5, 5], 1), w, null, { groups: 0 }), /conv2d: expected groups a positive integer, but got 0/);
  throwsWith(() => conv2d(tensor([1, 2, 3, 4], [1, 1, 2, 2], 'int32'), randTensor([1, 1, 1, 1], 1)), /conv2d: expected a float32 tensor/);
});

test('pad2d rejects bad input', () => {
  throwsWith(() => pad2d(randTensor([3, 4, 4], 1), [1, 1, 1, 1]), /pad2d: expected input of rank 4.*Add a batch dimension/);
  throwsWith(() => pad2d(randTensor([1, 3, 4, 4], 1), [1, -1, 1, 1]), /pad2d: expected pads \[top, bottom, left, right\]/);
  throwsWith(() => pad2d(randTensor([1, 3, 4, 4], 1), [1, 1] as unknown as [number, number, number, number]), /pad2d: expected pads/);
  throwsWith(() => pad2d(randTensor([1, 3, 4, 4], 1), [1, 1, 1, 1], NaN), /pad2d: expected a numeric pad value/);
});

test('conv2d records no gradient for constant inputs', () => {
  const y = conv2d(randTensor([1, 2, 4, 4], 1), randTensor([2, 2, 3, 3], 2));
  assert.equal(y.node, null);
  assert.ok(y instanceof Tensor);
});
