import onnxProto from 'onnx-proto';
import { noGrad } from '../autograd/tape.js';
import { fail, fmtShape } from '../core/errors.js';
import { BinaryConv2d, BinaryLinear } from '../nn/binary.js';
import {
  AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Flatten, GlobalAvgPool2d, Hardtanh, Linear, MaxPool2d, pair, PReLU, ReLU,
} from '../nn/layers.js';
import { Module, Sequential } from '../nn/module.js';
import { LearnableBias, Maxout, RPReLU } from '../nn/react.js';
import { Quantizer } from '../quantizers/quantizer.js';
import { Identity } from '../quantizers/identity.js';
import { ReActBlock, ReActNetA } from '../models/reactnet_a.js';
import { BiRealBlock, ResNet18 } from '../models/resnet18.js';
import { TwoShortcutBlock } from '../models/resnet20.js';
import { VggSmall } from '../models/vgg_small.js';
import { writeFileAtomic } from '../train/checkpoint.js';
import { activationForm } from './forms.js';

const { onnx } = onnxProto;

/**
 * ONNX export of a trained onebit model, evaluated in eval mode, as standard ONNX ops that emulate
 * the binary network in float32 (runs on any ONNX runtime; no custom ops):
 *
 * - binary weights: the kernel quantizer's eval-mode forward (under noGrad) on the latent weights,
 *   i.e. the exact ±α / {−τ−, +τ+} / AdaBin values the model multiplies with, stored as float
 *   initializers of a plain Conv / Gemm;
 * - binary activations: y = x >= thr[c] ? hi[c] : lo[c] (`activationForm` in deploy/forms.ts) as
 *   GreaterOrEqual + Where. ONNX's Sign is NOT used: Sign(0) = 0 there, while onebit's sign(0) = +1;
 * - binary conv padding: padValue 0 → Conv's own zero pads; ±1 → an explicit Pad before the Conv;
 * - batch norm (eval): BatchNormalization with the running statistics and the layer's eps;
 * - PReLU / RPReLU / LearnableBias / Maxout: PRelu, Add, Relu, Neg, Mul, Sub;
 * - ResNet-20's option-A shortcut: Slice(step 2) + Pad of the channel axis with zeros; ReActNet-A's
 *   width-doubling shortcut: Concat of the input with itself on the channel axis.
 *
 * The batch dimension is symbolic ("N"); the other input dimensions are fixed by `inputShape`.
 * Container modules are walked by class (Sequential, ResNet18, BiRealBlock, TwoShortcutBlock,
 * VggSmall, ReActNetA, ReActBlock); any other module class fails with an error naming it. The
 * `identity` quantizer (a real side: the `float` preset, `--binarize`) emits nothing.
 *
 * Exactness: weights, thresholds and output values are bit-exact; sums differ from onebit only in
 * float rounding order. A pre-activation within rounding distance of its threshold can therefore
 * binarize differently (e.g. an integer binary-conv sum that an untrained BN maps exactly onto 0:
 * ORT's Conv+BatchNormalization fusion rescales the ±1 weights and the exact 0 becomes ±1e-7).
 * With trained batch-norm statistics such ties are vanishingly rare (test/deploy_onnx.test.ts).
 *
 * One file (~440 lines) on purpose: the small protobuf graph builder serves only this exporter,
 * and each module class's emitter sits next to the others so a new class is added in one place.
 */

/** Options of `exportOnnx`. */
export interface OnnxExportOptions {
  /** Shape of one input batch, batch first, e.g. [1, 1, 28, 28]; the batch size in the file is symbolic. */
  inputShape: number[];
  /** ONNX opset of the default domain, 13 … 21 (default 17). */
  opset?: number;
  /** Stored as the model's metadata_props (string → string), e.g. { arch, method, config }. */
  metadata?: Record<string, string>;
}

/** Opsets this exporter writes; every op it uses has the same signature across them. */
const OPSET_MIN = 13, OPSET_MAX = 21;

/** The IR version that goes with an opset (onnx/helper.py's VERSION_TABLE). */
function irVersionFor(opset: number): number {
  return opset <= 13 ? 7 : opset <= 18 ? 8 : opset <= 20 ? 9 : 10;
}

