import { attr, inferNode, type AttrValue, type GraphNode, type GraphTensor, type OpName, type ValueInfo } from './graph.js';

/**
 * Rewrites of an inference graph under construction, used by the exporter (src/deploy/export.ts):
 * folding per-channel scale/bias into the op before (or the dense layer after) it, and threshold
 * fusion (binary op → monotone per-channel chain → sign becomes one binary op with per-channel
 * thresholds, Larq Compute Engine's design). Every rewrite is exact in real arithmetic; in float32
 * it reorders rounding only.
 */

const f32 = (data: Float32Array, shape?: number[]): GraphTensor => ({ dtype: 'f32', shape: shape ?? [data.length], data });

/** Graph under construction: nodes, value infos, dead marks (for the folding passes). */
export class Builder {
  readonly nodes: GraphNode[] = [];
  readonly infos: ValueInfo[];
  readonly dead = new Set<number>();
  output = 0;
  /** Lower for bit-exact parity with the training graph (ExportOptions.exact). */
  exact = false;

  constructor(inputShape: number[]) {
    this.infos = [{ kind: 'float', shape: [...inputShape] }];
  }

  emit(op: OpName, inputs: number[], attrs: Record<string, AttrValue>, name: string): number {
    const node: GraphNode = { op, inputs, attrs, name };
    this.infos.push(inferNode(node, inputs.map((v) => this.infos[v]!), `exportModel: ${op} "${name}"`));
    this.nodes.push(node);
    return this.nodes.length;
  }

  info(v: number): ValueInfo {
    return this.infos[v]!;
  }

  /** The node that produces value v (null for the input). */
  producer(v: number): GraphNode | null {
    return v > 0 ? this.nodes[v - 1]! : null;
  }

  /** Live readers of value v (the graph output counts as one). */
  uses(v: number): number {
    let n = v === this.output ? 1 : 0;
    this.nodes.forEach((node, i) => { if (!this.dead.has(i)) for (const u of node.inputs) if (u === v) n++; });
    return n;
  }

  /** Make every reader of `from` read `to` instead. */
  replace(from: number, to: number): void {
    for (const node of this.nodes) node.inputs = node.inputs.map((u) => (u === from ? to : u));
    if (this.output === from) this.output = to;
  }

  /** The graph without dead or unreachable nodes, values renumbered. */
  compact(): { nodes: GraphNode[]; output: number } {
    const need = new Set<number>([this.output]);
    for (let i = this.nodes.length - 1; i >= 0; i--) if (need.has(i + 1) && !this.dead.has(i)) for (const u of this.nodes[i]!.inputs) need.add(u);
    const map = new Map<number, number>([[0, 0]]);
    const nodes: GraphNode[] = [];
    this.nodes.forEach((n, i) => {
      if (this.dead.has(i) || !need.has(i + 1)) return;
      nodes.push({ ...n, inputs: n.inputs.map((u) => map.get(u)!) });
      map.set(i + 1, nodes.length);
    });
    return { nodes, output: map.get(this.output)! };
  }
}

// ---- folding ----

const FOLD_INTO: ReadonlySet<string> = new Set(['conv2d', 'dense', 'binary_conv2d', 'binary_dense', 'scale_bias']);

/** Fold each scale_bias into its producer when that producer's output has no other reader. */
export function foldScaleBias(b: Builder): void {
  b.nodes.forEach((node, i) => {
    if (node.op !== 'scale_bias' || b.dead.has(i)) return;
    const v = node.inputs[0]!, p = b.producer(v);
    if (!p || !FOLD_INTO.has(p.op) || b.uses(v) !== 1 || attr.tensor(p, 'thr')) return;
    const a = attr.f32(node, 'scale')!, c = attr.f32(node, 'bias')!, C = a.length;
    const scaled = (key: string): void => {
      const t = attr.f32(p, key);
      if (t) p.attrs[key] = f32(t.map((x, o) => x * a[o]!));
    };
    const shifted = (old: Float32Array | undefined): Float32Array => Float32Array.from({ length: C }, (_, o) => (old ? old[o]! * a[o]! : 0) + c[o]!);
    if (p.op === 'conv2d' || p.op === 'dense') {
      const w = attr.tensor(p, 'weight')!, per = w.data.length / C;
      p.attrs.weight = f32((w.data as Float32Array).map((x, j) => x * a[Math.floor(j / per)]!), w.shape);
      p.attrs.bias = f32(shifted(attr.f32(p, 'bias')));
    } else if (p.op === 'scale_bias') {
      p.attrs.bias = f32(shifted(attr.f32(p, 'bias')));
      scaled('scale');
    } else {
      for (const key of ['mul', 'tmul']) scaled(key);
      p.attrs.bias = f32(shifted(attr.f32(p, 'bias')));
    }
    b.dead.add(i);
    b.replace(i + 1, v);
  });
}

/**
 * Fold a scale_bias whose only reader is a dense layer into that layer (x·a + b then W, bias →
 * W·diag(a), bias + W·b): e.g. ResNet-20's head, global pool → batch norm → linear.
 */
