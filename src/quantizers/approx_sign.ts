import { backend, type Tensor, wrap } from '../core/tensor.js';
import { fresh } from '../autograd/tape.js';
import { approxSignBackwardLoop, approxSignDerivative } from '../backends/ref/elementwise.js';
import { sign } from '../ops/elementwise.js';
import { customGrad } from '../ops/custom.js';
import { Quantizer, type QuantizerConfig, type SignGrad } from './quantizer.js';

/**
 * `approx_sign` — sign with Bi-Real Net's ApproxSign backward, a piecewise-quadratic surrogate
 * (Liu et al., "Bi-Real Net", ECCV 2018, arXiv:1808.00278; methods.md §1.1). Used on activations
 * by Bi-Real, ReActNet, ReBNN and AdaBin.
 *
 *   forward:  q(x) = +1 if x >= 0 else −1            (sign(0) = +1)
 *   backward: dq/dx = 2 + 2x  for −1 <= x < 0
 *                     2 − 2x  for  0 <= x < 1
 *                     0       otherwise               (continuous: 0 at ±1, 2 at 0)
 *
 * i.e. the derivative of F(x) = −1 (x < −1), x² + 2x (−1 <= x < 0), −x² + 2x (0 <= x < 1), 1 (x >= 1).
 */
export class ApproxSign extends Quantizer {
  readonly alias = 'approx_sign';
  readonly precision = 1;

  apply(x: Tensor): Tensor {
    return approxSign(x);
  }

  override signGrad(): SignGrad | null {
    // Not when `apply` was replaced (a subclass or an instance patch, e.g. to observe activations).
    return this.apply === ApproxSign.prototype.apply ? { kind: 'approx_sign' } : null;
  }

  config(): QuantizerConfig {
    return { alias: this.alias };
  }

  static fromConfig(_c: QuantizerConfig): ApproxSign {
    return new ApproxSign();
  }
}

export { approxSignDerivative };

/** dL/dx = dL/dq · ApproxSign'(x), elementwise (g and x of the same shape). */
export function approxSignBackward(g: Tensor, x: Tensor): Tensor {
  const gv = g.f32(), xv = x.f32();
  const b = backend();
  return fresh(wrap(b.approxSignBackward ? b.approxSignBackward(gv, xv) : approxSignBackwardLoop(gv, xv), x.shape));
}

export { approxSignBackwardLoop };

/** sign(x) (sign(0) = +1) with the ApproxSign backward; shared by approx_sign and adabin_act. */
export function approxSign(x: Tensor): Tensor {
  return customGrad('approx_sign', [x], ([v]) => sign(v!), (g, [v]) => [approxSignBackward(g, v!)]);
}