type Attr = number | number[] | { f: number };

/** A tracked value of the graph: its ONNX name and its static shape (batch = inputShape[0]). */
interface Value {
  name: string;
  shape: number[];
}

/** Nodes and initializers in topological order, with unique names. */
class GraphBuilder {
  readonly nodes: InstanceType<typeof onnx.NodeProto>[] = [];
  readonly initializers: InstanceType<typeof onnx.TensorProto>[] = [];
  private readonly used = new Set<string>();

  /** A fresh name starting with `hint` ("stage1.0.conv", "Conv"). */
  name(hint: string): string {
    let n = hint || 'v';
    for (let i = 1; this.used.has(n); i++) n = `${hint}_${i}`;
    this.used.add(n);
    return n;
  }

  /** A float32 initializer; returns its name. */
  float(hint: string, data: Float32Array | number[], dims: number[]): string {
    const f = Float32Array.from(data);
    if (f.length !== dims.reduce((a, b) => a * b, 1)) throw new Error(`internal: ${hint} has ${f.length} values for dims ${fmtShape(dims)}`);
    const name = this.name(hint);
    this.initializers.push(onnx.TensorProto.create({
      name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: new Uint8Array(f.buffer, f.byteOffset, f.byteLength),
    }));
    return name;
  }

  /** An int64 initializer (Slice starts/ends, Pad pads). */
  int64(hint: string, data: number[]): string {
    const name = this.name(hint);
    this.initializers.push(onnx.TensorProto.create({ name, dims: [data.length], dataType: onnx.TensorProto.DataType.INT64, int64Data: data }));
    return name;
  }

  /** Append a node; returns the name of its (single) output. */
  node(op: string, inputs: string[], hint: string, attrs: Record<string, Attr> = {}): string {
    const out = this.name(hint);
    const attribute = Object.entries(attrs).map(([name, v]) => {
      const A = onnx.AttributeProto.AttributeType;
      if (Array.isArray(v)) return onnx.AttributeProto.create({ name, type: A.INTS, ints: v });
      if (typeof v === 'number') return onnx.AttributeProto.create({ name, type: A.INT, i: v });
      return onnx.AttributeProto.create({ name, type: A.FLOAT, f: v.f });
    });
    this.nodes.push(onnx.NodeProto.create({ opType: op, input: inputs, output: [out], name: this.name(`${hint}/${op}`), attribute }));
    return out;
  }
}

/** Walks the module tree and emits the graph; one method per module class. */
class Exporter {
  readonly g = new GraphBuilder();

