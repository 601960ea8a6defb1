import { fail, fmtShape } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import type { Module } from '../nn/module.js';
import { loadCheckpoint } from './checkpoint.js';

/** What `initFromCheckpoint` did, by state-dict name. */
export interface InitFromReport {
  file: string;
  /** Parameters and buffers copied from the checkpoint (model names). */
  loaded: string[];
  /** The model's tensors the checkpoint does not have: they keep their fresh initialisation. */
  missing: string[];
  /** The checkpoint's model tensors the model does not have: ignored. */
  unexpected: string[];
  /**
   * When the names did not line up but the top-level layers do in order (e.g. a bireal ResNet-20
   * into a reactnet one, whose stem activation shifts the layer indices): [checkpoint prefix,
   * model prefix] of every top-level layer matched by position. Empty when names matched as is.
   */
  renamed: [string, string][];
}

type Src = Map<string, { shape: number[]; data: Float32Array }>;

const sameShape = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * Names split into top-level groups by their first path component ("3.conv1.weight" → "3"), in
 * order of first appearance (a state dict lists parameters before buffers, so one layer's names
 * are not contiguous).
 */
function groups<T>(m: Map<string, T>): { prefix: string; names: Map<string, T> }[] {
  const out = new Map<string, { prefix: string; names: Map<string, T> }>();
  for (const [name, v] of m) {
    const dot = name.indexOf('.');
    const prefix = dot < 0 ? name : name.slice(0, dot), rest = dot < 0 ? '' : name.slice(dot + 1);
    let g = out.get(prefix);
    if (!g) out.set(prefix, (g = { prefix, names: new Map() }));
    g.names.set(rest, v);
  }
  return [...out.values()];
}

/**
 * The checkpoint's tensors renamed onto the model by aligning top-level layers in order: each
 * model layer takes the next checkpoint layer that shares at least one tensor name with it, with
 * every shared name of the same shape; layers in between (on either side) are skipped. Null when
 * this does not place every checkpoint tensor of a matched layer, or matches nothing.
 */
function alignByPosition(own: Map<string, Tensor>, src: Src): { src: Src; renamed: [string, string][]; skipped: string[] } | null {
  const mg = groups(own), cg = groups(src);
  const out: Src = new Map();
  const renamed: [string, string][] = [];
  const matched = new Set<number>();
  let i = 0;
  for (const m of mg) {
    for (let k = i; k < cg.length; k++) {
      const c = cg[k]!;
      const shared = [...c.names.keys()].filter((n) => m.names.has(n));
      if (!shared.length || !shared.every((n) => sameShape(c.names.get(n)!.shape, m.names.get(n)!.shape))) continue;
      if (shared.length !== c.names.size) return null; // the layers differ: not a positional match
      for (const n of shared) out.set(n ? `${m.prefix}.${n}` : m.prefix, c.names.get(n)!);
      renamed.push([c.prefix, m.prefix]);
      matched.add(k);
      i = k + 1;
      break;
    }
  }
  // A matched layer's tensors all moved; the checkpoint layers no model layer took are skipped.
  const skipped = cg.filter((_, k) => !matched.has(k)).flatMap((c) => [...c.names.keys()].map((n) => (n ? `${c.prefix}.${n}` : c.prefix)));
  return renamed.length ? { src: out, renamed, skipped } : null;
}

/**
 * Initialise `model` from the model tensors (`model.<name>`) of an onebit checkpoint, matching by
 * name with strict=false, as ReActNet's step 2 (`load_state_dict(..., strict=False)`, methods.md
 * §1.6): tensors present on both sides are copied (parameters and buffers, e.g. BN running
 * statistics), the others are reported and left alone. A name on both sides with different shapes
 * fails, as in PyTorch, and so does a checkpoint with no name in common (another architecture) —
 * unless the top-level layers line up in order (`alignByPosition`: a method that adds a layer, such
 * as ReActNet's activation after the stem, shifts every later index); then the checkpoint's layers
 * are loaded into the model's by position and `renamed` says which went where.
 * Only the model is read: optimizer state, epoch and RNG start fresh.
 */
export function initFromCheckpoint(model: Module, file: string): InitFromReport {
  const ck = loadCheckpoint(file);
  let src: Src = new Map();
  for (const [name, t] of ck.tensors) if (name.startsWith('model.')) src.set(name.slice(6), t);
  const own = model.stateDict();
  const match = (from: Src) => {
    const loaded: string[] = [], missing: string[] = [], bad: string[] = [];
    for (const [name, t] of own) {
      const s = from.get(name);
      if (!s) missing.push(name);
      else if (s.data.length !== t.size || !sameShape(s.shape, t.shape)) bad.push(`${name} ${fmtShape(s.shape)} vs ${fmtShape(t.shape)}`);
      else loaded.push(name);
    }
    return { loaded, missing, bad };
  };
  let r = match(src);
  let renamed: [string, string][] = [];
  // Checkpoint tensors not loaded, by their checkpoint names.
  let unexpected = [...src.keys()].filter((n) => !own.has(n));
  const srcCount = src.size;
  if (r.bad.length || !r.loaded.length) {
    const aligned = alignByPosition(own, src);
    const ra = aligned && match(aligned.src);
    if (ra && !ra.bad.length && ra.loaded.length) {
      ({ src, renamed, skipped: unexpected } = aligned);
      r = ra;
    }
  }
  if (r.bad.length) {
    fail(`--init-from ${file}`, 'tensors of the same shape as the model for every shared name', `${r.bad.length} mismatches (${r.bad.slice(0, 3).join('; ')})`,
      'Was it trained with another architecture or width?');
  }
  if (!r.loaded.length) {
    fail(`--init-from ${file}`, 'a checkpoint sharing parameter names with the model', `none of its ${srcCount} model tensors`, 'Was it trained with another architecture?');
  }
  const state = new Map<string, Float32Array>(r.loaded.map((n) => [n, src.get(n)!.data]));
  model.loadStateDict(state, false);
  return { file, loaded: r.loaded, missing: r.missing, unexpected, renamed };
}
