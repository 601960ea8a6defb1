import { fail, fmtShape } from '../core/errors.js';

/**
 * The inference graph of a `.onebit` model: its tensors, its nodes and every op's attributes and
 * shape rule. This file is the op table of the format (docs/onebit-format.md describes the same
 * ops in words); the exporter builds graphs of these ops, the loader validates them with
 * `inferShapes`, the engine (infer/engine.ts) runs them.
 *
 * Values: value 0 is the graph input, node i produces value i + 1, and a node may only read values
 * produced before it (so a graph is a DAG in topological order by construction). Shapes are per
 * sample (no batch axis): [C, H, W] images or [F] vectors; the batch size is chosen at `predict`.
 * A value is either "float" (float32) or "binary" (one ±1 per element, the sign convention of
 * core/backend.ts: +1 where the producer's condition holds).
 */

export type DTypeName = 'f32' | 'u32' | 'i8';
export type TypedData = Float32Array | Uint32Array | Int8Array;

/** A constant tensor of the graph (weights, per-channel parameters). */
export interface GraphTensor {
  dtype: DTypeName;
  shape: number[];
  data: TypedData;
}

export type AttrValue = number | number[] | GraphTensor;

export interface GraphNode {
  op: OpName;
  /** Value indices (0 = graph input, i + 1 = output of node i). */
  inputs: number[];
  attrs: Record<string, AttrValue>;
  /** Where it came from (the module path), for error messages. */
  name?: string;
}

export interface OnebitGraph {
  /** Per-sample input shape, e.g. [3, 32, 32] or [784]. */
  inputShape: number[];
  classes: number;
  /** Class names (optional; length = classes). */
  labels?: string[];
  /** Free-form JSON object (training config, accuracy, …). */
  metadata: Record<string, unknown>;
  nodes: GraphNode[];
  /** The value holding the logits, float [classes]. */
  output: number;
}

export interface ValueInfo {
  kind: 'float' | 'binary';
  shape: number[];
}

export const DTYPE_BYTES: Readonly<Record<DTypeName, number>> = { f32: 4, u32: 4, i8: 1 };

/** Limits a loaded graph must respect (hostile files fail here instead of allocating). */
export const LIMITS = {
  maxNodes: 1 << 16,
  maxRank: 4,
  /** Elements of one per-sample value. */
  maxValueElements: 1 << 26,
  /** Elements of all per-sample values alive at once (the engine's peak), and of load-time tables. */
  maxLiveElements: 1 << 27,
  /** Elements of the tables the engine builds at load time, over all nodes (unpacked ±1 weights, border maps). */
  maxLoadElements: 1 << 27,
  /** Spatial attributes (stride, padding, dilation, kernel). */
  maxSpatial: 1 << 12,
} as const;

type AttrSpec =
  | { kind: 'int'; min: number; max: number; optional?: boolean }
  | { kind: 'ints'; len: number; min: number; max: number; optional?: boolean }
  | { kind: 'float'; optional?: boolean; maxAbs?: number }
  | { kind: 'tensor'; dtype: DTypeName; optional?: boolean };

const S = LIMITS.maxSpatial;
const pair = (min: number, optional = false): AttrSpec => ({ kind: 'ints', len: 2, min, max: S, optional });
const f32t = (optional = false): AttrSpec => ({ kind: 'tensor', dtype: 'f32', optional });

