import { envVar } from '../../core/env.js';
import type { Recycler } from '../../core/recycle.js';

/**
 * Output arrays for native kernels that write every element of their output.
 *
 * `new Float32Array(n)` zero-fills, and a ResNet-20 training step allocates a few hundred MB of
 * such outputs (conv, batch-norm and gradient arrays of 0.5–8 MB each): the zeroing is a full
 * extra memory pass before the kernel writes the same bytes again. `Buffer.allocUnsafeSlow` asks
 * Node's allocator for memory without the fill (its own ArrayBuffer, offset 0, malloc-aligned),
 * so here the kernel's write is the only pass.
 *
 * Only for outputs the kernel writes completely: never for accumulators (max-pool backward
 * scatters with +=) or arrays a kernel may leave partly untouched. `ONEBIT_POISON_OUTPUTS=1`
 * fills these arrays with NaN first, so a kernel that skips an element shows up as NaN in the
 * conformance tests (which set it) instead of as stale memory that happens to be zero.
 */

/** Below this many elements the zero-fill is cheap and a plain Float32Array is returned. */
const UNINIT_MIN = 1 << 12;

const poison = envVar('ONEBIT_POISON_OUTPUTS') === '1';

/**
 * The recycling pool (core/recycle.ts): free arrays by length (a step's shapes repeat, so exact
 * lengths match), and the arrays handed out since the open scope began (null: no scope).
 */
const pool = new Map<number, Float32Array[]>();
let pooledBytes = 0;
let handedOut: Float32Array[] | null = null;

/**
 * At most this many bytes wait in the pool; more go to the GC. A ResNet-20 step at batch 128 needs
 * ~420 MB, so this is room for a step and an evaluation batch of another size.
 */
const POOL_MAX_BYTES = 2 ** 30;

/** A Float32Array of n elements whose contents are unspecified (see above): the caller must write all of them. */
export function outputF32(n: number): Float32Array {
  if (n < UNINIT_MIN) return new Float32Array(n);
  let out: Float32Array | undefined;
  if (handedOut) {
    out = pool.get(n)?.pop();
    if (out) pooledBytes -= out.byteLength;
  }
  if (!out) {
    const buf = Buffer.allocUnsafeSlow(n * 4);
    out = new Float32Array(buf.buffer, buf.byteOffset, n);
  }
  if (poison) out.fill(NaN);
  handedOut?.push(out);
  return out;
}

/** The native backend's Recycler over outputF32 (see core/recycle.ts for the contract). */
export const nativeRecycler: Recycler = {
  open() {
    handedOut = [];
  },
  close(keep) {
    const done = handedOut ?? [];
    handedOut = null;
    for (const a of done) {
      if (keep.has(a.buffer) || pooledBytes + a.byteLength > POOL_MAX_BYTES) continue;
      // Poisoned: a reader that kept the array past its scope sees NaN, not a later step's data.
      if (poison) a.fill(NaN);
      let free = pool.get(a.length);
      if (!free) pool.set(a.length, (free = []));
      free.push(a);
      pooledBytes += a.byteLength;
    }
  },
  abandon() {
    handedOut = null;
  },
  clear() {
    pool.clear();
    pooledBytes = 0;
  },
};

/** Arrays and bytes waiting in the pool (tests and debugging). */
export function poolStats(): { arrays: number; bytes: number } {
  let arrays = 0;
  for (const a of pool.values()) arrays += a.length;
  return { arrays, bytes: pooledBytes };
}
