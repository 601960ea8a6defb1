import { fail, fmtShape } from '../core/errors.js';
import { sizeOf } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { record } from '../autograd/tape.js';

/** Shape ops. reshape of a contiguous tensor and permute are views (no copy). */

export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const infer = shape.indexOf(-1);
  let sh = [...shape];
  if (infer >= 0) {
    const rest = sizeOf(shape.filter((_, i) => i !== infer));
    if (shape.filter((d) => d === -1).length > 1 || rest === 0 || x.size % rest !== 0) {
      fail('reshape', `a shape compatible with ${x.size} elements (from ${fmtShape(x.shape)})`, fmtShape(shape));
    }
    sh[infer] = x.size / rest;
  }
  if (sh.some((d) => !Number.isInteger(d) || d < 0) || sizeOf(sh) !== x.size) {
    fail('reshape', `a shape with ${x.size} elements (from ${fmtShape(x.shape)})`, fmtShape(shape));
  }
  const y = x.isContiguous ? new Tensor(x.storage, sh) : new Tensor(x.values(), sh);
  return record(y, 'reshape', [x], (g) => [reshape(g, x.shape)]);
}

/** Flatten all dims from `start` on: [N, C, H, W] -> [N, C·H·W]. */
export function flatten(x: Tensor, start = 1): Tensor {
  return reshape(x, [...x.shape.slice(0, start), sizeOf(x.shape.slice(start))]);
}

/** Reorder dims (a strided view). */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  const sorted = [...perm].sort((a, b) => a - b);
  if (perm.length !== x.rank || sorted.some((v, i) => v !== i)) {
    fail('permute', `a permutation of 0..${x.rank - 1} (input shape ${fmtShape(x.shape)})`, `[${perm.join(',')}]`);
  }
  const y = new Tensor(x.storage, perm.map((p) => x.shape[p]!), perm.map((p) => x.strides[p]!), x.offset);
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return record(y, 'permute', [x], (g) => [permute(g, inv)]);
}

/** Swap the last two dims. */
export function transpose(x: Tensor): Tensor {
  if (x.rank < 2) fail('transpose', 'rank >= 2', `rank ${x.rank}`);
  const perm = [...Array(x.rank).keys()];
  [perm[x.rank - 2], perm[x.rank - 1]] = [perm[x.rank - 1]!, perm[x.rank - 2]!];
  return permute(x, perm);
}