  /**
   * Emit `m` applied to `x`; `path` is m's dotted name (for initializer names and errors). Each
   * container's branch mirrors its forward(); quantizers standing alone as layers are activations.
   */
  module(m: Module, path: string, x: Value): Value {
    const at = path || 'model';
    if (overridesForward(m)) return this.unknown(m, at);
    if (m instanceof Sequential) return m.layers.reduce((v, l, i) => this.module(l, join(path, String(i)), v), x);
    if (m instanceof ResNet18) {
      let y = this.module(m.stem, join(path, 'stem'), x);
      m.stages.forEach((s, i) => (y = this.module(s, join(path, `stage${i + 1}`), y)));
      return this.module(m.fc, join(path, 'fc'), this.module(m.pool, join(path, 'pool'), y));
    }
    if (m instanceof VggSmall) return this.vggSmall(m, path, x);
    if (m instanceof ReActNetA) {
      const n = m.inputSize;
      if (x.shape.length !== 4 || x.shape[1] !== 3 || x.shape[2] !== n || x.shape[3] !== n) {
        fail('exportOnnx', `inputShape [N, 3, ${n}, ${n}] for ${m.describe()}`, fmtShape(x.shape), 'Build it with the matching inputSize.');
      }
      const y = this.module(m.features, join(path, 'features'), this.module(m.stem, join(path, 'stem'), x));
      return this.module(m.fc, join(path, 'fc'), this.module(m.pool, join(path, 'pool'), y));
    }
    if (m instanceof ReActBlock) return this.reactBlock(m, path, x);
    if (m instanceof BiRealBlock) return this.biReal(m, path, x);
    if (m instanceof TwoShortcutBlock) return this.twoShortcut(m, path, x);
    if (m instanceof BinaryLinear) return this.binaryLinear(m, path, x);
    if (m instanceof BinaryConv2d) return this.binaryConv(m, path, x);
    if (m instanceof Linear) return this.gemm(at, x, m.inFeatures, m.weight.f32(), [m.outFeatures, m.inFeatures], m.bias?.f32() ?? null);
    if (m instanceof Conv2d) {
      return this.conv(at, x, m.inChannels, m.weight.f32(), [...m.weight.shape], m.bias?.f32() ?? null, m.opts.stride, m.opts.padding ?? 0, m.opts.dilation, m.opts.groups);
    }
    if (m instanceof BatchNorm1d || m instanceof BatchNorm2d) return this.batchNorm(m, at, x);
    if (m instanceof ReLU) return this.same('Relu', [x.name], at, x);
    if (m instanceof Hardtanh) return this.same('Clip', [x.name, this.g.float(`${at}.min`, [m.lo], []), this.g.float(`${at}.max`, [m.hi], [])], at, x);
    if (m instanceof PReLU) return this.prelu(m, at, x);
    if (m instanceof LearnableBias) return this.same('Add', [x.name, this.perChannel(`${at}.bias`, m.bias.f32(), x, 'LearnableBias')], at, x);
    if (m instanceof RPReLU) {
      const y = this.module(m.move0, join(path, 'move0'), x);
      return this.module(m.move1, join(path, 'move1'), this.module(m.prelu, join(path, 'prelu'), y));
    }
    if (m instanceof Maxout) return this.maxout(m, at, x);
    if (m instanceof MaxPool2d || m instanceof AvgPool2d) return this.pool(m, at, x);
    if (m instanceof GlobalAvgPool2d) {
      expectRank('GlobalAvgPool2d', at, x, 4);
      const p = this.g.node('GlobalAveragePool', [x.name], at);
      return { name: this.g.node('Flatten', [p], at, { axis: 1 }), shape: x.shape.slice(0, 2) };
    }
    if (m instanceof Flatten) {
      return { name: this.g.node('Flatten', [x.name], at, { axis: 1 }), shape: [x.shape[0]!, x.shape.slice(1).reduce((a, b) => a * b, 1)] };
    }
    if (m instanceof Dropout) return x; // identity in eval mode
    if (m instanceof Quantizer) return this.quantize(m, at, x);
    return this.unknown(m, at);
  }

  private unknown(m: Module, at: string): never {
    return fail(
      'exportOnnx',
      `modules of a class the ONNX exporter knows (${KNOWN.map((K) => K.name).join(', ')}, or a bare activation quantizer)`,
      `"${at}" of class ${m.constructor.name} (${m.describe()})`,
      'Add an emitter for it in src/deploy/onnx.ts.',
    );
  }

  /** A node whose output has the shape of x. */
  private same(op: string, inputs: string[], at: string, x: Value, attrs: Record<string, Attr> = {}): Value {
    return { name: this.g.node(op, inputs, at, attrs), shape: x.shape };
  }

  /** A per-channel vector as an initializer shaped to broadcast over x [N, C, …]: [C, 1, …]. */
  private perChannel(hint: string, v: Float32Array, x: Value, what: string): string {
    if (x.shape.length < 2 || x.shape[1] !== v.length) fail(what, `input [N, ${v.length}, ...] (${v.length} channels on axis 1)`, `shape ${fmtShape(x.shape)} at "${hint}"`);
    return this.g.float(hint, v, [v.length, ...Array<number>(x.shape.length - 2).fill(1)]);
  }

  private gemm(at: string, x: Value, inFeatures: number, w: Float32Array, wDims: number[], bias: Float32Array | null): Value {
    if (x.shape.length !== 2 || x.shape[1] !== inFeatures) {
      fail('exportOnnx', `input [batch, ${inFeatures}] at "${at}"`, `shape ${fmtShape(x.shape)}`, x.shape.length > 2 ? 'Add a Flatten layer before it.' : '');
    }
    const inputs = [x.name, this.g.float(`${at}.weight`, w, wDims)];
    if (bias) inputs.push(this.g.float(`${at}.bias`, bias, [wDims[0]!]));
    return { name: this.g.node('Gemm', inputs, at, { transB: 1 }), shape: [x.shape[0]!, wDims[0]!] };
  }