/** Every op: its number of inputs and its attributes (name → type). */
export const OPS = {
  conv2d: {
    inputs: 1,
    attrs: { weight: f32t(), bias: f32t(true), stride: pair(1), padding: pair(0), dilation: pair(1), groups: { kind: 'int', min: 1, max: 1 << 20 }, padValue: { kind: 'float', optional: true } },
  },
  dense: { inputs: 1, attrs: { weight: f32t(), bias: f32t(true) } },
  scale_bias: { inputs: 1, attrs: { scale: f32t(), bias: f32t() } },
  batch_norm: { inputs: 1, attrs: { mean: f32t(), invStd: f32t(), gamma: f32t(), beta: f32t() } },
  channel_act: { inputs: 1, attrs: { b0: f32t(true), pos: f32t(true), neg: f32t(), b1: f32t(true) } },
  clamp: { inputs: 1, attrs: { lo: { kind: 'float', optional: true }, hi: { kind: 'float', optional: true } } },
  add: { inputs: 2, attrs: {} },
  shortcut_a: { inputs: 1, attrs: { outChannels: { kind: 'int', min: 1, max: 1 << 20 } } },
  repeat_channels: { inputs: 1, attrs: {} },
  max_pool2d: { inputs: 1, attrs: { kernel: pair(1), stride: pair(1), padding: pair(0) } },
  avg_pool2d: { inputs: 1, attrs: { kernel: pair(1), stride: pair(1), padding: pair(0) } },
  global_avg_pool: { inputs: 1, attrs: {} },
  flatten: { inputs: 1, attrs: {} },
  sign: { inputs: 1, attrs: { thr: f32t() } },
  levels: { inputs: 1, attrs: { thr: f32t(), lo: f32t(), hi: f32t() } },
  binary_conv2d: {
    inputs: 1,
    attrs: {
      weight: { kind: 'tensor', dtype: 'u32' }, kernel: pair(1), stride: pair(1), padding: pair(0), dilation: pair(1),
      groups: { kind: 'int', min: 1, max: 1 << 20 }, pad: { kind: 'float', maxAbs: 1 << 24 },
      mul: f32t(), bias: f32t(), tmul: f32t(true),
      thr: f32t(true), dir: { kind: 'tensor', dtype: 'i8', optional: true },
    },
  },
  binary_dense: {
    inputs: 1,
    attrs: { weight: { kind: 'tensor', dtype: 'u32' }, mul: f32t(), bias: f32t(), tmul: f32t(true), thr: f32t(true), dir: { kind: 'tensor', dtype: 'i8', optional: true } },
  },
} as const satisfies Record<string, { inputs: number; attrs: Record<string, AttrSpec> }>;

export type OpName = keyof typeof OPS;

export function isOpName(op: unknown): op is OpName {
  return typeof op === 'string' && Object.hasOwn(OPS, op);
}

/** The attribute table of an op (name → spec). */
export function attrSpecs(op: OpName): Readonly<Record<string, AttrSpec>> {
  return OPS[op].attrs as Readonly<Record<string, AttrSpec>>;
}

/** Words of 32 bits that hold k bits. */
export const wordsFor = (k: number): number => Math.ceil(k / 32);

export const sizeOfShape = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);

/** Output size of a window op along one axis (floor mode). */
export function windowOut(n: number, k: number, s: number, p: number, d = 1): number {
  return Math.floor((n + 2 * p - d * (k - 1) - 1) / s) + 1;
}

/** Typed attribute readers (the graph was validated: they never fail on a loaded graph). */
export const attr = {
  int(n: GraphNode, k: string, dflt?: number): number {
    const v = n.attrs[k];
    if (v === undefined && dflt !== undefined) return dflt;
    return v as number;
  },
  ints(n: GraphNode, k: string): [number, number] {
    return n.attrs[k] as [number, number];
  },
  float(n: GraphNode, k: string): number | undefined {
    return n.attrs[k] as number | undefined;
  },
  tensor(n: GraphNode, k: string): GraphTensor | undefined {
    return n.attrs[k] as GraphTensor | undefined;
  },
  f32(n: GraphNode, k: string): Float32Array | undefined {
    return (n.attrs[k] as GraphTensor | undefined)?.data as Float32Array | undefined;
  },
};

/**
 * Check one node's attribute types against its op's table (unknown, missing, ill-typed or
 * out-of-range attributes fail). `where` names the node in errors.
 */
