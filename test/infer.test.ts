import '../src/index.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { OnebitError } from '../src/core/errors.js';
import type { Tensor } from '../src/core/tensor.js';
import { BinaryLinear } from '../src/nn/binary.js';
import { Flatten } from '../src/nn/layers.js';
import { activationForm } from '../src/deploy/forms.js';
import { encodeOnebit } from '../src/deploy/format.js';
import type { OnebitGraph } from '../src/infer/graph.js';
import { convKernel, type BinaryConvGeom } from '../src/infer/bconv.js';
import { packSigns } from '../src/deploy/export.js';
import { manualSeed, rng } from '../src/core/rng.js';
import { wrap } from '../src/core/tensor.js';
import { noGrad } from '../src/autograd/tape.js';
import { BatchNorm1d, BatchNorm2d, Conv2d, GlobalAvgPool2d, Linear, PReLU } from '../src/nn/layers.js';
import { Module, Sequential } from '../src/nn/module.js';
import { BinaryConv2d } from '../src/nn/binary.js';
import { Maxout, RPReLU } from '../src/nn/react.js';
import { methodNames, methodPreset } from '../src/models/methods.js';
import { mnistModel } from '../src/models/mnist.js';
import { resnet20 } from '../src/models/resnet20.js';
import { resnet18 } from '../src/models/resnet18.js';
import { vggSmall } from '../src/models/vgg_small.js';
import { ReActBlock, reactnetA } from '../src/models/reactnet_a.js';
import { exportCheckpoint, exportGraph, exportModel } from '../src/deploy/export.js';
import { train, loadData, loadTrainedModel } from '../src/train/trainer.js';
import { InferenceModel, loadModel, loadModelSync } from '../src/infer/engine.js';
import type { InferBackend } from '../src/infer/backend.js';
import { jsInferBackend, wasmInferBackend } from '../src/infer/web_backend.js';
import { loadWasmKernelsNode } from '../src/infer/wasm/node.js';

/** Uniform in [lo, hi). */
const uni = (lo: number, hi: number): number => lo + (hi - lo) * rng().next();

/**
 * Make folding matter: random learnable quantizer/activation state, batch-norm running statistics
 * calibrated on a random batch (so thresholds sit inside the data), then random γ (either sign), β
 * and shifted means.
 */
export function randomizeForExport(model: Module, x: Float32Array, xShape: number[]): void {
  for (const [name, p] of model.namedParameters()) {
    const d = p.storage as Float32Array;
    const leaf = name.split('.').slice(-2).join('.');
    for (let i = 0; i < d.length; i++) {
      if (leaf.endsWith('inputQuantizer.bias')) d[i] = uni(-0.3, 0.3);
      else if (leaf.endsWith('alpha')) d[i] = uni(0.6, 1.4);
      else if (leaf.endsWith('beta')) d[i] = uni(-0.3, 0.3);
      else if (leaf.endsWith('tauPlus') || leaf.endsWith('tauMinus')) d[i] = uni(0.02, 0.1);
      else if (leaf.endsWith('kernelQuantizer.s')) d[i] = uni(-0.1, 0.1);
      else if (leaf.startsWith('move')) d[i] = uni(-0.2, 0.2);
      else if (leaf.endsWith('prelu.weight')) d[i] = uni(0.05, 0.4);
      else if (leaf.endsWith('posScale')) d[i] = uni(0.5, 1.5);
      else if (leaf.endsWith('negScale')) d[i] = uni(0, 0.5);
    }
  }
  const bns = model.namedModules().map(([, m]) => m).filter((m): m is BatchNorm1d | BatchNorm2d => m instanceof BatchNorm1d || m instanceof BatchNorm2d);
  for (const bn of bns) bn.opts.momentum = 1;
  model.train();
  noGrad(() => model.forward(wrap(x, xShape)));
  model.eval();
  for (const bn of bns) {
    bn.opts.momentum = 0.1;
    const g = bn.weight.storage as Float32Array, b = bn.bias.storage as Float32Array, mu = bn.runningMean.storage as Float32Array, va = bn.runningVar.storage as Float32Array;
    for (let c = 0; c < g.length; c++) {
      g[c] = (rng().next() < 0.2 ? -1 : 1) * uni(0.5, 1.5);
      b[c] = uni(-0.3, 0.3);
      mu[c] = mu[c]! + uni(-0.2, 0.2) * Math.sqrt(va[c]!);
    }
  }
}

