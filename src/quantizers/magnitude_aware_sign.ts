import type { Tensor } from '../core/tensor.js';
import { abs, greaterEqual, mul, sign } from '../ops/elementwise.js';
import { customGrad } from '../ops/custom.js';
import { numOption, Quantizer, type QuantizerConfig } from './quantizer.js';
import { channelMeanAbs } from './xnor_sign.js';

/**
 * `magnitude_aware_sign` — Bi-Real Net's magnitude-aware weight binarizer (Liu et al., "Bi-Real
 * Net", ECCV 2018, arXiv:1808.00278; Larq `quantizers.magnitude_aware_sign`). For a kernel W with
 * output channels on axis 0:
 *
 *   forward:  Ŵ_i = α_i · sign(W_i),   α_i = mean_j |W_ij|   (per output channel; sign(0) = +1)
 *   backward: dŴ/dW = α_i · 1[|W| <= clipValue]                (α is stop-gradient: no dα/dW term)
 *
 * Unlike `xnor_sign` (ReActNet's detached form, no α factor) the gradient is scaled by α, as in
 * Larq's `stop_gradient(α) · ste_sign(W)`. A tensor of rank 1 gets one α for all values.
 */
export class MagnitudeAwareSign extends Quantizer {
  readonly alias = 'magnitude_aware_sign';
  readonly precision = 1;

  constructor(readonly clipValue = 1) {
    super();
  }

  apply(w: Tensor): Tensor {
    const c = this.clipValue;
    let alpha: Tensor | null = null; // [C, 1, …], computed once at the forward and reused by the backward
    return customGrad(
      'magnitude_aware_sign',
      [w],
      ([v]) => mul(sign(v!), (alpha = channelMeanAbs(v!))),
      (g, [v]) => [mul(mul(g, greaterEqual(c, abs(v!))), alpha!)],
    );
  }

  config(): QuantizerConfig {
    return { alias: this.alias, clipValue: this.clipValue };
  }

  static fromConfig(c: QuantizerConfig): MagnitudeAwareSign {
    return new MagnitudeAwareSign(numOption(c, 'clipValue', 1, (v) => v > 0));
  }
}
