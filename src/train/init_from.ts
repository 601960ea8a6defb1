import { fail, fmtShape } from '../core/errors.js';
import type { Module } from '../nn/module.js';
import { loadCheckpoint } from './checkpoint.js';

/** What `initFromCheckpoint` did, by state-dict name. */
export interface InitFromReport {
  file: string;
  /** Parameters and buffers copied from the checkpoint. */
  loaded: string[];
  /** The model's tensors the checkpoint does not have: they keep their fresh initialisation. */
  missing: string[];
  /** The checkpoint's model tensors the model does not have: ignored. */
  unexpected: string[];
}

/**
 * Initialise `model` from the model tensors (`model.<name>`) of an onebit checkpoint, matching by
 * name with strict=false, as ReActNet's step 2 (`load_state_dict(..., strict=False)`, methods.md
 * §1.6): tensors present on both sides are copied (parameters and buffers, e.g. BN running
 * statistics), the others are reported and left alone. A name on both sides with different shapes
 * fails, as in PyTorch, and so does a checkpoint with no name in common (another architecture).
 * Only the model is read: optimizer state, epoch and RNG start fresh.
 */
export function initFromCheckpoint(model: Module, file: string): InitFromReport {
  const ck = loadCheckpoint(file);
  const src = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, t] of ck.tensors) if (name.startsWith('model.')) src.set(name.slice(6), t);
  const own = model.stateDict();
  const loaded: string[] = [], missing: string[] = [];
  const bad: string[] = [];
  for (const [name, t] of own) {
    const s = src.get(name);
    if (!s) missing.push(name);
    else if (s.data.length !== t.size || s.shape.length !== t.shape.length || s.shape.some((d, i) => d !== t.shape[i])) {
      bad.push(`${name} ${fmtShape(s.shape)} vs ${fmtShape(t.shape)}`);
    } else loaded.push(name);
  }
  if (bad.length) {
    fail(`--init-from ${file}`, 'tensors of the same shape as the model for every shared name', `${bad.length} mismatches (${bad.slice(0, 3).join('; ')})`,
      'Was it trained with another architecture or width?');
  }
  if (!loaded.length) {
    fail(`--init-from ${file}`, 'a checkpoint sharing parameter names with the model', `none of its ${src.size} model tensors`, 'Was it trained with another architecture?');
  }
  const state = new Map<string, Float32Array>(loaded.map((n) => [n, src.get(n)!.data]));
  model.loadStateDict(state, false);
  const unexpected = [...src.keys()].filter((n) => !own.has(n));
  return { file, loaded, missing, unexpected };
}
