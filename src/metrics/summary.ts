import { noGrad } from '../autograd/tape.js';
import { fail, fmtShape } from '../core/errors.js';
import { type Tensor, zeros } from '../core/tensor.js';
import { isBinaryLayer } from '../nn/binary.js';
import { Conv2d, Linear } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import { Quantizer } from '../quantizers/quantizer.js';

/**
 * Bit-aware model summary in the style of Larq's `lq.models.summary`. Counting conventions:
 *
 * - Rows: one per call of a leaf layer (a module with no children other than quantizers) during
 *   one forward pass on zeros of `inputShape`, in eval mode, without autograd. Containers
 *   (Sequential, residual blocks) get no row; quantizers are part of their binary layer's row.
 * - Parameters by bit width: the latent weight of a binary layer counts at its kernel quantizer's
 *   precision (1 bit); everything else — biases, BN γ/β, quantizer parameters, the weights of real
 *   layers and of binary layers with a float kernel — counts as 32-bit. Buffers (BN running mean and
 *   variance) count as non-trainable 32-bit parameters, as Larq counts BN moving statistics.
 * - Memory (bytes) = Σ bits/8 (1-bit parameters packed: n/8 bytes; 32-bit: 4n bytes). 1 kB = 1024 B.
 * - MACs (per example): dense = in·out, conv = Cout·Ho·Wo·(Cin/groups)·kh·kw. A binary layer whose
 *   input and kernel quantizers both have 1-bit precision does 1-bit MACs; a layer with a float
 *   input or float kernel (or a real Linear/Conv2d) does 32-bit MACs (in general: max of the two
 *   precisions). Other layers (BN, pooling, activations, residual adds) count no MACs, as in Larq.
 * - Compression ratio = float-32 equivalent size / packed model size (> 1 means smaller).
 */
export interface LayerSummary {
  name: string;
  type: string;
  /** Bits of the input quantizer; 32 for float layers with parameters; '-' for parameter-free layers. */
  inputPrecision: number | '-';
  outputShape: number[];
  /** Parameter count by bit width, e.g. {1: 65536, 32: 0}; each tensor is counted once (first call). */
  params: Record<number, number>;
  memoryBytes: number;
  /** MAC count by bit width. */
  macs: Record<number, number>;
}

export interface ModelSummary {
  inputShape: number[];
  layers: LayerSummary[];
  /** Parameters/buffers not reached by any recorded layer (unused layers, container-owned tensors). */
  other: { params: Record<number, number>; memoryBytes: number } | null;
  totalParams: number;
  trainableParams: number;
  nonTrainableParams: number;
  /** Totals by bit width over all parameters and buffers. */
  paramsByBits: Record<number, number>;
  /** Packed model size in bytes. */
  modelSizeBytes: number;
  float32SizeBytes: number;
  compressionRatio: number;
  macsByBits: Record<number, number>;
  totalMacs: number;
  /** Fraction of all MACs that are 1-bit (0 when there are no MACs). */
  binarizedMacRatio: number;
}

interface TensorInfo {
  bits: number;
  trainable: boolean;
}

/** Every parameter and buffer of the tree with its bit width and trainability. */
function classify(model: Module): Map<Tensor, TensorInfo> {
  const out = new Map<Tensor, TensorInfo>();
  for (const [, m] of model.namedModules()) {
    // Own tensors are those without a dotted child prefix.
    for (const [n, t] of m.namedParameters()) {
      if (n.includes('.') || out.has(t)) continue;
      const kq = isBinaryLayer(m) && t === m.weight ? m.kernelQuantizer : null;
      out.set(t, { bits: kq ? kq.precision : 32, trainable: t.requiresGrad });
    }
    for (const [n, t] of m.namedBuffers()) {
      if (!n.includes('.') && !out.has(t)) out.set(t, { bits: 32, trainable: false });
    }
  }
  return out;
}