  private conv(
    at: string, x: Value, inChannels: number, w: Float32Array, wDims: number[], bias: Float32Array | null,
    stride: number | [number, number] | undefined, padding: number | [number, number], dilation: number | [number, number] | undefined, groups = 1,
  ): Value {
    expectRank('Conv2d', at, x, 4);
    if (x.shape[1] !== inChannels) fail('exportOnnx', `input with ${inChannels} channels at "${at}"`, `shape ${fmtShape(x.shape)}`);
    const [sh, sw] = pair(stride ?? 1), [ph, pw] = pair(padding), [dh, dw] = pair(dilation ?? 1);
    const [cout, , kh, kw] = wDims as [number, number, number, number];
    const Ho = Math.floor((x.shape[2]! + 2 * ph - dh * (kh - 1) - 1) / sh) + 1;
    const Wo = Math.floor((x.shape[3]! + 2 * pw - dw * (kw - 1) - 1) / sw) + 1;
    if (Ho < 1 || Wo < 1) fail('exportOnnx', `a spatial size that fits the ${kh}x${kw} kernel at "${at}"`, `input shape ${fmtShape(x.shape)}`);
    const inputs = [x.name, this.g.float(`${at}.weight`, w, wDims)];
    if (bias) inputs.push(this.g.float(`${at}.bias`, bias, [cout]));
    const attrs = { kernel_shape: [kh, kw], strides: [sh, sw], pads: [ph, pw, ph, pw], dilations: [dh, dw], group: groups };
    return { name: this.g.node('Conv', inputs, at, attrs), shape: [x.shape[0]!, cout, Ho, Wo] };
  }

  private batchNorm(m: BatchNorm1d | BatchNorm2d, at: string, x: Value): Value {
    const rank = m instanceof BatchNorm1d ? 2 : 4;
    expectRank(m.describe(), at, x, rank);
    const c = m.numFeatures;
    if (x.shape[1] !== c) fail('exportOnnx', `input with ${c} channels at "${at}" (${m.describe()})`, `shape ${fmtShape(x.shape)}`);
    const inputs = [
      x.name, this.g.float(`${at}.weight`, m.weight.f32(), [c]), this.g.float(`${at}.bias`, m.bias.f32(), [c]),
      this.g.float(`${at}.runningMean`, m.runningMean.f32(), [c]), this.g.float(`${at}.runningVar`, m.runningVar.f32(), [c]),
    ];
    return this.same('BatchNormalization', inputs, at, x, { epsilon: { f: m.opts.eps ?? 1e-5 } });
  }

  private prelu(m: PReLU, at: string, x: Value): Value {
    const slope = m.numParameters === 1 ? this.g.float(`${at}.weight`, m.weight.f32(), [1]) : this.perChannel(`${at}.weight`, m.weight.f32(), x, 'PReLU');
    return this.same('PRelu', [x.name, slope], at, x);
  }

  /** y = posScale·Relu(x) − negScale·Relu(−x), in onebit's operation order. */
  private maxout(m: Maxout, at: string, x: Value): Value {
    const gp = this.perChannel(`${at}.posScale`, m.posScale.f32(), x, 'Maxout');
    const gn = this.perChannel(`${at}.negScale`, m.negScale.f32(), x, 'Maxout');
    const pos = this.g.node('Mul', [gp, this.g.node('Relu', [x.name], at)], at);
    const neg = this.g.node('Mul', [gn, this.g.node('Relu', [this.g.node('Neg', [x.name], at)], at)], at);
    return this.same('Sub', [pos, neg], at, x);
  }

