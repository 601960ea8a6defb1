import type { Tensor } from '../core/tensor.js';
import { abs, greaterEqual, mul, sign } from '../ops/elementwise.js';
import { customGrad } from '../ops/custom.js';
import { numOption, Quantizer, type QuantizerConfig } from './quantizer.js';

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
    return customGrad('ste_sign', [x], ([v]) => sign(v!), (g, [v]) => [mul(g, greaterEqual(c, abs(v!)))]);
  }

  config(): QuantizerConfig {
    return { alias: this.alias, clipValue: this.clipValue };
  }

  static fromConfig(c: QuantizerConfig): SteSign {
    return new SteSign(numOption(c, 'clipValue', 1, (v) => v > 0));
  }
}