export function checkAttrs(node: GraphNode, where: string): void {
  const specs = attrSpecs(node.op);
  for (const k of Object.keys(node.attrs)) if (!Object.hasOwn(specs, k)) fail(where, `attributes of ${node.op} (${Object.keys(specs).join(', ') || 'none'})`, `unknown attribute ${JSON.stringify(k)}`);
  for (const [k, spec] of Object.entries(specs)) {
    const v = node.attrs[k];
    if (v === undefined) {
      if (!spec.optional) fail(where, `attribute ${JSON.stringify(k)}`, 'none');
      continue;
    }
    const ok =
      spec.kind === 'int' ? Number.isInteger(v) && (v as number) >= spec.min && (v as number) <= spec.max
      : spec.kind === 'ints' ? Array.isArray(v) && v.length === spec.len && v.every((d) => Number.isInteger(d) && d >= spec.min && d <= spec.max)
      : spec.kind === 'float' ? typeof v === 'number' && Number.isFinite(v) && Math.abs(v) <= (spec.maxAbs ?? Infinity)
      : typeof v === 'object' && !Array.isArray(v) && (v as GraphTensor).dtype === spec.dtype;
    if (!ok) {
      const want = spec.kind === 'int' ? `an integer in [${spec.min}, ${spec.max}]`
        : spec.kind === 'ints' ? `${spec.len} integers in [${spec.min}, ${spec.max}]`
        : spec.kind === 'float' ? (spec.maxAbs ? `a number in [-${spec.maxAbs}, ${spec.maxAbs}]` : 'a finite number') : `a ${spec.dtype} tensor`;
      fail(`${where} attribute ${JSON.stringify(k)}`, want, describe(v));
    }
  }
}

function describe(v: unknown): string {
  if (v && typeof v === 'object' && 'dtype' in v) return `a ${(v as GraphTensor).dtype} tensor of shape ${fmtShape((v as GraphTensor).shape)}`;
  return JSON.stringify(v)?.slice(0, 80) ?? String(v);
}

/** A per-channel tensor attribute must be [C]. */
function perChannel(node: GraphNode, where: string, k: string, C: number): void {
  const t = attr.tensor(node, k);
  if (t && !(t.shape.length === 1 && t.shape[0] === C)) fail(`${where} attribute ${JSON.stringify(k)}`, `shape [${C}]`, fmtShape(t.shape));
}

function expect(where: string, x: ValueInfo, kind: ValueInfo['kind'], ranks: number[]): void {
  if (x.kind !== kind || !ranks.includes(x.shape.length)) {
    fail(where, `a ${kind} input of rank ${ranks.join(' or ')}`, `a ${x.kind} input of shape ${fmtShape(x.shape)}`);
  }
}

function window2d(where: string, x: number[], k: [number, number], s: [number, number], p: [number, number], d: [number, number]): [number, number] {
  const ho = windowOut(x[1]!, k[0], s[0], p[0], d[0]), wo = windowOut(x[2]!, k[1], s[1], p[1], d[1]);
  if (ho < 1 || wo < 1) fail(where, `a ${k.join('x')} window that fits the padded ${x[1]}x${x[2]} input`, `output ${ho}x${wo}`);
  return [ho, wo];
}