  private pool(m: MaxPool2d | AvgPool2d, at: string, x: Value): Value {
    expectRank(m.constructor.name, at, x, 4);
    const [kh, kw] = pair(m.kernel), [sh, sw] = pair(m.stride ?? m.kernel), [ph, pw] = pair(m.padding);
    const Ho = Math.floor((x.shape[2]! + 2 * ph - kh) / sh) + 1, Wo = Math.floor((x.shape[3]! + 2 * pw - kw) / sw) + 1;
    if (Ho < 1 || Wo < 1) fail('exportOnnx', `a spatial size that fits the ${kh}x${kw} window at "${at}"`, `input shape ${fmtShape(x.shape)}`);
    const attrs: Record<string, Attr> = { kernel_shape: [kh, kw], strides: [sh, sw], pads: [ph, pw, ph, pw] };
    // onebit's average pool excludes padding from the divisor (count_include_pad = 0, ONNX's default).
    if (m instanceof AvgPool2d) attrs.count_include_pad = 0;
    return { name: this.g.node(m instanceof MaxPool2d ? 'MaxPool' : 'AveragePool', [x.name], at, attrs), shape: [x.shape[0]!, x.shape[1]!, Ho, Wo] };
  }

  /** An activation quantizer as y = x >= thr[c] ? hi[c] : lo[c] (GreaterOrEqual + Where). */
  private quantize(q: Quantizer, at: string, x: Value): Value {
    if (q instanceof Identity) return x; // a real side (the `float` preset, --binarize activations|weights)
    if (x.shape.length < 2) fail('exportOnnx', `an input [N, C, ...] for the quantizer at "${at}"`, `shape ${fmtShape(x.shape)}`);
    const { thr, lo, hi } = activationForm(q, x.shape[1]!);
    const cond = this.g.node('GreaterOrEqual', [x.name, this.perChannel(`${at}.thr`, thr, x, q.alias)], at);
    const hiName = this.perChannel(`${at}.hi`, hi, x, q.alias), loName = this.perChannel(`${at}.lo`, lo, x, q.alias);
    return this.same('Where', [cond, hiName, loName], at, x);
  }

  /** The binarized weights: the kernel quantizer's forward on the latent weights (eval mode, no tape). */
  private kernel(m: BinaryLinear | BinaryConv2d): Float32Array {
    const kq = m.kernelQuantizer;
    return Float32Array.from(kq ? noGrad(() => kq.apply(m.weight)).f32() : m.weight.f32());
  }

  private binaryLinear(m: BinaryLinear, path: string, x: Value): Value {
    const at = path || 'model';
    const xq = m.inputQuantizer ? this.quantize(m.inputQuantizer, join(path, 'inputQuantizer'), x) : x;
    return this.gemm(at, xq, m.inFeatures, this.kernel(m), [m.outFeatures, m.inFeatures], m.bias?.f32() ?? null);
  }

  private binaryConv(m: BinaryConv2d, path: string, x: Value): Value {
    const at = path || 'model';
    expectRank('BinaryConv2d', at, x, 4);
    let xq = m.inputQuantizer ? this.quantize(m.inputQuantizer, join(path, 'inputQuantizer'), x) : x;
    let padding = pair(m.opts.padding ?? 0);
    if (m.padValue !== 0 && (padding[0] || padding[1])) {
      // A ±1 border: pad explicitly (ONNX Conv pads with zeros only), then convolve unpadded.
      const [ph, pw] = padding;
      const pads = this.g.int64(`${at}.pads`, [0, 0, ph, pw, 0, 0, ph, pw]);
      const value = this.g.float(`${at}.padValue`, [m.padValue], []);
      const shape = [x.shape[0]!, x.shape[1]!, x.shape[2]! + 2 * ph, x.shape[3]! + 2 * pw];
      xq = { name: this.g.node('Pad', [xq.name, pads, value], at, {}), shape };
      padding = [0, 0];
    }
    return this.conv(at, xq, m.inChannels, this.kernel(m), [...m.weight.shape], m.bias?.f32() ?? null, m.opts.stride, padding, m.opts.dilation, m.opts.groups);
  }

  private add(a: Value, b: Value, at: string): Value {
    if (fmtShape(a.shape) !== fmtShape(b.shape)) throw new Error(`internal: residual shapes differ at "${at}": ${fmtShape(a.shape)} vs ${fmtShape(b.shape)}`);
    return this.same('Add', [a.name, b.name], at, a);
  }