function randInput(n: number, shape: number[]): Float32Array {
  const d = new Float32Array(n * shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < d.length; i++) d[i] = rng().normal();
  return d;
}

/**
 * Smallest distance, over every binarization of one forward pass, between a quantizer's input
 * and its threshold (activationForm). The exported graph computes the same values up to float32
 * rounding (~1e-6 relative here), so a value closer than that to a threshold may binarize the
 * other way; parity is asserted on inputs whose margin is well above the rounding error.
 */
function withMargin<T>(model: Module, rows: number, fn: () => T): { result: T; margins: Float64Array } {
  const margins = new Float64Array(rows).fill(Infinity);
  const restore: (() => void)[] = [];
  for (const [, m] of model.namedModules()) {
    if (!(m instanceof BinaryConv2d || m instanceof BinaryLinear) || !m.inputQuantizer) continue;
    const q = m.inputQuantizer;
    const orig = q.apply;
    const { thr } = activationForm(q, m instanceof BinaryConv2d ? m.inChannels : m.inFeatures);
    q.apply = (x: Tensor) => {
      const C = x.shape[1]!, inner = x.size / (x.shape[0]! * C), xv = x.f32();
      for (let i = 0; i < xv.length; i++) {
        const r = Math.floor(i / (C * inner));
        margins[r] = Math.min(margins[r]!, Math.abs(xv[i]! - thr[Math.floor(i / inner) % C]!));
      }
      return orig.call(q, x);
    };
    restore.push(() => { q.apply = orig; });
  }
  try {
    return { result: fn(), margins };
  } finally {
    for (const r of restore) r();
  }
}

/**
 * Absolute margin required between a binarization input and its threshold, ≫ the rounding
 * difference at that point: ~1e-7 relative where each binarization reads a freshly normalized value
 * (MLP, CNN, VGG), up to ~5e-6 absolute deep in a ResNet's residual stream (errors accumulate
 * along it), hence 3e-5 there.
 */
const MARGIN_PLAIN = 3e-6, MARGIN_RESIDUAL = 3e-5;

export interface Parity { maxDiff: number; scale: number; top1Same: boolean; graph: OnebitGraph }

/**
 * Training graph (eval mode) vs the exported model on n samples drawn so that no binarization is
 * within MARGIN of its threshold (see withMargin).
 */
function parity(model: Module, inputShape: number[], n: number, opts: { fold?: boolean; fuseThresholds?: boolean; margin?: number } = {}): Parity {
  const per = inputShape.reduce((a, b) => a * b, 1);
  randomizeForExport(model, randInput(4, inputShape), [4, ...inputShape]);
  const x = new Float32Array(n * per), ref: number[] = [];
  const B = 4; // candidates per forward (the kernel quantizers' cost is per forward, not per sample)
  for (let got = 0, tries = 0; got < n; tries++) {
    assert.ok(tries < 10, `no ${n} input samples without a near-tie binarization in ${10 * B} draws`);
    const s = randInput(B, inputShape);
    const { result, margins } = withMargin(model, B, () => noGrad(() => model.forward(wrap(s, [B, ...inputShape]))).f32());
    const C = result.length / B;
    for (let r = 0; r < B && got < n; r++) {
      if (margins[r]! < (opts.margin ?? MARGIN_PLAIN)) continue;
      x.set(s.subarray(r * per, (r + 1) * per), got++ * per);
      ref.push(...result.subarray(r * C, (r + 1) * C));
    }
  }
  const graph = exportGraph(model, { inputShape, fold: opts.fold, fuseThresholds: opts.fuseThresholds });
  const m = loadModelSync(encodeOnebit(graph));
  // The same graph on every other engine backend: the WebAssembly builds (when built) and plain TypeScript.
  const others = [...WASM_BACKENDS, jsInferBackend].map((be) => new InferenceModel(graph, 'parity', be));
  let maxDiff = 0, scale = 0, top1Same = true;
  const C = m.classes;
  const top = (v: ArrayLike<number>, r: number) => { let b = 0; for (let c = 1; c < C; c++) if (v[r * C + c]! > v[r * C + b]!) b = c; return b; };
  for (const engine of [m, ...others]) {
    const y = engine.predict(x, [n, ...inputShape]);
    for (let i = 0; i < y.length; i++) { maxDiff = Math.max(maxDiff, Math.abs(y[i]! - ref[i]!)); scale = Math.max(scale, Math.abs(ref[i]!)); }
    for (let r = 0; r < n; r++) top1Same &&= top(y, r) === top(ref, r);
  }
  return { maxDiff, scale, top1Same, graph };
}

