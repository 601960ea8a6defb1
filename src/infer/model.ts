import { fail, fmtShape } from '../core/errors.js';
import type { InferBackend } from './backend.js';
import { planBinaryConv2d, planBinaryDense, type BinaryConvPlan, type OutputTransform } from './binary.js';
import { attr, inferShapes, sizeOfShape, type GraphNode, type OnebitGraph, type ValueInfo } from './graph.js';
import * as k from './kernels.js';

/**
 * The inference engine: runs a validated `.onebit` graph, no autograd, on the kernels of one
 * InferBackend (native addon, WebAssembly or TypeScript). The constructor prepares every node once
 * (weights unpacked or packed for the kernels, border maps, per-channel tables); `predict` runs
 * the nodes in order, dropping each intermediate value after its last use. This file has no Node
 * built-ins (the browser build uses it); engine.ts adds the file loaders and Node's backend choice.
 */

/** One prepared node: computes its output for a batch of n from its inputs' data. */
type Step = (ins: Float32Array[], n: number, alloc: Alloc) => Float32Array;

/**
 * An output array of `length` floats for a step that overwrites every element: one freed by an
 * earlier step of the same `predict` call when one of that length is free, else a new one. Reusing
 * them saves the page faults of fresh multi-hundred-kilobyte arrays (most of a batch-1 forward's
 * elementwise time, measured).
 */
type Alloc = (length: number) => Float32Array;

/** The placeholder output of a step that was fused into its reader, and that step. */
const EMPTY = new Float32Array(0);
const EMPTY_STEP: Step = () => EMPTY;

/** Largest batch × per-sample input accepted by `predict`, in elements. */
const MAX_BATCH_ELEMENTS = 1 << 28;

export class InferenceModel {
  /** Per-sample input shape, e.g. [3, 32, 32]; `predict` takes [N, ...inputShape]. */
  readonly inputShape: readonly number[];
  /** Number of classes (length of each logits row). */
  readonly classes: number;
  readonly labels: readonly string[] | undefined;
  /** The metadata stored at export (training config, accuracy, …). */
  readonly metadata: Readonly<Record<string, unknown>>;
  /** The validated graph (for inspection). */
  readonly graph: OnebitGraph;
  private readonly infos: ValueInfo[];
  private readonly steps: Step[];
  /** For each node, the values whose last reader it is (freed after it runs). */
  private readonly frees: number[][];
  /** Each step's input values (the graph's, rewired where ops were fused). */
  private readonly inputs: number[][];
  /** The binary conv plans by node index (the fusion pass asks them for `runSigned`). */
  private readonly convPlans = new Map<number, BinaryConvPlan>();
  /** The kernels this model runs on. */
  readonly backend: InferBackend;
  /**
   * Bytes: `fileBytes`, the `.onebit` file (null when built from a graph); `floatBytes`, the same
   * parameters as float32 (every binary weight as 4 bytes, every other tensor at 4 bytes a value).
   */
  readonly size: { readonly fileBytes: number | null; readonly floatBytes: number };

