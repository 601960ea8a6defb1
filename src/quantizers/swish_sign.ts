import { type Tensor, wrap } from '../core/tensor.js';
import { sign } from '../ops/elementwise.js';
import { customGrad } from '../ops/custom.js';
import { numOption, Quantizer, type QuantizerConfig } from './quantizer.js';

/**
 * `swish_sign` — sign with the SignSwish backward of BNN+ (Darabi et al., "BNN+: Improved Binary
 * Network Training", arXiv:1812.11800; Larq `quantizers.swish_sign` / `SwishSign`).
 *
 *   forward:  q(x) = +1 if x >= 0 else −1            (sign(0) = +1)
 *   backward: dq/dx = β·(2 − β·x·tanh(β·x/2)) / (1 + cosh(β·x))     (β = `beta`, default 5)
 *
 * The surrogate is the derivative of SS_β(x) = 2σ(βx)·(1 + βx·(1 − σ(βx))) − 1; it peaks at β for
 * x = 0 and dips slightly below 0 around |x| ≈ 2.4/β.
 */
export class SwishSign extends Quantizer {
  readonly alias = 'swish_sign';
  readonly precision = 1;

  constructor(readonly beta = 5) {
    super();
  }

  apply(x: Tensor): Tensor {
    const b = this.beta;
    return customGrad('swish_sign', [x], ([v]) => sign(v!), (g, [v]) => {
      const gv = g.f32(), xv = v!.f32();
      const out = new Float32Array(xv.length);
      for (let i = 0; i < out.length; i++) out[i] = gv[i]! * swishSignDerivative(xv[i]!, b);
      return [wrap(out, v!.shape)];
    });
  }

  config(): QuantizerConfig {
    return { alias: this.alias, beta: this.beta };
  }

  static fromConfig(c: QuantizerConfig): SwishSign {
    return new SwishSign(numOption(c, 'beta', 5, (v) => Number.isFinite(v) && v > 0));
  }
}

/** β(2 − βx·tanh(βx/2)) / (1 + cosh(βx)); 0 for large |βx| (cosh overflows to ∞, numerator stays finite). */
export function swishSignDerivative(x: number, beta: number): number {
  const bx = beta * x;
  return (beta * (2 - bx * Math.tanh(bx / 2))) / (1 + Math.cosh(bx));
}