/** The WebAssembly kernel builds present (both in CI, which sets ONEBIT_REQUIRE_WASM=1). */
const WASM_BACKENDS: InferBackend[] = (['wasm-simd', 'wasm'] as const).flatMap((kind) => {
  try {
    return [wasmInferBackend(loadWasmKernelsNode(kind))];
  } catch (e) {
    if (process.env.ONEBIT_REQUIRE_WASM === '1') throw e;
    return [];
  }
});

/**
 * Tolerance: |Δlogit| <= TOL·max(1, max|logit|). Folding batch norm, the weight/activation levels
 * and the border terms reorders float32 sums of up to K = 4608 products; measured differences are
 * 1e-7–2e-6 relative (AdaBin's offset levels, with large cancelling bias terms, reach ~1e-5), so
 * 1e-4 leaves a 5x margin while still catching any real folding error (those are O(1)).
 */
const TOL = 1e-4;

function assertParity(r: Parity, what: string): void {
  assert.ok(r.top1Same, `${what}: top-1 differs`);
  assert.ok(r.maxDiff <= TOL * Math.max(1, r.scale), `${what}: max |Δlogit| ${r.maxDiff} > ${TOL} × ${r.scale}`);
}

const count = (g: OnebitGraph, op: string, pred: (n: OnebitGraph['nodes'][number]) => boolean = () => true): number =>
  g.nodes.filter((n) => n.op === op && pred(n)).length;

const BINARY_PRESETS = methodNames().filter((p) => p !== 'float');

interface Arch { build: (p: string) => Module; shape: number[]; presets: string[]; n: number; margin: number; allFolded: boolean; maxSizeFraction?: number }

const ARCHS: Record<string, Arch> = {
  mlp: { build: (p) => mnistModel('mlp', methodPreset(p), { hidden: 32 }), shape: [1, 28, 28], presets: BINARY_PRESETS, n: 2, margin: MARGIN_PLAIN, allFolded: true },
  cnn: { build: (p) => mnistModel('cnn', methodPreset(p)), shape: [1, 28, 28], presets: ['xnor', 'reactnet', 'adabin', 'sabnn'], n: 2, margin: MARGIN_PLAIN, allFolded: false },
  resnet20: { build: (p) => resnet20(methodPreset(p)), shape: [3, 8, 8], presets: BINARY_PRESETS, n: 2, margin: MARGIN_RESIDUAL, allFolded: true },
  // ResNet-18 is large (11 M latent weights): two presets, 8x8 inputs (stage 4 is then 1x1: every tap but the centre is border).
  resnet18: { build: (p) => resnet18(methodPreset(p)), shape: [3, 8, 8], presets: ['reactnet', 'adabin'], n: 2, margin: MARGIN_RESIDUAL, allFolded: true, maxSizeFraction: 1 / 20 },
  // VGG-small's head fixes the input to 32x32: one sample, one preset. Pool sits between conv and BN, so BN stays a scale_bias.
  'vgg-small': { build: (p) => vggSmall(methodPreset(p)), shape: [3, 32, 32], presets: ['adabin'], n: 1, margin: MARGIN_PLAIN, allFolded: false },
  // ReActNet-A blocks (C → C and C → 2C with the repeated shortcut, stride 1 and 2) in a small net.
  'reactnet-a blocks': {
    build: (p) => new Sequential(new Conv2d(3, 8, 3, { padding: 1, bias: false }), new BatchNorm2d(8), new ReActBlock(8, 8, 1, methodPreset(p)),
      new ReActBlock(8, 16, 2, methodPreset(p)), new GlobalAvgPool2d(), new Linear(16, 5)),
    shape: [3, 6, 6], presets: ['reactnet', 'adabin', 'ste'], n: 2, margin: MARGIN_RESIDUAL, allFolded: true,
  },
};