  /** A model for a validated graph on the kernels `be`; `fileBytes` is the size of the file it came from. */
  constructor(graph: OnebitGraph, source: string, be: InferBackend, fileBytes: number | null = null) {
    this.backend = be;
    this.infos = inferShapes(graph, source);
    this.size = Object.freeze({ fileBytes, floatBytes: floatBytesOf(graph, this.infos) });
    this.graph = graph;
    this.inputShape = Object.freeze([...graph.inputShape]);
    this.classes = graph.classes;
    this.labels = graph.labels ? Object.freeze([...graph.labels]) : undefined;
    this.metadata = Object.freeze({ ...graph.metadata });
    this.steps = graph.nodes.map((n, i) => prepare(be, graph.metadata.exact, n, this.infos[n.inputs[0]!]!, this.infos[i + 1]!, (plan) => this.convPlans.set(i, plan)));
    // Fusion: a `sign` whose only reader is a binary conv that can binarize on entry is skipped;
    // the conv reads the sign's float input with its thresholds (no ±1 array in between).
    this.inputs = graph.nodes.map((n) => [...n.inputs]);
    const readers = new Array<number>(graph.nodes.length + 1).fill(0);
    graph.nodes.forEach((n) => n.inputs.forEach((v) => readers[v]!++));
    // withResidual[j]: binary conv j's step with a residual added in its epilogue (when its plan can).
    const withResidual = new Map<number, (ins: Float32Array[], n: number, alloc: Alloc, r: Float32Array) => Float32Array>();
    const signFused = new Map<number, Float32Array>(); // binary conv → thresholds of the sign fused into it
    const actFused = new Set<number>(); // channel_acts run in a binary conv's epilogue
    this.convPlans.forEach((plan, j) => { if (plan.residual) withResidual.set(j, ([a], b, alloc, r) => plan.run(a!, b, alloc, r)); });
    graph.nodes.forEach((n, j) => {
      const v = n.inputs[0]!, i = v - 1, src = i >= 0 ? graph.nodes[i]! : null;
      if (n.op !== 'binary_conv2d' || !src || src.op !== 'sign' || readers[v] !== 1 || v === graph.output) return;
      const plan = this.convPlans.get(j);
      if (!plan?.runSigned) return;
      const thr = attr.f32(src, 'thr')!, runSigned = plan.runSigned;
      this.steps[i] = EMPTY_STEP;
      this.inputs[i] = [];
      this.steps[j] = ([a], b, alloc) => runSigned(a!, b, thr, alloc);
      signFused.set(j, thr);
      if (plan.residual) withResidual.set(j, ([a], b, alloc, r) => runSigned(a!, b, thr, alloc, r));
      this.inputs[j] = [src.inputs[0]!];
    });
    // Fusion: binary conv → add → channel_act, each the only reader of the one before, in the conv's
    // epilogue when its kernel takes an activation (the native one): y = act((D·mul + bias) + r).
    graph.nodes.forEach((n, j) => {
      const a = n.inputs[0]!, ai = a - 1, add = ai >= 0 ? graph.nodes[ai]! : null;
      if (n.op !== 'channel_act' || !add || add.op !== 'add' || readers[a] !== 1 || a === graph.output) return;
      for (const side of [0, 1]) {
        const v = this.inputs[ai]![side]!, r = this.inputs[ai]![1 - side]!, ci = v - 1;
        const plan = this.convPlans.get(ci);
        if (!plan?.act || readers[v] !== 1 || v === graph.output || this.steps[ci] === EMPTY_STEP) continue;
        const f = (key: string) => attr.f32(n, key);
        const act = { b0: f('b0') ?? null, pos: f('pos') ?? null, neg: f('neg')!, b1: f('b1') ?? null };
        const convIns = this.inputs[ci]!, thr = signFused.get(ci);
        this.steps[j] = thr
          ? (ins, b, alloc) => plan.runSigned!(ins[0]!, b, thr, alloc, ins[1]!, act)
          : (ins, b, alloc) => plan.run(ins[0]!, b, alloc, ins[1]!, act);
        this.inputs[j] = [convIns[0]!, r];
        this.steps[ci] = EMPTY_STEP;
        this.steps[ai] = EMPTY_STEP;
        this.inputs[ci] = [];
        this.inputs[ai] = [];
        actFused.add(j);
        return;
      }
    });
    // Fusion: an `add` whose only reader is a `channel_act` runs inside it (one pass, no sum array).
    graph.nodes.forEach((n, j) => {
      const v = n.inputs[0]!, i = v - 1, src = i >= 0 ? graph.nodes[i]! : null;
      if (n.op !== 'channel_act' || !src || src.op !== 'add' || readers[v] !== 1 || v === graph.output || actFused.has(j)) return;
      const f = (key: string) => attr.f32(n, key);
      const s = this.infos[v]!.shape, b0 = f('b0'), pos = f('pos'), neg = f('neg')!, b1 = f('b1');
      this.steps[i] = EMPTY_STEP;
      this.steps[j] = ([a, r], b, alloc) => k.channelAct(be, a!, b, s, b0, pos, neg, b1, r!, alloc);
      this.inputs[j] = [...this.inputs[i]!];
      this.inputs[i] = [];
    });
    // Fusion: an `add` of a binary conv's float output (read by nothing else) and a residual runs
    // in the conv's epilogue, y = (D·mul + bias) + r with the same float32 roundings as the two ops.
    graph.nodes.forEach((n, j) => {
      if (n.op !== 'add' || this.steps[j] === EMPTY_STEP) return;
      for (const side of [0, 1]) {
        const v = this.inputs[j]![side]!, r = this.inputs[j]![1 - side]!, i = v - 1;
        const fused = withResidual.get(i);
        if (!fused || readers[v] !== 1 || v === graph.output || this.steps[i] === EMPTY_STEP) continue;
        const convIns = this.inputs[i]!;
        this.steps[j] = (ins, b, alloc) => fused(ins.slice(0, convIns.length), b, alloc, ins[convIns.length]!);
        this.steps[i] = EMPTY_STEP;
        this.inputs[j] = [...convIns, r];
        this.inputs[i] = [];
        return;
      }
    });
    const last = new Array<number>(graph.nodes.length + 1).fill(-1);
    this.inputs.forEach((ins, i) => ins.forEach((v) => (last[v] = i)));
    last[graph.output] = graph.nodes.length;
    this.frees = graph.nodes.map(() => []);
    last.forEach((at, v) => { if (at >= 0 && at < graph.nodes.length) this.frees[at]!.push(v); });
  }

