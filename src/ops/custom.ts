import { Tensor } from '../core/tensor.js';
import { record } from '../autograd/tape.js';

/**
 * An op with a hand-written gradient: the hook every quantizer's pseudo-gradient uses.
 * `forward` runs with the given inputs' data (no tape); `backward` receives dL/dout and returns one
 * gradient per input (null for none). Example, the clipped straight-through sign:
 *
 *   customGrad('ste_sign', [x], ([x]) => sign(x), (g, [x]) => [mul(g, lessEqual(abs(x), 1))])
 */
export function customGrad(
  op: string,
  inputs: readonly Tensor[],
  forward: (inputs: readonly Tensor[]) => Tensor,
  backwardFn: (grad: Tensor, inputs: readonly Tensor[], out: Tensor) => readonly (Tensor | null)[],
): Tensor {
  const detached = inputs.map((t) => t.detach());
  const raw = forward(detached);
  const out = raw.node ? raw.detach() : raw;
  return record(out, op, inputs, (g) => backwardFn(g, detached, out));
}
