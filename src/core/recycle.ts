import { envVar } from './env.js';
import { backend, type Tensor } from './tensor.js';

/**
 * Array recycling for a computation that repeats with the same shapes (a training step, an
 * evaluation batch).
 *
 * Why: a ResNet-20 training step (batch 128) allocates ~420 MB of large kernel outputs
 * (activations and gradients of 2–8 MB each) that are all dead when the step ends. V8 only learns
 * that at a GC, and it answers the allocation volume itself with GCs: a scavenge per 32 MB of new
 * ArrayBuffers and, past its external-memory limit, an incremental mark-compact — ~13 scavenges and
 * one mark-compact per step, 15–20 ms of a ~260 ms step on the 2-core host (`node --trace-gc`). We
 * cannot free on refcount as PyTorch does, but the caller of a step knows what survives it: the
 * parameters, their gradients, the module buffers. So inside `recycling(keep, fn)` a backend hands
 * out large outputs from a pool, and when `fn` returns every array it handed out goes back to the
 * pool except those `keep` names (and those in fn's result). Steady state: no new ArrayBuffers, no
 * GCs triggered by them.
 *
 * The contract is the caller's: an array from inside the scope that outlives it without being
 * named in `keep` is overwritten by a later step. The trainer names every tensor that persists
 * (trainer.ts `persistentTensors`), and its test trains every method preset with and without
 * recycling, with recycled arrays poisoned (NaN), and asserts the same bits. Tensors a caller
 * keeps across steps (e.g. logits saved for later) need a copy or must be in `keep`.
 *
 * A backend offers this as `Backend.recycler` (the native backend does; the reference backend does
 * not, and there `recycling` just runs fn). `ONEBIT_RECYCLE=0` turns it off (read at each scope): fn then runs as is.
 */
export interface Recycler {
  /** Start recording: large outputs come from the pool until `close`. */
  open(): void;
  /** Stop recording; return every recorded array whose ArrayBuffer is not in `keep` to the pool. */
  close(keep: ReadonlySet<ArrayBufferLike>): void;
  /** Stop recording and forget the recorded arrays (fn threw: they are left to the GC). */
  abandon(): void;
  /** Drop the pool (its arrays go to the GC). */
  clear(): void;
}

let depth = 0;

/** Things whose storage must survive a recycling scope. */
export type Keep = Iterable<Tensor | Float32Array | null | undefined>;

/**
 * Run `fn`; afterwards the large arrays the backend allocated inside it are reused by later scopes,
 * except the storage of the tensors `keep(result)` lists (and of `result` itself when it is a tensor,
 * a Float32Array or an array of those). Nested scopes run inside the outer one. See the module doc for the contract.
 */
export function recycling<T>(keep: (result: T) => Keep, fn: () => T): T {
  const r = backend().recycler;
  if (!r || depth > 0 || envVar('ONEBIT_RECYCLE') === '0') return fn();
  depth++;
  r.open();
  let result: T;
  try {
    result = fn();
  } catch (e) {
    depth--;
    r.abandon();
    throw e;
  }
  depth--;
  const kept = new Set<ArrayBufferLike>();
  const add = (t: Tensor | Float32Array | null | undefined) => {
    if (!t) return;
    if (t instanceof Float32Array) kept.add(t.buffer);
    else {
      kept.add(t.storage.buffer);
      if (t.grad) kept.add(t.grad.storage.buffer);
    }
  };
  try {
    for (const t of keep(result)) add(t);
    for (const t of Array.isArray(result) ? result : [result]) if (t instanceof Float32Array || isTensorLike(t)) add(t);
  } catch (e) {
    r.abandon();
    throw e;
  }
  r.close(kept);
  return result;
}

function isTensorLike(v: unknown): v is Tensor {
  return typeof v === 'object' && v !== null && 'storage' in v && 'shape' in v;
}

/** Drop the active backend's pool (e.g. when training ends), so its memory goes back to the GC. */
export function clearRecyclePool(): void {
  if (depth === 0) backend().recycler?.clear();
}
