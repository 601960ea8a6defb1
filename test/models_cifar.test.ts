import '../src/index.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { manualSeed } from '../src/core/rng.js';
import { Tensor, tensor } from '../src/core/tensor.js';
import { backward, noGrad } from '../src/autograd/tape.js';
import { mul } from '../src/ops/elementwise.js';
import { sum } from '../src/ops/reduce.js';
import { crossEntropy } from '../src/nn/losses.js';
import { BinaryConv2d } from '../src/nn/binary.js';
import { Maxout, RPReLU } from '../src/nn/react.js';
import { PReLU } from '../src/nn/layers.js';
import type { Module } from '../src/nn/module.js';
import { createQuantizer } from '../src/quantizers/index.js';
import { summary } from '../src/metrics/summary.js';
import {
  buildModel, methodPreset, reactnetA, REACTNET_A_WIDTHS, repeatChannels, resnet20, vggSmall, withBinarize,
} from '../src/models/index.js';
import { DATASET_ARCHS, resolveConfig } from '../src/train/config.js';
import { gradcheck, randTensor } from './util/gradcheck.js';

const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');
const binConvs = (m: Module) => m.namedModules().map(([, x]) => x).filter((x): x is BinaryConv2d => x instanceof BinaryConv2d);
const count = (m: Module, cls: abstract new (...a: never[]) => Module) => m.namedModules().filter(([, x]) => x instanceof cls).length;

/** One SGD-free training step on a tiny batch: every parameter gets a finite gradient, most non-zero. */
function forwardBackward(model: Module, x: Tensor, labels: Int32Array, what: string): void {
  model.train();
  const logits = model.forward(x);
  assert.deepEqual(logits.shape, [x.shape[0], 10], what);
  backward(crossEntropy(logits, labels));
  const params = model.namedParameters();
  const missing = params.filter(([, p]) => !p.grad).map(([n]) => n);
  assert.deepEqual(missing, [], `${what}: no gradient for ${missing.slice(0, 5)}`);
  for (const [n, p] of params) assert.ok(p.grad!.f32().every(Number.isFinite), `${what}: non-finite gradient in ${n}`);
  const nonzero = params.filter(([, p]) => p.grad!.f32().some((v) => v !== 0)).length;
  assert.ok(nonzero >= params.length * 0.8, `${what}: only ${nonzero}/${params.length} parameters have a non-zero gradient`);
  for (const [, p] of params) p.grad = null;
}

// ---------------------------------------------------------------- VGG-small

// Binary 3x3 kernels: conv1 128·128·9 + conv2 128·256·9 + conv3 256·256·9 + conv4 256·512·9 + conv5 512·512·9
const VGG_BINARY = 147456 + 294912 + 589824 + 1179648 + 2359296; // 4,571,136
// 32-bit: conv0 3·128·9 = 3456; fc 8192·10 + 10 = 81930; 6 BN γ,β = 2·(128+128+256+256+512+512) = 3584
const VGG_REAL = 3456 + 81930 + 3584;
const VGG_BN_BUFFERS = 3584; // running mean + var

test('vgg-small: layout, hand-counted parameters and MACs, summary totals', () => {
  manualSeed(0);
  const m = vggSmall(methodPreset('ste'));
  assert.deepEqual(binConvs(m).map((c) => [c.inChannels, c.outChannels]), [[128, 128], [128, 256], [256, 256], [256, 512], [512, 512]]);
  assert.equal(VGG_BINARY, 4571136);
  assert.equal(binConvs(m).reduce((n, c) => n + c.weight.size, 0), VGG_BINARY);
  assert.deepEqual(m.children().map(([n]) => n), ['conv0', 'bn0', 'conv1', 'bn1', 'conv2', 'bn2', 'conv3', 'bn3', 'conv4', 'bn4', 'conv5', 'bn5', 'pool', 'flatten', 'fc']);
  const s = summary(m, [1, 3, 32, 32]);
  assert.equal(s.paramsByBits[1], VGG_BINARY);
  assert.equal(s.paramsByBits[32], VGG_REAL + VGG_BN_BUFFERS);
  assert.equal(s.totalParams, 4663690);
  assert.equal(s.nonTrainableParams, VGG_BN_BUFFERS);
  // binary MACs: conv1 at 32x32, conv2/conv3 at 16x16, conv4/conv5 at 8x8 (pooling follows conv1/3/5)
  const binMacs = 128 * 128 * 9 * 1024 + (128 * 256 * 9 + 256 * 256 * 9) * 256 + (256 * 512 * 9 + 512 * 512 * 9) * 64;
  assert.equal(s.macsByBits[1], binMacs);
  assert.equal(binMacs, 603979776);
  assert.equal(s.macsByBits[32], 3 * 128 * 9 * 1024 + 8192 * 10); // conv0 + fc
  // the output shapes of the pooled convs' BNs: 16, 8, 4
  const bnShapes = s.layers.filter((l) => l.type.startsWith('BatchNorm')).map((l) => l.outputShape[2]);
  assert.deepEqual(bnShapes, [32, 16, 16, 8, 8, 4]);
});