/** Output of one node from its inputs' infos; checks every shape the op relies on. */
export function inferNode(node: GraphNode, ins: ValueInfo[], where: string): ValueInfo {
  checkAttrs(node, where);
  const x = ins[0]!;
  const C = x.shape[0]!;
  switch (node.op) {
    case 'conv2d': {
      expect(where, x, 'float', [3]);
      const w = attr.tensor(node, 'weight')!, g = attr.int(node, 'groups');
      const [co, cg, kh, kw] = w.shape as [number, number, number, number];
      if (w.shape.length !== 4 || C % g || co % g || cg * g !== C) fail(`${where} weight`, `shape [Cout, ${C}/${g}, kh, kw] with Cout divisible by groups ${g}`, fmtShape(w.shape));
      if (kh > S || kw > S) fail(`${where} weight`, `a kernel of at most ${S}x${S}`, fmtShape(w.shape));
      perChannel(node, where, 'bias', co);
      const [ho, wo] = window2d(where, x.shape, [kh, kw], attr.ints(node, 'stride'), attr.ints(node, 'padding'), attr.ints(node, 'dilation'));
      return { kind: 'float', shape: [co, ho, wo] };
    }
    case 'dense': {
      expect(where, x, 'float', [1]);
      const w = attr.tensor(node, 'weight')!;
      if (w.shape.length !== 2 || w.shape[1] !== C) fail(`${where} weight`, `shape [O, ${C}]`, fmtShape(w.shape));
      perChannel(node, where, 'bias', w.shape[0]!);
      return { kind: 'float', shape: [w.shape[0]!] };
    }
    case 'scale_bias':
    case 'batch_norm':
    case 'channel_act':
    case 'levels':
    case 'sign':
      expect(where, x, 'float', [1, 3]);
      for (const k of Object.keys(attrSpecs(node.op))) perChannel(node, where, k, C);
      return { kind: node.op === 'sign' ? 'binary' : 'float', shape: x.shape };
    case 'clamp': {
      expect(where, x, 'float', [1, 3]);
      const lo = attr.float(node, 'lo') ?? -Infinity, hi = attr.float(node, 'hi') ?? Infinity;
      if (!(lo <= hi)) fail(`${where} attributes lo, hi`, 'lo <= hi', `lo=${lo}, hi=${hi}`);
      return x;
    }
    case 'add': {
      const y = ins[1]!;
      expect(where, x, 'float', [1, 3]);
      if (y.kind !== 'float' || fmtShape(y.shape) !== fmtShape(x.shape)) fail(where, `two float inputs of shape ${fmtShape(x.shape)}`, `a ${y.kind} second input of shape ${fmtShape(y.shape)}`);
      return x;
    }
    case 'shortcut_a': {
      expect(where, x, 'float', [3]);
      const co = attr.int(node, 'outChannels');
      if (co < C || (co - C) % 2) fail(`${where} outChannels`, `>= ${C} with an even difference`, String(co));
      return { kind: 'float', shape: [co, Math.ceil(x.shape[1]! / 2), Math.ceil(x.shape[2]! / 2)] };
    }
    case 'repeat_channels':
      expect(where, x, 'float', [3]);
      return { kind: 'float', shape: [2 * C, x.shape[1]!, x.shape[2]!] };
    case 'max_pool2d':
    case 'avg_pool2d': {
      expect(where, x, 'float', [3]);
      const k = attr.ints(node, 'kernel'), p = attr.ints(node, 'padding');
      if (2 * p[0] > k[0] || 2 * p[1] > k[1]) fail(`${where} padding`, `at most half the kernel ${k.join('x')}`, p.join('x'));
      return { kind: 'float', shape: [C, ...window2d(where, x.shape, k, attr.ints(node, 'stride'), p, [1, 1])] };
    }
    case 'global_avg_pool':
      expect(where, x, 'float', [3]);
      return { kind: 'float', shape: [C] };
    case 'flatten':
      expect(where, x, 'float', [1, 3]);
      return { kind: 'float', shape: [sizeOfShape(x.shape)] };
    case 'binary_conv2d': {
      expect(where, x, 'binary', [3]);
      const [kh, kw] = attr.ints(node, 'kernel'), g = attr.int(node, 'groups');
      const w = attr.tensor(node, 'weight')!;
      const co = w.shape[0]!;
      if (C % g) fail(`${where} groups`, `a divisor of the ${C} input channels`, String(g));
      const K = (C / g) * kh * kw;
      if (w.shape.length !== 2 || co % g || w.shape[1] !== wordsFor(K)) fail(`${where} weight`, `shape [Cout, ${wordsFor(K)}] (${K} bits per row) with Cout divisible by ${g}`, fmtShape(w.shape));
      checkTailBits(where, w.data as Uint32Array, co, K);
      binaryOutput(node, where, co);
      return { kind: attr.tensor(node, 'thr') ? 'binary' : 'float', shape: [co, ...window2d(where, x.shape, [kh, kw], attr.ints(node, 'stride'), attr.ints(node, 'padding'), attr.ints(node, 'dilation'))] };
    }
    case 'binary_dense': {
      expect(where, x, 'binary', [1]);
      const w = attr.tensor(node, 'weight')!;
      if (w.shape.length !== 2 || w.shape[1] !== wordsFor(C)) fail(`${where} weight`, `shape [O, ${wordsFor(C)}] (${C} bits per row)`, fmtShape(w.shape));
      checkTailBits(where, w.data as Uint32Array, w.shape[0]!, C);
      binaryOutput(node, where, w.shape[0]!);
      return { kind: attr.tensor(node, 'thr') ? 'binary' : 'float', shape: [w.shape[0]!] };
    }
  }
}