for (const [arch, a] of Object.entries(ARCHS)) {
  test(`infer parity: ${arch} × ${a.presets.join(', ')} (random init, randomized BN and quantizer state)`, () => {
    for (const p of a.presets) {
      manualSeed(11);
      const model = a.build(p);
      const r = parity(model, a.shape, a.n, { margin: a.margin });
      assertParity(r, `${arch}/${p}`);
      if (a.maxSizeFraction) {
        const floatBytes = 4 * model.parameters().reduce((t, q) => t + q.size, 0);
        const bytes = encodeOnebit(r.graph).length;
        assert.ok(bytes <= floatBytes * a.maxSizeFraction, `${arch}/${p}: .onebit ${bytes} B > ${a.maxSizeFraction} of the float32 weights (${floatBytes} B)`);
      }
      if (a.allFolded) assert.equal(count(r.graph, 'scale_bias'), 0, `${arch}/${p}: every batch norm folded`);
    }
  });
}

test('infer: the full ReActNet-A (CIFAR stem) exports, loads and predicts', () => {
  manualSeed(12);
  const model = reactnetA(methodPreset('reactnet'), { inputSize: 32 });
  const graph = exportGraph(model, { inputShape: [3, 32, 32] });
  assert.equal(count(graph, 'binary_conv2d'), 26);
  assert.equal(count(graph, 'repeat_channels'), 5);
  assert.equal(count(graph, 'scale_bias'), 0);
  const m = loadModelSync(encodeOnebit(graph));
  const y = m.predict(randInput(1, [3, 32, 32]));
  assert.equal(y.length, 10);
  assert.ok(y.every(Number.isFinite));
});

test('infer: threshold fusion keeps activations binary between binary layers (MLP)', () => {
  for (const p of ['ste', 'reactnet', 'adabin']) {
    manualSeed(3);
    const r = parity(mnistModel('mlp', methodPreset(p), { hidden: 32 }), [1, 28, 28], 2);
    assertParity(r, `mlp/${p}`);
    // Linear → BN → (act) → sign stays; BinaryLinear → BN → (act) → sign becomes one thresholded binary_dense.
    assert.equal(count(r.graph, 'sign'), 1, `${p}: one explicit binarization`);
    assert.equal(count(r.graph, 'binary_dense', (n) => n.attrs.thr !== undefined), 1, `${p}: one fused binary_dense`);
    // The activations after the float Linear and before the float head remain; the one between the binary layers is fused.
    assert.equal(count(r.graph, 'channel_act'), p === 'ste' ? 0 : 2, `${p}: the activation between binary layers is fused`);
  }
  // Without fusion (and folding) the graph is longer but computes the same.
  manualSeed(3);
  const r = parity(mnistModel('mlp', methodPreset('reactnet'), { hidden: 32 }), [1, 28, 28], 2, { fold: false, fuseThresholds: false });
  assertParity(r, 'mlp/reactnet unfused');
  assert.equal(count(r.graph, 'sign'), 2);
});

test('infer: a non-monotone activation (negative PReLU slope) is not fused, and stays exact', () => {
  manualSeed(5);
  const model = mnistModel('mlp', methodPreset('reactnet'), { hidden: 32 });
  randomizeForExport(model, randInput(4, [1, 28, 28]), [4, 1, 28, 28]);
  const rp = model.namedModules().map(([, m]) => m).filter((m): m is RPReLU => m instanceof RPReLU);
  (rp[1]!.prelu.weight.storage as Float32Array)[0] = -0.5;
  const x = randInput(2, [1, 28, 28]);
  const ref = noGrad(() => model.forward(wrap(x, [2, 1, 28, 28]))).f32();
  const graph = exportGraph(model, { inputShape: [1, 28, 28] });
  assert.equal(count(graph, 'sign'), 2, 'the chain with a negative slope keeps its sign node');
  const y = loadModelSync(encodeOnebit(graph)).predict(x, [2, 1, 28, 28]);
  for (let i = 0; i < y.length; i++) assert.ok(Math.abs(y[i]! - ref[i]!) <= TOL * 4, `logit ${i}`);
});