  /**
   * Logits for a batch: `input` holds N samples in row-major order (NCHW for images), `shape` is
   * [N, ...inputShape] (default: N inferred from the length). Returns a Float32Array [N, classes].
   */
  predict(input: Float32Array, shape?: readonly number[]): Float32Array {
    const per = sizeOfShape(this.inputShape);
    if (!(input instanceof Float32Array)) fail('predict', 'input as a Float32Array', input === null ? 'null' : typeof input === 'object' ? (input as object).constructor.name : typeof input, 'Convert it with Float32Array.from(...).');
    const want = `[N, ${this.inputShape.join(', ')}]`;
    if (shape) {
      if (!Array.isArray(shape) || shape.length !== this.inputShape.length + 1 || shape.slice(1).some((d, i) => d !== this.inputShape[i]) || !Number.isInteger(shape[0]) || shape[0]! < 1) {
        fail('predict', `an input shape ${want}`, Array.isArray(shape) ? fmtShape(shape) : String(shape), shape.length === this.inputShape.length ? 'Add a batch dimension.' : '');
      }
      if (input.length !== sizeOfShape(shape)) fail('predict', `${sizeOfShape(shape)} values for shape ${fmtShape(shape)}`, `${input.length}`);
    } else if (input.length === 0 || input.length % per) {
      fail('predict', `a multiple of ${per} values (input ${want})`, `${input.length}`);
    }
    if (input.length > MAX_BATCH_ELEMENTS) fail('predict', `at most ${MAX_BATCH_ELEMENTS} input values per call`, `${input.length}`, 'Split the batch.');
    const n = input.length / per;
    const values: (Float32Array | null)[] = new Array(this.steps.length + 1).fill(null);
    // Arrays freed by earlier steps, by length (never the caller's input, never the returned logits).
    const pool = new Map<number, Float32Array[]>();
    const alloc: Alloc = (length) => pool.get(length)?.pop() ?? new Float32Array(length);
    values[0] = input;
    for (let i = 0; i < this.steps.length; i++) {
      const node = this.graph.nodes[i]!;
      values[i + 1] = this.steps[i]!(this.inputs[i]!.map((v) => values[v]!), n, alloc);
      for (const v of this.frees[i]!) {
        if (v === this.graph.output) continue;
        const a = values[v];
        values[v] = null;
        // Only arrays nothing else still holds (flatten passes its input through): not the caller's
        // input, not another live value.
        if (a && a.length && a !== input && !values.includes(a)) (pool.get(a.length) ?? pool.set(a.length, []).get(a.length)!).push(a);
      }
    }
    return values[this.graph.output]!;
  }

  /** Top-1 class index per sample (first maximum on ties). */
  classify(input: Float32Array, shape?: readonly number[]): Int32Array {
    const y = this.predict(input, shape), C = this.classes, n = y.length / C;
    const out = new Int32Array(n);
    for (let r = 0; r < n; r++) {
      let best = 0;
      for (let c = 1; c < C; c++) if (y[r * C + c]! > y[r * C + best]!) best = c;
      out[r] = best;
    }
    return out;
  }
}

/** 4 bytes for every parameter of the graph, binary weights counted by their logical (unpacked) size. */
function floatBytesOf(graph: OnebitGraph, infos: ValueInfo[]): number {
  let values = 0;
  for (const n of graph.nodes) {
    for (const [key, v] of Object.entries(n.attrs)) {
      if (typeof v === 'number' || Array.isArray(v)) continue;
      if ((n.op === 'binary_conv2d' || n.op === 'binary_dense') && key === 'weight') {
        const C = infos[n.inputs[0]!]!.shape[0]!;
        const [kh, kw] = n.op === 'binary_conv2d' ? attr.ints(n, 'kernel') : [1, 1];
        values += v.shape[0]! * (C / (n.op === 'binary_conv2d' ? attr.int(n, 'groups') : 1)) * kh * kw;
      } else {
        values += v.data.length;
      }
    }
  }
  return 4 * values;
}

