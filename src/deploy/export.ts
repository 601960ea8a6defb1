import { fail, fmtShape, OnebitError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { BinaryConv2d, BinaryLinear } from '../nn/binary.js';
import {
  AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Flatten, GlobalAvgPool2d, Hardtanh, Linear, MaxPool2d, pair, PReLU, ReLU,
} from '../nn/layers.js';
import { Module, Sequential } from '../nn/module.js';
import { LearnableBias, Maxout, RPReLU } from '../nn/react.js';
import { Quantizer } from '../quantizers/quantizer.js';
import { BiRealBlock, ResNet18 } from '../models/resnet18.js';
import { TwoShortcutBlock } from '../models/resnet20.js';
import { VggSmall } from '../models/vgg_small.js';
import { ReActBlock, ReActNetA } from '../models/reactnet_a.js';
import { CIFAR10_CLASSES } from '../data/cifar.js';
import { datasetNorm, loadTrainedModel } from '../train/trainer.js';
import { writeFileAtomic } from '../train/checkpoint.js';
import { wordsFor, type AttrValue, type GraphTensor, type OnebitGraph } from '../infer/graph.js';
import { Builder, foldScaleBias, foldScaleBiasForward, fuseThresholds } from '../infer/passes.js';
import { activationForm, weightForm } from './forms.js';
import { encodeOnebit } from './format.js';

/**
 * Export: a trained onebit model (eval mode) → the inference graph of a `.onebit` file.
 *
 * 1. Lowering, module by module (by class; an unknown module fails naming its class and path):
 *    real layers map to float ops (batch norm → per-channel scale/bias with the running statistics),
 *    and every binary layer becomes `sign` (its input quantizer's threshold form, forms.ts) +
 *    `binary_conv2d` / `binary_dense` with the weight signs bit-packed. With activation levels
 *    {ma − da, ma + da} and per-channel weight levels {mw − dw, mw + dw} (forms.ts), the layer is
 *      y = dw·da·D + mw·da·T + K·mw·ma + dw·ma·S_all                       (inside the image)
 *    with D the ±1 dot product, T the sum of the ±1 inputs under the window, K the taps and S_all
 *    the sum of the channel's weight signs. Padding is exact: a border tap of the training layer
 *    holds padValue pv, which is the value (pv − ma)/da in ±1 space; the op's `pad` attribute is
 *    that value, and D and T read it at border taps. It is 0 for zero padding of ±1 activations
 *    and ±1 for ±1 padding of them (the kernel handles both directly, no correction); for offset
 *    levels (AdaBin) it is another number and the engine adds pad·Σ(border weight signs) — the
 *    border correction.
 * 2. Folding (the rewrites are in src/infer/passes.ts): a per-channel scale/bias (batch norm, LearnableBias) whose input has no other reader
 *    is folded into the conv / dense / binary op before it, or else into a dense layer that is its
 *    only reader.
 * 3. Threshold fusion (Larq Compute Engine's design): where a binary op's output only feeds, through
 *    per-channel monotone ops (scale/bias, PReLU/RPReLU/Maxout with non-negative slopes, clamp), a
 *    binarization, the chain is inverted per channel into one threshold on the binary op's output
 *    (`thr`, `dir`), so it writes ±1 directly. Chains that are not monotone stay as they are.
 *
 * Numerics: folding reorders float32 arithmetic, so logits agree with the training graph in eval
 * mode to float rounding (the parity tests state the tolerance), and a value within rounding of a
 * later threshold may binarize differently.
 */

export interface ExportOptions {
  /** Per-sample input shape, e.g. [1, 28, 28] or [3, 32, 32]. */
  inputShape: number[];
  /** Number of classes (checked against the model's output); default: the output's size. */
  classes?: number;
  /** Class names, one per class. */
  labels?: string[];
  /** Stored as-is in the file (JSON object). */
  metadata?: Record<string, unknown>;
  /**
   * Reproduce the training graph's eval-mode arithmetic bit for bit instead of folding: batch norm
   * stays a `batch_norm` op computed as in training, nothing is folded or fused into thresholds
   * (default false: folded, faster, logits equal up to float rounding — a value within rounding of
   * a binarization threshold can then flip).
   */
  exact?: boolean;
  /** Fold per-channel scale/bias into the producing op (default true). */
  fold?: boolean;
  /** Fuse binary op → monotone chain → sign into thresholds (default true). */
  fuseThresholds?: boolean;
}

const f32 = (data: Float32Array, shape?: number[]): GraphTensor => ({ dtype: 'f32', shape: shape ?? [data.length], data });
const copy = (t: Tensor): Float32Array => Float32Array.from(t.f32());
const allZero = (a: Float64Array): boolean => a.every((v) => v === 0);
const round = (a: Float64Array): Float32Array => Float32Array.from(a);

/** A per-channel vector of C values from a [C] or shared [1] parameter. */
function channels(p: Float32Array, C: number, what: string): Float32Array {
  if (p.length === C) return Float32Array.from(p);
  if (p.length === 1) return new Float32Array(C).fill(p[0]!);
  return fail(`exportModel: ${what}`, `${C} (or 1) per-channel values`, `${p.length}`);
}

const join = (a: string, b: string): string => (a ? `${a}.${b}` : b);

/** Lower module `m` applied to value `v`; returns the value of its output. */
function lower(b: Builder, m: Module, v: number, path: string): number {
  const x = b.info(v), C = x.shape[0]!;
  const name = path || m.constructor.name;
  if (m instanceof Sequential) {
    for (const [n, child] of m.children()) v = lower(b, child, v, join(path, n));
    return v;
  }
  if (m instanceof BinaryConv2d || m instanceof BinaryLinear) {
    try {
      return lowerBinary(b, m, v, name);
    } catch (e) {
      // Name the layer in the quantizer's error (forms.ts does not know where it is used).
      if (e instanceof OnebitError && !e.message.startsWith('exportModel')) throw new OnebitError(`exportModel: ${name} (${m.describe()}): ${e.message}`);
      throw e;
    }
  }
  if (m instanceof Flatten) return x.shape.length === 1 ? v : b.emit('flatten', [v], {}, name);
  if (m instanceof Dropout) return v;
  if (m instanceof Linear) {
    return b.emit('dense', [v], { weight: f32(copy(m.weight), [...m.weight.shape]), ...(m.bias ? { bias: f32(copy(m.bias)) } : {}) }, name);
  }
  if (m instanceof Conv2d) {
    const o = m.opts;
    return b.emit('conv2d', [v], {
      weight: f32(copy(m.weight), [...m.weight.shape]), ...(m.bias ? { bias: f32(copy(m.bias)) } : {}),
      stride: pair(o.stride ?? 1), padding: pair(o.padding ?? 0), dilation: pair(o.dilation ?? 1), groups: o.groups ?? 1,
    }, name);
  }
  if (m instanceof BatchNorm1d || m instanceof BatchNorm2d) {
    const want = m instanceof BatchNorm1d ? 1 : 3;
    if (x.shape.length !== want || C !== m.numFeatures) fail(`exportModel: ${name} (${m.describe()})`, `an input of ${m.numFeatures} channels and rank ${want} per sample`, fmtShape(x.shape));
    const eps = m.opts.eps ?? 1e-5;
    const g = m.weight.f32(), be = m.bias.f32(), mu = m.runningMean.f32(), va = m.runningVar.f32();
    if (b.exact) {
      // The training graph's own arithmetic (ops/norm.ts): invStd rounded to float32, then batchNormApply.
      const invStd = new Float32Array(C);
      for (let c = 0; c < C; c++) invStd[c] = 1 / Math.sqrt(va[c]! + eps);
      return b.emit('batch_norm', [v], { mean: f32(Float32Array.from(mu)), invStd: f32(invStd), gamma: f32(Float32Array.from(g)), beta: f32(Float32Array.from(be)) }, name);
    }
    const scale = new Float32Array(C), bias = new Float32Array(C);
    for (let c = 0; c < C; c++) {
      const a = g[c]! / Math.sqrt(va[c]! + eps);
      scale[c] = a;
      bias[c] = be[c]! - mu[c]! * a;
    }
    return b.emit('scale_bias', [v], { scale: f32(scale), bias: f32(bias) }, name);
  }
  if (m instanceof ReLU) return b.emit('clamp', [v], { lo: 0 }, name);
  if (m instanceof Hardtanh) return b.emit('clamp', [v], { lo: m.lo, hi: m.hi }, name);
  if (m instanceof PReLU) return b.emit('channel_act', [v], { neg: f32(channels(m.weight.f32(), C, `${name} slope`)) }, name);
  if (m instanceof LearnableBias) return b.emit('scale_bias', [v], { scale: f32(new Float32Array(C).fill(1)), bias: f32(channels(m.bias.f32(), C, name)) }, name);
  if (m instanceof RPReLU) {
    return b.emit('channel_act', [v], {
      b0: f32(channels(m.move0.bias.f32(), C, name)), neg: f32(channels(m.prelu.weight.f32(), C, `${name} slope`)), b1: f32(channels(m.move1.bias.f32(), C, name)),
    }, name);
  }
  if (m instanceof Maxout) {
    return b.emit('channel_act', [v], { pos: f32(channels(m.posScale.f32(), C, name)), neg: f32(channels(m.negScale.f32(), C, name)) }, name);
  }
  if (m instanceof MaxPool2d || m instanceof AvgPool2d) {
    const k = pair(m.kernel);
    return b.emit(m instanceof MaxPool2d ? 'max_pool2d' : 'avg_pool2d', [v], { kernel: k, stride: pair(m.stride ?? k), padding: pair(m.padding) }, name);
  }
  if (m instanceof GlobalAvgPool2d) return b.emit('global_avg_pool', [v], {}, name);
  if (m instanceof Quantizer) {
    if (m.alias === 'identity') return v; // full precision: nothing to run (the float preset)
    const f = activationForm(m, C);
    return b.emit('levels', [v], { thr: f32(f.thr), lo: f32(f.lo), hi: f32(f.hi) }, name);
  }
  if (m instanceof TwoShortcutBlock) {
    const r = m.stride === 1 && m.inChannels === m.outChannels ? v : b.emit('shortcut_a', [v], { outChannels: m.outChannels }, join(name, 'shortcut'));
    let out = b.emit('add', [lower(b, m.bn1, lower(b, m.conv1, v, join(path, 'conv1')), join(path, 'bn1')), r], {}, join(name, 'add1'));
    if (m.act1) out = lower(b, m.act1, out, join(path, 'act1'));
    let y = b.emit('add', [lower(b, m.bn2, lower(b, m.conv2, out, join(path, 'conv2')), join(path, 'bn2')), out], {}, join(name, 'add2'));
    if (m.act2) y = lower(b, m.act2, y, join(path, 'act2'));
    return y;
  }
  if (m instanceof BiRealBlock) {
    const r = m.downsample ? lower(b, m.downsample, v, join(path, 'downsample')) : v;
    const y = lower(b, m.bn, lower(b, m.conv, v, join(path, 'conv')), join(path, 'bn'));
    return lower(b, m.act, b.emit('add', [y, r], {}, join(name, 'add')), join(path, 'act'));
  }
  if (m instanceof ResNet18) {
    let y = lower(b, m.stem, v, join(path, 'stem'));
    m.stages.forEach((s, i) => (y = lower(b, s, y, join(path, `stage${i + 1}`))));
    return lower(b, m.fc, lower(b, m.pool, y, join(path, 'pool')), join(path, 'fc'));
  }
  if (m instanceof VggSmall) {
    let y = v;
    for (let i = 0; i < 6; i++) {
      y = i === 0 ? lower(b, m.conv0, y, join(path, 'conv0')) : lower(b, m.convs[i - 1]!, y, join(path, `conv${i}`));
      if (i % 2 === 1) y = lower(b, m.pool, y, join(path, 'pool'));
      y = lower(b, m.bns[i]!, y, join(path, `bn${i}`));
      const a = m.acts[i];
      if (a) y = lower(b, a, y, join(path, `act${i}`));
    }
    return lower(b, m.fc, lower(b, m.flatten, y, join(path, 'flatten')), join(path, 'fc'));
  }
  if (m instanceof ReActBlock) {
    const r1 = m.pool ? lower(b, m.pool, v, join(path, 'pool')) : v;
    const y1 = lower(b, m.bn1, lower(b, m.conv3x3, v, join(path, 'conv3x3')), join(path, 'bn1'));
    const out1 = lower(b, m.act1, b.emit('add', [y1, r1], {}, join(name, 'add1')), join(path, 'act1'));
    const r2 = m.outChannels === m.inChannels ? out1 : b.emit('repeat_channels', [out1], {}, join(name, 'repeat'));
    const y2 = lower(b, m.bn2, lower(b, m.pw, out1, join(path, 'pw')), join(path, 'bn2'));
    return lower(b, m.act2, b.emit('add', [y2, r2], {}, join(name, 'add2')), join(path, 'act2'));
  }
  if (m instanceof ReActNetA) {
    const y = lower(b, m.features, lower(b, m.stem, v, join(path, 'stem')), join(path, 'features'));
    return lower(b, m.fc, lower(b, m.pool, y, join(path, 'pool')), join(path, 'fc'));
  }
  return fail('exportModel', 'modules onebit knows how to export (Sequential, Linear, Conv2d, BatchNorm, binary layers, activations, pools, the model blocks of src/models)',
    `${m.constructor.name} at "${path || '(root)'}"`, 'Add a lowering rule for it in src/deploy/export.ts.');
}

/** Pack ±1 signs [rows, k] into rows of 32-bit words (bit 1 = −1, LSB first, tail bits 0). */
export function packSigns(signs: Int8Array, rows: number, k: number): Uint32Array {
  const words = wordsFor(k), out = new Uint32Array(rows * words);
  for (let r = 0; r < rows; r++) for (let j = 0; j < k; j++) if (signs[r * k + j]! < 0) out[r * words + (j >>> 5)]! |= 1 << (j & 31);
  return out;
}

/** A binary layer → sign + binary op (or float ops when a quantizer is absent). */
function lowerBinary(b: Builder, m: BinaryConv2d | BinaryLinear, v: number, name: string): number {
  const x = b.info(v), C = x.shape[0]!;
  const conv = m instanceof BinaryConv2d;
  if (conv ? x.shape.length !== 3 : x.shape.length !== 1) {
    fail(`exportModel: ${name} (${m.describe()})`, conv ? 'an input [C, H, W] per sample' : 'an input [F] per sample', fmtShape(x.shape), conv ? '' : 'Add a Flatten layer before it.');
  }
  // An identity quantizer (full precision, e.g. the `float` preset) is the same as none.
  const real = <Q extends { alias: string }>(q: Q | null): Q | null => (q && q.alias !== 'identity' ? q : null);
  const iq = real(m.inputQuantizer), kq = real(m.kernelQuantizer);
  const layerBias = m.bias ? m.bias.f32() : null;
  const geom = conv ? {
    stride: pair(m.opts.stride ?? 1), padding: pair(m.opts.padding ?? 0), dilation: pair(m.opts.dilation ?? 1), groups: m.opts.groups ?? 1,
  } : null;
  if (!iq || !kq) {
    // Not a 1-bit × 1-bit layer: quantize explicitly and run the float op on the quantized values.
    let input = v;
    if (iq) {
      const f = activationForm(iq, C);
      input = b.emit('levels', [v], { thr: f32(f.thr), lo: f32(f.lo), hi: f32(f.hi) }, join(name, 'inputQuantizer'));
    }
    let w = copy(m.weight);
    if (kq) {
      const f = weightForm(kq, m.weight), per = w.length / f.lo.length;
      w = w.map((_, i) => (f.signs[i]! > 0 ? f.hi : f.lo)[Math.floor(i / per)]!);
    }
    const bias: Record<string, AttrValue> = layerBias ? { bias: f32(Float32Array.from(layerBias)) } : {};
    if (!conv) return b.emit('dense', [input], { weight: f32(w, [...m.weight.shape]), ...bias }, name);
    return b.emit('conv2d', [input], { weight: f32(w, [...m.weight.shape]), ...bias, ...geom!, ...(m.padValue ? { padValue: m.padValue } : {}) }, name);
  }

  const af = activationForm(iq, C);
  if (!af.lo.every((l) => l === af.lo[0]) || !af.hi.every((h) => h === af.hi[0])) {
    fail(`exportModel: ${name} (${iq.alias})`, 'the same two activation levels in every input channel', 'per-channel levels', 'The binary kernels need one level pair per layer.');
  }
  const ma = (af.hi[0]! + af.lo[0]!) / 2, da = (af.hi[0]! - af.lo[0]!) / 2;
  if (!(da > 0) && !(da < 0)) fail(`exportModel: ${name} (${iq.alias})`, 'two distinct activation levels', `${af.lo[0]} and ${af.hi[0]}`);
  const wf = weightForm(kq, m.weight);
  const Co = wf.lo.length, K = m.weight.size / Co;
  const mul = new Float64Array(Co), tmul = new Float64Array(Co), bias = new Float64Array(Co);
  for (let o = 0; o < Co; o++) {
    const mw = (wf.hi[o]! + wf.lo[o]!) / 2, dw = (wf.hi[o]! - wf.lo[o]!) / 2;
    let sAll = 0;
    for (let j = 0; j < K; j++) sAll += wf.signs[o * K + j]!;
    mul[o] = dw * da;
    tmul[o] = mw * da;
    bias[o] = K * mw * ma + dw * ma * sAll + (layerBias ? layerBias[o]! : 0);
  }
  const t = b.emit('sign', [v], { thr: f32(af.thr) }, join(name, 'inputQuantizer'));
  const attrs: Record<string, AttrValue> = { weight: { dtype: 'u32', shape: [Co, wordsFor(K)], data: packSigns(wf.signs, Co, K) }, mul: f32(round(mul)), bias: f32(round(bias)) };
  if (!allZero(tmul)) attrs.tmul = f32(round(tmul));
  if (!conv) return b.emit('binary_dense', [t], attrs, name);
  // The training border value padValue, in ±1 space: (pv − ma)/da (pv itself for ±1 activations; 0 for zero padding of them).
  const padded = geom!.padding[0] > 0 || geom!.padding[1] > 0;
  const pad = padded ? ((m as BinaryConv2d).padValue - ma) / da + 0 : 0; // + 0: no −0 in the file
  return b.emit('binary_conv2d', [t], { ...attrs, kernel: [...(m as BinaryConv2d).kernelSize], ...geom!, pad }, name);
}

/**
 * Build the inference graph of `model` (see the module comment). The model is put in eval mode
 * while exporting (its previous mode is restored). Throws an OnebitError naming the module for an
 * unknown module, a non-binary quantizer or shapes that do not fit `inputShape`.
 */
export function exportGraph(model: Module, opts: ExportOptions): OnebitGraph {
  const shape = opts.inputShape;
  if (!Array.isArray(shape) || ![1, 3].includes(shape.length) || !shape.every((d) => Number.isInteger(d) && d >= 1)) {
    fail('exportModel inputShape', 'a per-sample shape [C, H, W] or [F] of positive integers (no batch axis)', JSON.stringify(shape));
  }
  const modes = model.namedModules().map(([, m]) => [m, m.training] as const);
  model.eval();
  try {
    const b = new Builder(shape);
    b.exact = opts.exact === true;
    b.output = lower(b, model, 0, '');
    const out = b.info(b.output);
    if (out.shape.length !== 1 || out.kind !== 'float') fail('exportModel', 'a model ending in logits [classes]', `an output of shape ${fmtShape(out.shape)}`);
    const classes = opts.classes ?? out.shape[0]!;
    if (classes !== out.shape[0]) fail('exportModel classes', `${out.shape[0]} (the model's output size)`, String(classes));
    if (opts.fold !== false && !b.exact) {
      foldScaleBias(b);
      foldScaleBiasForward(b);
    }
    if (opts.fuseThresholds !== false && !b.exact) fuseThresholds(b);
    const { nodes, output } = b.compact();
    return { inputShape: [...shape], classes, ...(opts.labels ? { labels: opts.labels } : {}), metadata: { ...(opts.metadata ?? {}), ...(b.exact ? { exact: true } : {}) }, nodes, output };
  } finally {
    for (const [m, t] of modes) m.training = t;
  }
}

/** Export `model` to the bytes of a `.onebit` file (`exportGraph` + `encodeOnebit`). */
export function exportModel(model: Module, opts: ExportOptions): Uint8Array {
  return encodeOnebit(exportGraph(model, opts));
}

/** Per-sample input shape and class names of a training dataset. */
function datasetIo(dataset: string): { inputShape: number[]; labels: string[] } {
  if (dataset === 'mnist') return { inputShape: [1, 28, 28], labels: Array.from({ length: 10 }, (_, i) => String(i)) };
  if (dataset === 'cifar10') return { inputShape: [3, 32, 32], labels: [...CIFAR10_CLASSES] };
  return fail('exportCheckpoint dataset', 'mnist or cifar10', JSON.stringify(dataset));
}

/**
 * Export a training checkpoint (`*.ckpt`) to `.onebit`: the model is rebuilt from the checkpoint's
 * config and weights (`loadTrainedModel`), the input shape and class names come from its dataset,
 * and the metadata records the config, epoch, last test accuracy and the input normalization
 * (`preprocess`: pixels/255, then (x − mean[c]) / std[c]) that `predict` inputs must have.
 * Writes `out` atomically when given; returns the bytes and the graph.
 */
export function exportCheckpoint(file: string, out?: string, opts: { exact?: boolean } = {}): { bytes: Uint8Array; graph: OnebitGraph } {
  const { config, model, meta } = loadTrainedModel(file);
  const io = datasetIo(config.dataset);
  const last = meta.history?.[meta.history.length - 1];
  const graph = exportGraph(model, {
    exact: opts.exact === true,
    inputShape: io.inputShape,
    labels: io.labels,
    metadata: {
      producer: 'onebit',
      source: file,
      config,
      epoch: meta.epoch,
      ...(last ? { testAcc: last.testAcc } : {}),
      preprocess: { scale: 1 / 255, ...datasetNorm(config.dataset) },
    },
  });
  const bytes = encodeOnebit(graph);
  if (out) writeFileAtomic(out, bytes);
  return { bytes, graph };
}