/** Conv stem → BN → binary conv (given padding) → BN → act → binary conv → BN → pool → linear. */
function padNet(preset: string, padValue: -1 | 0 | 1): Module {
  const p = methodPreset(preset);
  const q = { inputQuantizer: p.inputQuantizer, kernelQuantizer: p.kernelQuantizer, padding: 1, padValue };
  return new Sequential(
    new Conv2d(2, 6, 3, { padding: 1 }), new BatchNorm2d(6),
    new BinaryConv2d(6, 8, 3, { ...q, stride: 2 }), new BatchNorm2d(8), new RPReLU(8),
    new BinaryConv2d(8, 8, 3, q), new BatchNorm2d(8), new Maxout(8),
    new GlobalAvgPool2d(), new Linear(8, 5),
  );
}

test('infer: zero padding vs ±1 padding of binary convs (border handled exactly)', () => {
  for (const preset of ['ste', 'reactnet', 'adabin', 'sabnn']) {
    for (const pv of [0, -1, 1] as const) {
      manualSeed(9);
      const r = parity(padNet(preset, pv), [2, 5, 5], 3);
      assertParity(r, `${preset} padValue ${pv}`);
      const convs = r.graph.nodes.filter((n) => n.op === 'binary_conv2d');
      for (const c of convs) {
        if (preset !== 'adabin') {
          assert.equal(c.attrs.pad, pv, `${preset}/${pv}: ±1 activations — the kernel pads with ${pv} directly`);
        } else {
          // Offset levels: the border value in ±1 space is (pv − ma)/da, neither 0 nor ±1 → border correction.
          assert.ok(![0, 1, -1].includes(c.attrs.pad as number), `${preset}/${pv}: pad ${c.attrs.pad}`);
        }
      }
    }
  }
});

test('infer: loadModel from a path or bytes; predict/classify shapes and input errors', async () => {
  manualSeed(2);
  const model = mnistModel('mlp', methodPreset('xnor'), { hidden: 16 });
  model.eval();
  const bytes = exportModel(model, { inputShape: [1, 28, 28], labels: [...'0123456789'], metadata: { note: 'test' } });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'onebit-infer-'));
  const file = path.join(dir, 'm.onebit');
  fs.writeFileSync(file, bytes);
  const m = await loadModel(file);
  const m2 = await loadModel(bytes);
  assert.deepEqual(m.inputShape, [1, 28, 28]);
  assert.equal(m.classes, 10);
  assert.deepEqual(m.metadata, { note: 'test' });
  assert.equal(m.labels?.[3], '3');
  const x = randInput(3, [1, 28, 28]);
  const y = m.predict(x, [3, 1, 28, 28]);
  assert.equal(y.length, 30);
  assert.deepEqual([...m2.predict(x)], [...y], 'N inferred from the length');
  const top = m.classify(x);
  assert.equal(top.length, 3);
  assert.throws(() => m.predict(x, [3, 28, 28]), /predict: expected an input shape \[N, 1, 28, 28\], but got \[3,28,28\]/);
  assert.throws(() => m.predict(x.subarray(1)), /predict: expected a multiple of 784 values/);
  assert.throws(() => m.predict([1, 2] as unknown as Float32Array), /predict: expected input as a Float32Array, but got Array/);
  await assert.rejects(loadModel(path.join(dir, 'missing.onebit')), (e: Error) => e instanceof OnebitError && /ENOENT/.test(e.message));
  fs.rmSync(dir, { recursive: true });
});