  /** VGG-small: [conv → (pool after conv1, 3, 5) → BN → act] × 6 → flatten → fc; see models/vgg_small.ts. */
  private vggSmall(m: VggSmall, path: string, x: Value): Value {
    let y = x;
    for (let i = 0; i < 6; i++) {
      y = i === 0 ? this.module(m.conv0, join(path, 'conv0'), y) : this.module(m.convs[i - 1]!, join(path, `conv${i}`), y);
      if (i % 2 === 1) y = this.module(m.pool, join(path, `pool${i}`), y);
      y = this.module(m.bns[i]!, join(path, `bn${i}`), y);
      const a = m.acts[i];
      if (a) y = this.module(a, join(path, `act${i}`), y);
    }
    return this.module(m.fc, join(path, 'fc'), this.module(m.flatten, join(path, 'flatten'), y));
  }

  /** ReActNet-A block; the width-doubling shortcut repeats the channels (Concat [x, x]); see models/reactnet_a.ts. */
  private reactBlock(m: ReActBlock, path: string, x: Value): Value {
    const r1 = m.pool ? this.module(m.pool, join(path, 'pool'), x) : x;
    const c1 = this.module(m.bn1, join(path, 'bn1'), this.module(m.conv3x3, join(path, 'conv3x3'), x));
    const out1 = this.module(m.act1, join(path, 'act1'), this.add(c1, r1, join(path, 'add1')));
    const [N, C, H, W] = out1.shape as [number, number, number, number];
    const r2 = m.outChannels === m.inChannels ? out1 : { name: this.g.node('Concat', [out1.name, out1.name], join(path, 'repeat'), { axis: 1 }), shape: [N, 2 * C, H, W] };
    const c2 = this.module(m.bn2, join(path, 'bn2'), this.module(m.pw, join(path, 'pw'), out1));
    return this.module(m.act2, join(path, 'act2'), this.add(c2, r2, join(path, 'add2')));
  }

  /** Bi-Real / ReActNet block: act(BN(BinaryConv(x)) + downsample(x)). */
  private biReal(m: BiRealBlock, path: string, x: Value): Value {
    const r = m.downsample ? this.module(m.downsample, join(path, 'downsample'), x) : x;
    const y = this.module(m.bn, join(path, 'bn'), this.module(m.conv, join(path, 'conv'), x));
    return this.module(m.act, join(path, 'act'), this.add(y, r, path));
  }

  /** ResNet-20's two-shortcut block; see models/resnet20.ts. */
  private twoShortcut(m: TwoShortcutBlock, path: string, x: Value): Value {
    const r = m.stride === 1 && m.inChannels === m.outChannels ? x : this.shortcutA(x, m.outChannels, join(path, 'shortcut'));
    let out = this.add(this.module(m.bn1, join(path, 'bn1'), this.module(m.conv1, join(path, 'conv1'), x)), r, join(path, 'add1'));
    if (m.act1) out = this.module(m.act1, join(path, 'act1'), out);
    let y = this.add(this.module(m.bn2, join(path, 'bn2'), this.module(m.conv2, join(path, 'conv2'), out)), out, join(path, 'add2'));
    if (m.act2) y = this.module(m.act2, join(path, 'act2'), y);
    return y;
  }

  /** Option A: x[:, :, ::2, ::2] with (outC − C)/2 zero channels on each side (Slice + Pad). */
  private shortcutA(x: Value, outChannels: number, at: string): Value {
    expectRank('shortcutA', at, x, 4);
    const [N, C, H, W] = x.shape as [number, number, number, number];
    const pad = (outChannels - C) / 2;
    if (!Number.isInteger(pad) || pad < 0) fail('exportOnnx', `an input to shortcutA at "${at}" with ${outChannels} − C even and >= 0`, `shape ${fmtShape(x.shape)}`);
    const sliced = this.g.node('Slice', [
      x.name, this.g.int64(`${at}.starts`, [0, 0]), this.g.int64(`${at}.ends`, [H, W]), this.g.int64(`${at}.axes`, [2, 3]), this.g.int64(`${at}.steps`, [2, 2]),
    ], at);
    const pads = this.g.int64(`${at}.pads`, [0, pad, 0, 0, 0, pad, 0, 0]);
    return { name: this.g.node('Pad', [sliced, pads], at), shape: [N, outChannels, Math.ceil(H / 2), Math.ceil(W / 2)] };
  }
}