/** Per-channel output transform of a binary op; thr and dir come together, dir is ±1. */
function binaryOutput(node: GraphNode, where: string, co: number): void {
  for (const k of ['mul', 'bias', 'tmul', 'thr', 'dir']) perChannel(node, where, k, co);
  const thr = attr.tensor(node, 'thr'), dir = attr.tensor(node, 'dir');
  if (!thr !== !dir) fail(where, 'attributes thr and dir together (binary output) or neither (float output)', thr ? 'thr only' : 'dir only');
  if (dir && !(dir.data as Int8Array).every((d) => d === 1 || d === -1)) fail(`${where} attribute "dir"`, 'values +1 or -1', 'other values');
  for (const k of ['mul', 'bias', 'tmul']) {
    const t = attr.f32(node, k);
    if (t && !t.every(Number.isFinite)) fail(`${where} attribute ${JSON.stringify(k)}`, 'finite values', 'NaN or infinity');
  }
  if (thr && (thr.data as Float32Array).some(Number.isNaN)) fail(`${where} attribute "thr"`, 'no NaN', 'NaN');
}

/**
 * Elements the engine precomputes for a node at load time (infer/bconv.ts, infer/binary.ts), an
 * upper bound: the weights in the kernel's layout (≤ Cout·K, the reference kernel's ±1 floats), the
 * tap table (P·taps) and two border maps (Cout·P).
 */
export function loadTableElements(n: GraphNode, out: ValueInfo): number {
  if (n.op !== 'binary_conv2d') return 0;
  const w = attr.tensor(n, 'weight')!, [kh, kw] = attr.ints(n, 'kernel');
  const co = w.shape[0]!, plane = out.shape[1]! * out.shape[2]!;
  return co * w.shape[1]! * 32 + plane * kh * kw + 2 * co * plane;
}

/** The unused high bits of each packed row must be 0 (one canonical encoding per weight). */
function checkTailBits(where: string, w: Uint32Array, rows: number, k: number): void {
  const words = wordsFor(k), tail = k % 32;
  if (!tail) return;
  const mask = ~((1 << tail) - 1) >>> 0;
  for (let r = 0; r < rows; r++) if ((w[r * words + words - 1]! & mask) !== 0) fail(`${where} weight`, `zero padding bits after bit ${k} of each row`, `set bits in row ${r}`);
}

/**
 * Shape inference over the whole graph: validates every node (inputs exist and come earlier,
 * attributes, shapes), the output, and the memory the engine will need. Returns the info of every
 * value (index 0 = input).
 */