test('export: unknown modules and non-binary quantizers fail with one clear error', () => {
  class Custom extends Module {
    forward(x: Tensor): Tensor { return x; }
  }
  const model = new Sequential(new Flatten(), new Linear(4, 3), new Custom());
  assert.throws(() => exportModel(model, { inputShape: [4] }), (e: Error) => e instanceof OnebitError && /Custom at "2"/.test(e.message));
  const tern = new Sequential(new BinaryLinear(4, 3, { inputQuantizer: 'ste_tern', kernelQuantizer: 'ste_sign' }));
  assert.throws(() => exportModel(tern, { inputShape: [4] }), /ste_tern \(2 bits\)/);
  const dq = new Sequential(new BinaryLinear(4, 3, { inputQuantizer: 'ste_sign', kernelQuantizer: 'dorefa' }));
  assert.throws(() => exportModel(dq, { inputShape: [4] }), /dorefa/);
  assert.throws(() => exportModel(new Sequential(new Linear(4, 3)), { inputShape: [5] }), /dense "0" weight: expected shape \[O, 5\], but got \[3,4\]/);
  assert.throws(() => exportModel(new Sequential(new Linear(4, 3)), { inputShape: [4], classes: 10 }), /classes: expected 3/);
});

test('export: the float preset (identity quantizers) exports as a float graph equal to the training graph', () => {
  manualSeed(5);
  for (const arch of ['mlp', 'resnet20'] as const) {
    const model = arch === 'mlp' ? mnistModel('mlp', methodPreset('float'), { hidden: 8 }) : resnet20(methodPreset('float'));
    const shape = arch === 'mlp' ? [1, 28, 28] : [3, 8, 8];
    model.eval();
    const x = randInput(2, shape);
    const ref = noGrad(() => model.forward(wrap(x, [2, ...shape]))).f32();
    const graph = exportGraph(model, { inputShape: shape });
    assert.equal(count(graph, 'binary_conv2d') + count(graph, 'binary_dense') + count(graph, 'sign') + count(graph, 'levels'), 0, `${arch}: no binary ops`);
    const y = loadModelSync(encodeOnebit(graph)).predict(x, [2, ...shape]);
    let d = 0, sc = 0;
    for (let i = 0; i < y.length; i++) { d = Math.max(d, Math.abs(y[i]! - ref[i]!)); sc = Math.max(sc, Math.abs(ref[i]!)); }
    assert.ok(d <= TOL * Math.max(1, sc), `${arch}: max |Δlogit| ${d}`);
  }
});

test('export: layers with one real side (null quantizer) run as float ops', () => {
  manualSeed(4);
  const model = new Sequential(
    new BinaryConv2d(2, 4, 3, { inputQuantizer: null, kernelQuantizer: 'xnor_sign', padding: 1, padValue: -1 }), new BatchNorm2d(4),
    new BinaryConv2d(4, 4, 3, { inputQuantizer: 'ste_sign', kernelQuantizer: null, padding: 1, padValue: 1 }), new PReLU(),
    new GlobalAvgPool2d(), new BatchNorm1d(4), new Linear(4, 3),
  );
  const r = parity(model, [2, 4, 4], 2);
  assertParity(r, 'one-sided binary layers');
  assert.equal(count(r.graph, 'levels'), 1);
  assert.equal(count(r.graph, 'conv2d'), 2);
});

test('exportCheckpoint: a trained MNIST checkpoint → .onebit with metadata; same top-1 as the checkpoint on test images', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'onebit-export-'));
  const cfg = { arch: 'mlp' as const, method: 'reactnet', epochs: 1, batchSize: 32, hidden: 16, trainSubset: 256, testSubset: 64, seed: 3 };
  train(cfg, { outDir: dir });
  const ckpt = path.join(dir, 'last.ckpt'), out = path.join(dir, 'model.onebit');
  const { graph } = exportCheckpoint(ckpt, out);
  assert.deepEqual(graph.inputShape, [1, 28, 28]);
  const m = await loadModel(out);
  const meta = m.metadata as { config: { method: string }; epoch: number; preprocess: { scale: number; mean: number[]; std: number[] } };
  assert.equal(meta.config.method, 'reactnet');
  assert.equal(meta.epoch, 1);
  assert.deepEqual(m.labels, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
  // Test images, normalized as the metadata says.
  const { config, model } = loadTrainedModel(ckpt);
  const test = loadData(config, 'test').test;
  const n = test.count, per = 784;
  const x = new Float32Array(n * per);
  for (let i = 0; i < x.length; i++) x[i] = ((test.images[i] as number) * meta.preprocess.scale - meta.preprocess.mean[0]!) / meta.preprocess.std[0]!;
  model.eval();
  const ref = noGrad(() => model.forward(wrap(x, [n, 1, 28, 28]))).f32();
  const y = m.predict(x, [n, 1, 28, 28]);
  const top = m.classify(x);
  let agree = 0, maxDiff = 0, scale = 0;
  for (let r = 0; r < n; r++) {
    let b = 0;
    for (let c = 1; c < 10; c++) if (ref[r * 10 + c]! > ref[r * 10 + b]!) b = c;
    if (b === top[r]) agree++;
  }
  for (let i = 0; i < y.length; i++) { maxDiff = Math.max(maxDiff, Math.abs(y[i]! - ref[i]!)); scale = Math.max(scale, Math.abs(ref[i]!)); }
  assert.equal(agree, n, 'identical top-1 on every test image');
  assert.ok(maxDiff <= TOL * Math.max(1, scale), `max |Δlogit| ${maxDiff}`);
  fs.rmSync(dir, { recursive: true });
});