export function foldScaleBiasForward(b: Builder): void {
  b.nodes.forEach((node, i) => {
    if (node.op !== 'scale_bias' || b.dead.has(i) || b.uses(i + 1) !== 1) return;
    const reader = b.nodes.find((n, j) => !b.dead.has(j) && n.inputs.includes(i + 1));
    if (!reader || reader.op !== 'dense') return;
    const a = attr.f32(node, 'scale')!, c = attr.f32(node, 'bias')!;
    const w = attr.tensor(reader, 'weight')!, [O, I] = w.shape as [number, number], wd = w.data as Float32Array;
    const old = attr.f32(reader, 'bias');
    const bias = new Float32Array(O);
    for (let o = 0; o < O; o++) {
      let s = old ? old[o]! : 0;
      for (let j = 0; j < I; j++) s += wd[o * I + j]! * c[j]!;
      bias[o] = s;
    }
    reader.attrs.weight = f32(wd.map((x, j) => x * a[j % I]!), w.shape);
    reader.attrs.bias = f32(bias);
    b.dead.add(i);
    b.replace(i + 1, node.inputs[0]!);
  });
}

// ---- threshold fusion ----

/** A half-line of one channel: dir > 0 → {y >= th}, dir < 0 → {y <= th}; th may be ±Infinity. */
interface HalfLine { dir: 1 | -1; th: number }
const ALL: HalfLine = { dir: 1, th: -Infinity };
const NONE: HalfLine = { dir: 1, th: Infinity };
const isAll = (h: HalfLine) => (h.dir > 0 ? h.th === -Infinity : h.th === Infinity);
const isNone = (h: HalfLine) => (h.dir > 0 ? h.th === Infinity : h.th === -Infinity);

/** {u : f(u) dir φ} for f(u) = u >= 0 ? p·u : q·u with p, q >= 0 (non-decreasing). */
function preNondecreasing(dir: 1 | -1, phi: number, p: number, q: number): HalfLine {
  if (dir > 0) {
    if (phi > 0) return p > 0 ? { dir: 1, th: phi / p } : NONE;
    return q > 0 ? { dir: 1, th: phi / q } : ALL;
  }
  if (phi >= 0) return p > 0 ? { dir: -1, th: phi / p } : ALL;
  return q > 0 ? { dir: -1, th: phi / q } : NONE;
}

/** Preimage of half-line h (over the op's output, channel c) under one per-channel op; null when not a half-line. */
function preimage(node: GraphNode, c: number, h: HalfLine): HalfLine | null {
  if (isAll(h)) return ALL;
  if (isNone(h)) return NONE;
  const f = (k: string) => attr.f32(node, k);
  switch (node.op) {
    case 'scale_bias': {
      const a = f('scale')![c]!, s = f('bias')![c]!;
      if (a === 0) return h.dir * (s - h.th) >= 0 ? ALL : NONE;
      return { dir: (a > 0 ? h.dir : -h.dir) as 1 | -1, th: (h.th - s) / a };
    }
    case 'clamp': {
      const lo = attr.float(node, 'lo') ?? -Infinity, hi = attr.float(node, 'hi') ?? Infinity;
      if (h.dir > 0) return h.th <= lo ? ALL : h.th > hi ? NONE : h;
      return h.th >= hi ? ALL : h.th < lo ? NONE : h;
    }
    case 'channel_act': {
      const p = f('pos')?.[c] ?? 1, q = f('neg')![c]!, b0 = f('b0')?.[c] ?? 0, b1 = f('b1')?.[c] ?? 0;
      const phi = h.th - b1;
      let u: HalfLine;
      if (p >= 0 && q >= 0) u = preNondecreasing(h.dir, phi, p, q);
      else if (p <= 0 && q <= 0) u = preNondecreasing((-h.dir) as 1 | -1, -phi, -p, -q);
      else return null;
      return isAll(u) || isNone(u) ? u : { dir: u.dir, th: u.th - b0 };
    }
    default:
      return null;
  }
}

const CHAIN_OPS: ReadonlySet<string> = new Set(['scale_bias', 'channel_act', 'clamp']);

/** Binary op → (monotone per-channel chain) → sign, with no other readers: fused into thr/dir on the binary op. */
export function fuseThresholds(b: Builder): void {
  b.nodes.forEach((sign, i) => {
    if (sign.op !== 'sign' || b.dead.has(i)) return;
    const chain: number[] = []; // node indices, from the sign backwards
    let v = sign.inputs[0]!;
    while (b.producer(v) && CHAIN_OPS.has(b.producer(v)!.op) && b.uses(v) === 1) {
      chain.push(v - 1);
      v = b.producer(v)!.inputs[0]!;
    }
    const p = b.producer(v);
    if (!p || (p.op !== 'binary_conv2d' && p.op !== 'binary_dense') || attr.tensor(p, 'thr') || b.uses(v) !== 1) return;
    const thr0 = attr.f32(sign, 'thr')!, C = thr0.length;
    const thr = new Float32Array(C), dir = new Int8Array(C);
    for (let c = 0; c < C; c++) {
      let h: HalfLine | null = { dir: 1, th: thr0[c]! };
      for (const j of chain) if (h) h = preimage(b.nodes[j]!, c, h);
      if (!h) return;
      if (isAll(h)) h = ALL;
      else if (isNone(h)) h = NONE;
      thr[c] = h.th;
      dir[c] = h.dir;
    }
    p.attrs.thr = f32(thr);
    p.attrs.dir = { dtype: 'i8', shape: [C], data: dir };
    b.infos[v] = { kind: 'binary', shape: b.infos[v]!.shape };
    for (const j of chain) b.dead.add(j);
    b.dead.add(i);
    b.replace(i + 1, v);
  });
}