/** The module classes `Exporter.module` emits by their class (their forward() is mirrored there). */
const KNOWN: readonly (abstract new (...args: never[]) => Module)[] = [
  Sequential, ResNet18, BiRealBlock, TwoShortcutBlock, VggSmall, ReActNetA, ReActBlock, BinaryLinear, BinaryConv2d, Linear, Conv2d, BatchNorm1d, BatchNorm2d, ReLU,
  Hardtanh, PReLU, LearnableBias, RPReLU, Maxout, MaxPool2d, AvgPool2d, GlobalAvgPool2d, Flatten, Dropout,
];

/** A subclass of a known class that overrides forward(): exporting it as its base would be wrong. */
function overridesForward(m: Module): boolean {
  const C = KNOWN.find((K) => m instanceof K);
  return C !== undefined && m.forward !== C.prototype.forward;
}

function join(prefix: string, name: string): string {
  return prefix ? `${prefix}.${name}` : name;
}

function expectRank(what: string, at: string, x: Value, rank: number): void {
  if (x.shape.length !== rank) {
    fail('exportOnnx', `a rank-${rank} input for ${what} at "${at}"`, `shape ${fmtShape(x.shape)}`, rank === 4 ? 'Check inputShape: [N, C, H, W].' : '');
  }
}

function valueInfo(name: string, shape: number[]): InstanceType<typeof onnx.ValueInfoProto> {
  const dim = shape.map((d, i) => (i === 0 ? { dimParam: 'N' } : { dimValue: d }));
  return onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim } } } });
}

/**
 * Serialize `model` (evaluated in eval mode, whatever its current mode; the mode is restored
 * afterwards) as an ONNX ModelProto: graph input "input" of `inputShape` with a symbolic batch
 * dimension, output "output" (the model's forward output, e.g. logits [N, classes]). Emulates the
 * binary ops in float32 with standard ops (see the comment on `OnnxExportOptions`), so
 * onnxruntime's output equals onebit's eval-mode forward up to float summation order.
 * Lazily initialised quantizer state (SA-BNN τ±, ReBNN scales) is initialised by the export
 * exactly as a first forward would.
 */
export function exportOnnx(model: Module, opts: OnnxExportOptions): Uint8Array {
  const opset = opts.opset ?? 17;
  if (!Number.isInteger(opset) || opset < OPSET_MIN || opset > OPSET_MAX) fail('exportOnnx opset', `an integer in ${OPSET_MIN}..${OPSET_MAX}`, String(opts.opset));
  const shape = opts.inputShape;
  if (!Array.isArray(shape) || shape.length < 2 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    fail('exportOnnx inputShape', 'a batch-first shape of positive integers, e.g. [1, 1, 28, 28]', JSON.stringify(shape));
  }
  const metadata = opts.metadata ?? {};
  for (const [k, v] of Object.entries(metadata)) if (typeof v !== 'string') fail('exportOnnx metadata', 'string values', `${k}: ${typeof v}`, 'JSON.stringify objects first.');

  const modes = model.namedModules().map(([, m]) => [m, m.training] as const);
  model.eval();
  try {
    const ex = new Exporter();
    const input: Value = { name: ex.g.name('input'), shape: [...shape] };
    let out = ex.module(model, '', input);
    out = { name: ex.g.node('Identity', [out.name], 'output'), shape: out.shape };
    const graph = onnx.GraphProto.create({
      name: model.describe(),
      node: ex.g.nodes,
      initializer: ex.g.initializers,
      input: [valueInfo(input.name, input.shape)],
      output: [valueInfo(out.name, out.shape)],
    });
    const proto = onnx.ModelProto.create({
      irVersion: irVersionFor(opset),
      opsetImport: [{ domain: '', version: opset }],
      producerName: 'onebit',
      producerVersion: '0.1.0',
      docString: 'onebit binary network, float-emulated (binarized weights as floats; sign via GreaterOrEqual + Where)',
      graph,
      metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
    });
    return onnx.ModelProto.encode(proto).finish();
  } finally {
    for (const [m, t] of modes) m.training = t;
  }
}

/** Write `exportOnnx(model, opts)` to `file` atomically (temp file, fsync, rename). */
export function saveOnnx(file: string, model: Module, opts: OnnxExportOptions): void {
  writeFileAtomic(file, exportOnnx(model, opts));
}