const bump = (r: Record<number, number>, bits: number, n: number) => {
  r[bits] = (r[bits] ?? 0) + n;
};
const memOf = (r: Record<number, number>) => Object.entries(r).reduce((s, [b, n]) => s + (Number(b) * n) / 8, 0);
const sumOf = (r: Record<number, number>) => Object.values(r).reduce((s, n) => s + n, 0);

function isLeaf(m: Module): boolean {
  return !(m instanceof Quantizer) && m.children().every(([, c]) => c instanceof Quantizer);
}

function macsOf(m: Module, y: Tensor): { bits: number; n: number } | null {
  let bits: number;
  let w: Tensor;
  if (isBinaryLayer(m)) {
    bits = Math.max(m.inputQuantizer?.precision ?? 32, m.kernelQuantizer?.precision ?? 32);
    w = m.weight;
  } else if (m instanceof Linear || m instanceof Conv2d) {
    bits = 32;
    w = m.weight;
  } else {
    return null;
  }
  // Per example: (outputs per example) · (weights per output unit) = out·in for dense,
  // Cout·Ho·Wo · (Cin/groups)·kh·kw for conv.
  const perExample = y.size / (y.shape[0] ?? 1);
  return { bits, n: perExample * (w.size / w.shape[0]!) };
}

/** Summarize `model` by running one forward pass on zeros of `inputShape` (batch first). */
export function summary(model: Module, inputShape: number[]): ModelSummary {
  if (!inputShape.length || !inputShape.every((d) => Number.isInteger(d) && d > 0)) {
    fail('summary inputShape', 'positive integer dimensions, batch first', fmtShape(inputShape));
  }
  const info = classify(model);
  const seen = new Set<Tensor>();
  const layers: LayerSummary[] = [];
  const modules = model.namedModules();
  const training = modules.map(([, m]) => m.training);
  const patched: Module[] = [];

  for (const [name, m] of modules) {
    if (!isLeaf(m) || Object.hasOwn(m, 'forward')) continue;
    const orig = m.forward;
    const tensors = [...m.namedParameters(), ...m.namedBuffers()].map(([, t]) => t);
    const hasState = tensors.length > 0;
    m.forward = (x: Tensor): Tensor => {
      const y = orig.call(m, x);
      const params: Record<number, number> = { 1: 0, 32: 0 };
      for (const t of tensors) {
        if (seen.has(t)) continue;
        seen.add(t);
        bump(params, info.get(t)?.bits ?? 32, t.size);
      }
      const macs: Record<number, number> = { 1: 0, 32: 0 };
      const mc = macsOf(m, y);
      if (mc) bump(macs, mc.bits, mc.n);
      const inputPrecision = isBinaryLayer(m) ? (m.inputQuantizer?.precision ?? 32) : hasState ? 32 : '-';
      layers.push({ name: name || '(model)', type: m.constructor.name, inputPrecision, outputShape: [...y.shape], params, memoryBytes: memOf(params), macs });
      return y;
    };
    patched.push(m);
  }
  try {
    model.eval();
    noGrad(() => model.forward(zeros(inputShape)));
  } finally {
    for (const m of patched) delete (m as { forward?: unknown }).forward;
    modules.forEach(([, m], i) => (m.training = training[i]!));
  }

  const paramsByBits: Record<number, number> = { 1: 0, 32: 0 };
  const otherParams: Record<number, number> = { 1: 0, 32: 0 };
  let trainable = 0;
  for (const [t, { bits, trainable: tr }] of info) {
    bump(paramsByBits, bits, t.size);
    if (tr) trainable += t.size;
    if (!seen.has(t)) bump(otherParams, bits, t.size);
  }
  const macsByBits: Record<number, number> = { 1: 0, 32: 0 };
  for (const l of layers) for (const [b, n] of Object.entries(l.macs)) bump(macsByBits, Number(b), n);
  const totalParams = sumOf(paramsByBits);
  const modelSizeBytes = memOf(paramsByBits);
  const totalMacs = sumOf(macsByBits);
  return {
    inputShape: [...inputShape],
    layers,
    other: sumOf(otherParams) ? { params: otherParams, memoryBytes: memOf(otherParams) } : null,
    totalParams,
    trainableParams: trainable,
    nonTrainableParams: totalParams - trainable,
    paramsByBits,
    modelSizeBytes,
    float32SizeBytes: totalParams * 4,
    compressionRatio: modelSizeBytes ? (totalParams * 4) / modelSizeBytes : 1,
    macsByBits,
    totalMacs,
    binarizedMacRatio: totalMacs ? (macsByBits[1] ?? 0) / totalMacs : 0,
  };
}