test('bconv: the packed kernel equals the reference ±1 convolution on awkward shapes, every border value', () => {
  manualSeed(8);
  const cases: [number, number, number, number, [number, number], [number, number], [number, number], [number, number], number][] = [
    // C, H, W, Cout, kernel, stride, padding, dilation, groups
    [1, 5, 4, 3, [3, 3], [1, 1], [1, 1], [1, 1], 1],
    [31, 6, 6, 5, [3, 3], [2, 2], [1, 1], [1, 1], 1],
    [33, 5, 5, 4, [3, 3], [1, 1], [2, 2], [2, 2], 1],
    [65, 3, 3, 2, [1, 1], [1, 1], [0, 0], [1, 1], 1],
    [64, 4, 4, 6, [3, 3], [1, 1], [1, 1], [1, 1], 2],
    [32, 7, 7, 8, [5, 3], [2, 1], [2, 1], [1, 1], 1],
    [63, 2, 3, 3, [3, 3], [1, 1], [1, 1], [1, 1], 3],
  ];
  for (const [C, H, W, Co, k, stride, padding, dilation, groups] of cases) {
    const K = (C / groups) * k[0] * k[1];
    const signs = Int8Array.from({ length: Co * K }, () => (rng().next() < 0.5 ? -1 : 1));
    const bits = packSigns(signs, Co, K);
    const t = Float32Array.from({ length: 2 * C * H * W }, () => (rng().next() < 0.5 ? -1 : 1));
    for (const kpad of [0, 1, -1]) {
      const g: BinaryConvGeom = { C, H, W, Cout: Co, kh: k[0], kw: k[1], stride, padding, dilation, groups, pad: kpad };
      const ref = convKernel(g, bits, kpad, 'reference').run(t, 2);
      const got = convKernel(g, bits, kpad, 'packed').run(t, 2);
      assert.deepEqual([...got], [...ref], `C=${C} ${H}x${W} -> ${Co}, k ${k}, stride ${stride}, pad ${padding}, dil ${dilation}, groups ${groups}, border ${kpad}`);
    }
  }
  // One-hot bit order: a single −1 input channel (33) and a single −1 weight (channel 33, tap 4).
  const C = 40, K = C * 9;
  const signs = new Int8Array(K).fill(1);
  signs[33 * 9 + 4] = -1;
  const t = new Float32Array(C * 9).fill(1);
  t[33 * 9 + 4] = -1; // channel 33, pixel (1, 1)
  const g: BinaryConvGeom = { C, H: 3, W: 3, Cout: 1, kh: 3, kw: 3, stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1, pad: 0 };
  assert.deepEqual([...convKernel(g, packSigns(signs, 1, K), 0, 'packed').run(t, 1)], [K]);
});

