import { envVar } from '../../core/env.js';

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

/** A Float32Array of n elements whose contents are unspecified (see above): the caller must write all of them. */
export function outputF32(n: number): Float32Array {
  if (n < UNINIT_MIN) return new Float32Array(n);
  const buf = Buffer.allocUnsafeSlow(n * 4);
  const out = new Float32Array(buf.buffer, buf.byteOffset, n);
  if (poison) out.fill(NaN);
  return out;
}