const kB = (bytes: number) => (bytes / 1024).toFixed(2);

function humanBytes(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(2)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(2)} KiB`;
  return `${bytes} B`;
}

function box(title: string, header: string[][], rows: string[][], footer: string[][], align: ('l' | 'r')[]): string {
  const all = [...header, ...rows, ...footer];
  const w = align.map((_, c) => Math.max(...all.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) => `| ${r.map((v, c) => (align[c] === 'l' ? v.padEnd(w[c]!) : v.padStart(w[c]!))).join('  ')} |`;
  const inner = w.reduce((s, x) => s + x, 0) + 2 * (w.length - 1) + 2;
  const rule = (t = '') => `+${t}${'-'.repeat(Math.max(0, inner - t.length))}+`;
  const out = [rule(title)];
  if (header.length) out.push(...header.map(line), rule());
  if (rows.length) out.push(...rows.map(line), rule());
  if (footer.length) out.push(...footer.map(line), rule());
  return out.join('\n');
}

/** Fixed-width text tables like Larq's: per-layer stats, then the totals. */
export function formatSummary(s: ModelSummary): string {
  const pBits = Object.keys(s.paramsByBits).map(Number).sort((a, b) => a - b);
  const mBits = Object.keys(s.macsByBits).map(Number).sort((a, b) => a - b);
  const header = [
    ['Layer', 'Input prec.', 'Outputs', ...pBits.map((b) => `# ${b}-bit`), 'Memory', ...mBits.map((b) => `${b}-bit MACs`)],
    ['', '(bit)', '', ...pBits.map(() => ''), '(kB)', ...mBits.map(() => '')],
  ];
  const rows = s.layers.map((l) => [
    `${l.name} (${l.type})`,
    String(l.inputPrecision),
    `(-1, ${l.outputShape.slice(1).join(', ')})`,
    ...pBits.map((b) => String(l.params[b] ?? 0)),
    kB(l.memoryBytes),
    ...mBits.map((b) => String(l.macs[b] ?? 0)),
  ]);
  if (s.other) {
    rows.push(['(other parameters)', '-', '-', ...pBits.map((b) => String(s.other!.params[b] ?? 0)), kB(s.other.memoryBytes), ...mBits.map(() => '0')]);
  }
  const footer = [['Total', '', '', ...pBits.map((b) => String(s.paramsByBits[b] ?? 0)), kB(s.modelSizeBytes), ...mBits.map((b) => String(s.macsByBits[b] ?? 0))]];
  const align: ('l' | 'r')[] = ['l', ...header[0]!.slice(1).map(() => 'r' as const)];
  const stats = box(' model stats ', header, rows, footer, align);

  const totals = [
    ['Total params', String(s.totalParams)],
    ['Trainable params', String(s.trainableParams)],
    ['Non-trainable params', String(s.nonTrainableParams)],
    ['Model size (packed)', `${s.modelSizeBytes} B (${humanBytes(s.modelSizeBytes)})`],
    ['Float-32 equivalent', `${s.float32SizeBytes} B (${humanBytes(s.float32SizeBytes)})`],
    ['Compression ratio (float-32 / packed)', `${s.compressionRatio.toFixed(2)}x`],
    ['Number of MACs', String(s.totalMacs)],
    ['Ratio of MACs that are binarized', s.binarizedMacRatio.toFixed(4)],
  ];
  return `${stats}\n${box(' model summary ', [], totals, [], ['l', 'l'])}\n`;
}