test('vgg-small: each method gets its quantizers and non-linearity; forward + backward on a tiny batch', () => {
  const x = randTensor([2, 3, 32, 32], 3);
  const y = Int32Array.of(1, 7);
  for (const [method, act, nAct] of [['ste', null, 0], ['adabin', Maxout, 6], ['reactnet', RPReLU, 6], ['float', PReLU, 6]] as const) {
    manualSeed(1);
    const p = methodPreset(method);
    const m = vggSmall(p);
    for (const c of binConvs(m)) {
      assert.equal(c.inputQuantizer?.alias, p.inputQuantizer.alias);
      assert.equal(c.kernelQuantizer?.alias, p.kernelQuantizer.alias);
      assert.equal(c.padValue, 0);
    }
    if (act) assert.equal(m.children().filter(([, c]) => c instanceof act).length, nAct, method);
    else assert.equal(m.children().filter(([n]) => n.startsWith('act')).length, 0, method);
    forwardBackward(m, x, y, `vgg-small ${method}`);
  }
});

// ---------------------------------------------------------------- ReActNet-A

// Per block C → C': binary 3x3 C·C·9 and binary 1x1 C·C' (C' = 2C: the two C→C convs, stacked).
const blocks = REACTNET_A_WIDTHS.slice(1).map((c, i) => [REACTNET_A_WIDTHS[i]!, c] as const);
const RA_BINARY = blocks.reduce((n, [c, o]) => n + 9 * c * c + c * o, 0);

test('reactnet-a: widths, strides, hand-counted parameters and the paper\'s 4.82e9 binary MACs at 224', () => {
  assert.equal(blocks.length, 13);
  // 11·32² + 11·64² + 10·128² + 11·128² + 10·256² + 11·256² + 5·10·512² + 11·512² + 10·1024²
  assert.equal(RA_BINARY, 11 * 1024 + 11 * 4096 + 10 * 16384 + 11 * 16384 + 10 * 65536 + 11 * 65536 + 50 * 262144 + 11 * 262144 + 10 * 1048576);
  assert.equal(RA_BINARY, 28253184);
  manualSeed(0);
  const m = reactnetA(methodPreset('reactnet'));
  assert.equal(m.numClasses, 1000);
  assert.deepEqual(m.features.layers.map((b) => (b as unknown as { stride: number }).stride), [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1]);
  assert.equal(binConvs(m).length, 26);
  const s = summary(m, [1, 3, 224, 224]);
  assert.equal(s.paramsByBits[1], RA_BINARY);
  // 32-bit trainable per block: BN1 2C + BN2 2C' + RPReLU 3C + 3C' + two RSign biases 2C = 7C + 5C'
  const perBlock = blocks.reduce((n, [c, o]) => n + 7 * c + 5 * o, 0);
  assert.equal(perBlock, 64480);
  const buffers = blocks.reduce((n, [c, o]) => n + 2 * c + 2 * o, 0) + 2 * 32; // + stem BN
  assert.equal(s.nonTrainableParams, buffers);
  // stem conv 3·32·9 + BN 2·32; fc 1024·1000 + 1000
  assert.equal(s.totalParams, RA_BINARY + perBlock + 864 + 64 + 1025000 + buffers);
  assert.equal(s.totalParams, 29365480);
  // Binary MACs: each block at its output resolution (stem 224 → 112; then 112, 56, 56, 28, 28, 14×6, 7, 7)
  const res = [112, 56, 56, 28, 28, 14, 14, 14, 14, 14, 14, 7, 7];
  assert.equal(s.macsByBits[1], blocks.reduce((n, [c, o], i) => n + (9 * c * c + c * o) * res[i]! ** 2, 0));
  assert.equal(s.macsByBits[1], 4816896000); // ReActNet paper, Table: ReActNet-A BOPs 4.82×10^9
  assert.equal(s.macsByBits[32], 864 * 112 * 112 + 1024 * 1000); // stem + fc: the paper's 0.12×10^8 FLOPs
  assert.deepEqual(s.layers.at(-1)!.outputShape, [1, 1000]);
});