export function inferShapes(g: OnebitGraph, source = 'model'): ValueInfo[] {
  if (!Array.isArray(g.inputShape) || g.inputShape.length < 1 || g.inputShape.length > 3 || g.inputShape.length === 2 ||
    !g.inputShape.every((d) => Number.isInteger(d) && d >= 1 && d <= 1 << 20) || sizeOfShape(g.inputShape) > LIMITS.maxValueElements) {
    fail(`${source}: input shape`, `[C, H, W] or [F] of positive integers with at most ${LIMITS.maxValueElements} elements`, JSON.stringify(g.inputShape)?.slice(0, 80) ?? '?');
  }
  if (g.nodes.length < 1 || g.nodes.length > LIMITS.maxNodes) fail(`${source}: graph`, `1 to ${LIMITS.maxNodes} nodes`, `${g.nodes.length}`);
  const infos: ValueInfo[] = [{ kind: 'float', shape: [...g.inputShape] }];
  const lastUse = new Array<number>(g.nodes.length + 1).fill(-1);
  let loadElements = 0;
  g.nodes.forEach((n, i) => {
    const where = `${source}: node ${i} (${n.op}${n.name ? ` "${n.name}"` : ''})`;
    if (!isOpName(n.op)) fail(`${source}: node ${i}`, `an op among ${Object.keys(OPS).join(', ')}`, JSON.stringify(n.op));
    const want = OPS[n.op].inputs;
    if (!Array.isArray(n.inputs) || n.inputs.length !== want) fail(where, `${want} input(s)`, `${Array.isArray(n.inputs) ? n.inputs.length : 'no list'}`);
    for (const v of n.inputs) {
      if (!Number.isInteger(v) || v < 0 || v > i) fail(where, `input value indices in [0, ${i}] (values produced before this node)`, JSON.stringify(v), 'The graph must be acyclic and in topological order.');
      lastUse[v] = i;
    }
    const out = inferNode(n, n.inputs.map((v) => infos[v]!), where);
    if (sizeOfShape(out.shape) > LIMITS.maxValueElements) fail(where, `an output of at most ${LIMITS.maxValueElements} elements per sample`, fmtShape(out.shape));
    infos.push(out);
    loadElements += loadTableElements(n, out);
    if (loadElements > LIMITS.maxLoadElements) fail(where, `load-time tables of at most ${LIMITS.maxLoadElements} elements in all`, `${loadElements} so far`);
  });
  if (!Number.isInteger(g.output) || g.output < 1 || g.output > g.nodes.length) fail(`${source}: output`, `a value index in [1, ${g.nodes.length}]`, JSON.stringify(g.output));
  const o = infos[g.output]!;
  if (o.kind !== 'float' || o.shape.length !== 1 || o.shape[0] !== g.classes) fail(`${source}: output`, `float logits [${g.classes}] (classes)`, `a ${o.kind} value of shape ${fmtShape(o.shape)}`);
  if (g.labels && (g.labels.length !== g.classes || !g.labels.every((l) => typeof l === 'string'))) fail(`${source}: labels`, `${g.classes} strings`, `${g.labels.length} entries`);
  // Peak of the per-sample values alive at once while the engine runs the nodes in order.
  lastUse[g.output] = g.nodes.length;
  const dying: number[][] = g.nodes.map(() => []);
  lastUse.forEach((u, v) => {
    const at = u < 0 ? Math.max(0, v - 1) : u; // an unused value dies right after it is made
    if (at < g.nodes.length) dying[at]!.push(v);
  });
  let live = sizeOfShape(g.inputShape), peak = live;
  g.nodes.forEach((_, i) => {
    live += sizeOfShape(infos[i + 1]!.shape);
    peak = Math.max(peak, live);
    for (const v of dying[i]!) live -= sizeOfShape(infos[v]!.shape);
  });
  if (peak > LIMITS.maxLiveElements) fail(`${source}: graph`, `at most ${LIMITS.maxLiveElements} live activation elements per sample`, `${peak}`);
  return infos;
}