/** Compile one node into a step (everything weight-dependent is computed here, once). */
function prepare(be: InferBackend, graphExact: unknown, node: GraphNode, x: ValueInfo, out: ValueInfo, onConvPlan: (plan: BinaryConvPlan) => void): Step {
  const f = (key: string) => attr.f32(node, key);
  const s = x.shape;
  switch (node.op) {
    case 'conv2d': {
      const w = attr.tensor(node, 'weight')!;
      const args = [attr.ints(node, 'stride'), attr.ints(node, 'padding'), attr.ints(node, 'dilation'), attr.int(node, 'groups'), attr.float(node, 'padValue') ?? 0] as const;
      const [stride, padding, dilation, groups, padValue] = args;
      // An `exact` export (metadata.exact) runs its float convs on the training backend's kernel, so
      // it equals the training graph bit for bit; other graphs use the prepared conv, whose float32
      // sums are in a fixed order on every backend (native and WebAssembly give identical results).
      const prep = padValue === 0 && graphExact !== true ? be.prepareConv2d?.(w.data as Float32Array, w.shape, s as [number, number, number], { stride, padding, dilation, groups }, f('bias') ?? null) : null;
      const len = sizeOfShape(out.shape);
      if (prep) return ([a], n, alloc) => prep.run(a!, n, alloc(n * len));
      return ([a], n) => k.conv2d(be, a!, n, s, w.data as Float32Array, w.shape, f('bias'), ...args);
    }
    case 'dense': {
      const w = attr.tensor(node, 'weight')!;
      return ([a], n) => k.dense(be, a!, n, w.data as Float32Array, w.shape, f('bias'));
    }
    case 'scale_bias':
      return ([a], n, alloc) => k.scaleBias(a!, n, s, f('scale')!, f('bias')!, alloc);
    case 'batch_norm':
      return ([a], n) => k.batchNorm(be, a!, n, s, f('mean')!, f('invStd')!, f('gamma')!, f('beta')!);
    case 'channel_act':
      return ([a], n, alloc) => k.channelAct(be, a!, n, s, f('b0'), f('pos'), f('neg')!, f('b1'), undefined, alloc);
    case 'clamp': {
      const lo = attr.float(node, 'lo') ?? -Infinity, hi = attr.float(node, 'hi') ?? Infinity;
      return ([a], _n, alloc) => k.clamp(a!, lo, hi, alloc);
    }
    case 'add':
      return ([a, b], _n, alloc) => k.add(a!, b!, alloc);
    case 'shortcut_a':
      return ([a], n) => k.shortcutA(a!, n, s, attr.int(node, 'outChannels'));
    case 'repeat_channels':
      return ([a], n) => k.repeatChannels(a!, n, s);
    case 'max_pool2d':
      return ([a], n) => k.maxPool2d(be, a!, n, s, attr.ints(node, 'kernel'), attr.ints(node, 'stride'), attr.ints(node, 'padding'));
    case 'avg_pool2d':
      return ([a], n) => k.avgPool2d(be, a!, n, s, attr.ints(node, 'kernel'), attr.ints(node, 'stride'), attr.ints(node, 'padding'));
    case 'global_avg_pool':
      return ([a], n) => k.globalAvgPool(be, a!, n, s);
    case 'flatten':
      return ([a]) => a!;
    case 'sign':
      return ([a], n, alloc) => k.sign(a!, n, s, f('thr')!, alloc);
    case 'levels':
      return ([a], n, alloc) => k.levels(a!, n, s, f('thr')!, f('lo')!, f('hi')!, alloc);
    case 'binary_conv2d': {
      const [kh, kw] = attr.ints(node, 'kernel');
      const plan = planBinaryConv2d(
        { C: s[0]!, H: s[1]!, W: s[2]!, Cout: out.shape[0]!, kh, kw, stride: attr.ints(node, 'stride'), padding: attr.ints(node, 'padding'),
          dilation: attr.ints(node, 'dilation'), groups: attr.int(node, 'groups'), pad: attr.float(node, 'pad')! },
        attr.tensor(node, 'weight')!.data as Uint32Array, transformOf(node), be,
      );
      onConvPlan(plan);
      return ([a], n, alloc) => plan.run(a!, n, alloc);
    }
    case 'binary_dense': {
      const plan = planBinaryDense(s[0]!, out.shape[0]!, attr.tensor(node, 'weight')!.data as Uint32Array, transformOf(node), be);
      return ([a], n) => plan.run(a!, n);
    }
  }
}

function transformOf(node: GraphNode): OutputTransform {
  const f = (key: string) => attr.f32(node, key);
  const dir = attr.tensor(node, 'dir')?.data as Int8Array | undefined;
  return { mul: f('mul')!, bias: f('bias')!, tmul: f('tmul'), thr: f('thr'), dir };
}