test('reactnet-a: CIFAR stem (32×32, stride 1, 10 classes); forward + backward on a tiny batch; bad input size', () => {
  const x = randTensor([2, 3, 32, 32], 4);
  const y = Int32Array.of(0, 9);
  for (const method of ['reactnet', 'float']) {
    manualSeed(2);
    const m = reactnetA(methodPreset(method), { inputSize: 32 });
    assert.equal(m.numClasses, 10);
    const s = summary(m, [1, 3, 32, 32]);
    assert.equal(s.paramsByBits[1] ?? 0, method === 'float' ? 0 : RA_BINARY);
    // the 224 net minus its 1000-class FC plus a 10-class one; float has no RSign biases (2C per block)
    assert.equal(s.totalParams, 29365480 - 1025000 + 10250 - (method === 'float' ? blocks.reduce((n, [c]) => n + 2 * c, 0) : 0));
    forwardBackward(m, x, y, `reactnet-a ${method}`);
  }
  // The model built for training (buildModel) is the CIFAR one.
  const b = buildModel({ dataset: 'cifar10', arch: 'reactnet-a', method: 'ste', hidden: 0 });
  assert.equal((b as unknown as { inputSize: number }).inputSize, 32);
  assert.throws(() => reactnetA(methodPreset('ste'), { inputSize: 100 }), /reactnetA inputSize: expected a multiple of 32/);
  assert.throws(() => reactnetA(methodPreset('ste'), { inputSize: 40 }), /reactnetA inputSize: expected a multiple of 16/);
  const m = reactnetA(methodPreset('ste'), { inputSize: 32 });
  assert.throws(() => noGrad(() => m.forward(randTensor([1, 3, 28, 28]))), /ReActNetA: expected input \[N, 3, 32, 32\]/);
});

test('repeatChannels: [x, x] on the channel axis; gradient sums the halves', () => {
  const x = randTensor([2, 3, 2, 2], 5);
  const y = repeatChannels(x);
  assert.deepEqual(y.shape, [2, 6, 2, 2]);
  const xv = x.f32(), yv = y.f32();
  assert.equal(yv[0], xv[0]);
  assert.equal(yv[12], xv[0]); // channel 3 of example 0 = channel 0
  assert.equal(yv[24 + 12 + 5], xv[12 + 5]); // example 1, channel 4 = channel 1
  gradcheck((t) => repeatChannels(t!), [x]);
});

// ---------------------------------------------------------------- float preset, identity quantizer, registration

test('identity quantizer: q(x) = x, dq/dx = 1 (closed form), 32-bit, both roles', () => {
  for (const role of ['input', 'kernel'] as const) {
    const q = createQuantizer('identity', { role, channels: 3 });
    assert.equal(q.precision, 32);
    const x = tensor([-2, -0.5, 0, 0.5, 3, 7]);
    x.requiresGrad = true;
    assert.deepEqual(Array.from(q.apply(x).f32()), [-2, -0.5, 0, 0.5, 3, 7]);
    backward(sum(mul(q.apply(x), tensor([1, 2, 3, 4, 5, 6]))));
    assert.deepEqual(Array.from(x.grad!.f32()), [1, 2, 3, 4, 5, 6]); // no clipping, unlike ste_sign
  }
});