test('exact export reproduces the training graph bit for bit (no margin needed: every binarization agrees)', () => {
  const cases: [string, () => Module, number[]][] = [
    ['resnet20/bireal', () => resnet20(methodPreset('bireal')), [3, 12, 12]],
    ['resnet20/reactnet', () => resnet20(methodPreset('reactnet')), [3, 12, 12]],
    ['resnet20/xnor', () => resnet20(methodPreset('xnor')), [3, 12, 12]],
    ['resnet20/ste', () => resnet20(methodPreset('ste')), [3, 12, 12]],
    ['mnist cnn/reactnet', () => mnistModel('cnn', methodPreset('reactnet')), [1, 28, 28]],
    ['mnist mlp/xnor', () => mnistModel('mlp', methodPreset('xnor'), { hidden: 64 }), [1, 28, 28]],
  ];
  for (const [what, make, shape] of cases) {
    manualSeed(5);
    const model = make();
    const n = 4;
    randomizeForExport(model, randInput(8, shape), [8, ...shape]);
    const x = randInput(n, shape);
    const ref = noGrad(() => model.forward(wrap(x, [n, ...shape]))).f32();
    const graph = exportGraph(model, { inputShape: shape, exact: true });
    assert.ok(graph.nodes.some((node) => node.op === 'batch_norm'), `${what}: batch norm kept`);
    const got = loadModelSync(encodeOnebit(graph)).predict(x, [n, ...shape]);
    for (let i = 0; i < ref.length; i++) if (!Object.is(got[i], ref[i])) assert.fail(`${what}: logit ${i} = ${got[i]}, training graph ${ref[i]}`);
    // The folded export is not bit-exact (that is why --exact exists); it must still agree closely.
    const folded = loadModelSync(exportModel(model, { inputShape: shape })).predict(x, [n, ...shape]);
    let d = 0;
    for (let i = 0; i < ref.length; i++) d = Math.max(d, Math.abs(folded[i]! - ref[i]!));
    assert.ok(Number.isFinite(d), `${what}: folded logits finite`);
  }
});

test('predict reuses freed arrays without corrupting results: repeated and interleaved calls give identical logits', () => {
  manualSeed(11);
  const cases: [Module, number[]][] = [
    [resnet18(methodPreset('reactnet')), [3, 16, 16]], [resnet20(methodPreset('bireal')), [3, 16, 16]], [mnistModel('cnn', methodPreset('xnor')), [1, 28, 28]],
  ];
  for (const [model, inShape] of cases) {
    randomizeForExport(model, randInput(4, inShape), [4, ...inShape]);
    const m = loadModelSync(exportModel(model, { inputShape: inShape }));
    const a = randInput(2, inShape), b = randInput(3, inShape);
    const first = m.predict(a, [2, ...inShape]).slice();
    m.predict(b, [3, ...inShape]);
    const again = m.predict(a, [2, ...inShape]);
    const inputCopy = a.slice();
    m.predict(a, [2, ...inShape]);
    assert.deepEqual(Array.from(again), Array.from(first));
    assert.deepEqual(Array.from(a), Array.from(inputCopy), 'the caller\'s input is never overwritten');
  }
});

test('predict never recycles an array another live value still holds (flatten passes its input through)', () => {
  const t = (v: number[]): { dtype: 'f32'; shape: number[]; data: Float32Array } => ({ dtype: 'f32', shape: [v.length], data: Float32Array.from(v) });
  // 1: act([2,2,2]) → A; 2: flatten(1) = A; 3: act(2) wants an array of A's length; 4: add(3, 2) still reads A.
  const graph: OnebitGraph = {
    inputShape: [2, 2, 2], classes: 8, metadata: {}, output: 4,
    nodes: [
      { op: 'channel_act', inputs: [0], attrs: { neg: t([0.5, 0.25]) } },
      { op: 'flatten', inputs: [1], attrs: {} },
      { op: 'channel_act', inputs: [2], attrs: { neg: t([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]), b1: t([1, 1, 1, 1, 1, 1, 1, 1]) } },
      { op: 'add', inputs: [3, 2], attrs: {} },
    ],
  };
  const m = loadModelSync(encodeOnebit(graph));
  const x = Float32Array.of(1, -2, 3, -4, -1, 2, -3, 4);
  const a = Array.from(x, (v, i) => (v >= 0 ? v : v * (i < 4 ? 0.5 : 0.25)));
  const want = a.map((v, i) => Math.fround(Math.fround(v >= 0 ? v : Math.fround(v * [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8][i]!)) + 1) + v);
  const got = Array.from(m.predict(x, [1, 2, 2, 2]));
  for (let i = 0; i < 8; i++) assert.ok(Math.abs(got[i]! - want[i]!) < 1e-6, `[${i}] = ${got[i]}, want ${want[i]}`);
});
