import { backend, type Tensor, wrap } from '../core/tensor.js';
import { fresh } from '../autograd/tape.js';
import { clippedSteLoop } from '../backends/ref/elementwise.js';
import { sign } from '../ops/elementwise.js';
import { customGrad } from '../ops/custom.js';
import { numOption, Quantizer, type QuantizerConfig, type SignGrad } from './quantizer.js';

/**
 * `ste_sign` — sign with the clipped straight-through estimator (BNN, Hubara et al. 2016;
 * Courbariaux et al., "Binarized Neural Networks", arXiv:1602.02830).
 *
 *   forward:  q(x) = +1 if x >= 0 else −1            (sign(0) = +1)
 *   backward: dq/dx = 1[|x| <= clipValue]           (clipValue = 1 by default)
 */
export class SteSign extends Quantizer {
  readonly alias = 'ste_sign';
  readonly precision = 1;

  constructor(readonly clipValue = 1) {
    super();
  }

  apply(x: Tensor): Tensor {
    const c = this.clipValue;
    return customGrad('ste_sign', [x], ([v]) => sign(v!), (g, [v]) => [clippedSte(g, v!, c)]);
  }

  override signGrad(): SignGrad | null {
    // Not when `apply` was replaced (a subclass or an instance patch, e.g. to observe activations).
    return this.apply === SteSign.prototype.apply ? { kind: 'clipped_ste', clip: this.clipValue } : null;
  }

  config(): QuantizerConfig {
    return { alias: this.alias, clipValue: this.clipValue };
  }

  static fromConfig(c: QuantizerConfig): SteSign {
    return new SteSign(numOption(c, 'clipValue', 1, (v) => v > 0));
  }
}

/** dL/dx = g·1[|x| <= clip], in one pass (the clipped straight-through estimator's backward). */
export function clippedSte(g: Tensor, x: Tensor, clip: number): Tensor {
  const gv = g.f32(), xv = x.f32();
  const b = backend();
  return fresh(wrap(b.clippedSte ? b.clippedSte(gv, xv, clip) : clippedSteLoop(gv, xv, clip), x.shape));
}

export { clippedSteLoop };