test('float preset: full-precision version of every arch (no 1-bit parameters or MACs, same parameter names plus PReLU)', () => {
  for (const [arch, input] of [['resnet20', [1, 3, 32, 32]], ['vgg-small', [1, 3, 32, 32]], ['mlp', [1, 1, 28, 28]], ['cnn', [1, 1, 28, 28]]] as const) {
    const dataset = input[1] === 3 ? 'cifar10' : 'mnist';
    const f = buildModel({ dataset, arch, method: 'float', hidden: 16 });
    const s = summary(f, [...input]);
    assert.equal(s.paramsByBits[1] ?? 0, 0, arch);
    assert.equal(s.binarizedMacRatio, 0, arch);
    assert.equal(s.compressionRatio, 1, arch);
    assert.ok(count(f, PReLU) > 0, arch);
    if (arch === 'vgg-small') {
      // Named children: the binary net's tensors are all there; the float one adds the PReLU slopes.
      const ste = buildModel({ dataset, arch, method: 'ste', hidden: 16 });
      const fNames = [...f.stateDict().keys()];
      assert.deepEqual(fNames.filter((n) => !n.startsWith('act')), [...ste.stateDict().keys()]);
      assert.equal(s.totalParams, 4663690 + 1792);
    }
  }
  // resnet20 float: 18 identity convs, 19 PReLU (stem + 2 per block)
  const r = resnet20(methodPreset('float'));
  assert.ok(binConvs(r).every((c) => c.inputQuantizer?.alias === 'identity' && c.kernelQuantizer?.alias === 'identity'));
  assert.equal(count(r, PReLU), 19);
});

test('withBinarize: activations → real weights (step 1), weights → real activations; names unchanged', () => {
  const p = methodPreset('reactnet');
  assert.equal(withBinarize(p, 'both'), p);
  const a = withBinarize(p, 'activations'), w = withBinarize(p, 'weights');
  assert.deepEqual([a.inputQuantizer.alias, a.kernelQuantizer.alias], ['rsign', 'identity']);
  assert.deepEqual([w.inputQuantizer.alias, w.kernelQuantizer.alias], ['identity', 'xnor_sign']);
  const both = buildModel({ dataset: 'cifar10', arch: 'vgg-small', method: 'reactnet', hidden: 0 });
  const step1 = buildModel({ dataset: 'cifar10', arch: 'vgg-small', method: 'reactnet', hidden: 0, binarize: 'activations' });
  assert.deepEqual([...step1.stateDict().keys()], [...both.stateDict().keys()]); // xnor_sign has no state
  const s1 = summary(step1, [1, 3, 32, 32]);
  assert.equal(s1.paramsByBits[1] ?? 0, 0); // real weights count as 32-bit, and so do their MACs
  assert.throws(() => withBinarize(p, 'neither' as 'both'), /binarize: expected one of both, activations, weights/);
});

test('registration: vgg-small and reactnet-a are cifar10 archs; onebit summary builds them', () => {
  assert.deepEqual([...DATASET_ARCHS.cifar10], ['resnet20', 'resnet18', 'vgg-small', 'reactnet-a']);
  assert.equal(resolveConfig({ dataset: 'cifar10', arch: 'vgg-small' }).arch, 'vgg-small');
  assert.throws(() => resolveConfig({ dataset: 'mnist', arch: 'vgg-small' }), /--arch: expected one of mlp, cnn for --dataset mnist/);
  assert.ok(methodPreset('float'));
  const run = (...a: string[]) => spawnSync(process.execPath, ['--no-concurrent-recompilation', cli, 'summary', ...a], { encoding: 'utf8' });
  const v = run('--arch', 'vgg-small', '--method', 'adabin');
  assert.equal(v.status, 0, v.stderr);
  assert.match(v.stdout, /vgg-small method=adabin input \[1, 3, 32, 32\]/);
  // ste's 4,663,690 + 6 Maxout × 2 slopes per channel (2·1792) + per binary conv: AdaBin α, β
  // (trainable) and the weight binarizer's EDE t, k (buffers) → + 3584 + 10 + 10
  assert.match(v.stdout, /Total params\s+4667294/);
  assert.match(v.stdout, /Non-trainable params\s+3594/);
  const r = run('--arch', 'reactnet-a', '--method', 'reactnet', '--input-size', '32');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /reactnet-a method=reactnet input \[1, 3, 32, 32\]/);
  assert.match(r.stdout, /Total params\s+28350730/);
  const bad = run('--arch', 'reactnet-a', '--input-size', '50');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /error: reactnetA inputSize: expected a multiple of 16/);
});
