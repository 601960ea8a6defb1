import { fail } from '../core/errors.js';
import { full, type Tensor, wrap } from '../core/tensor.js';
import { sign } from '../ops/elementwise.js';
import { customGrad } from '../ops/custom.js';
import { numOption, Quantizer, type QuantizerConfig } from './quantizer.js';

/**
 * `ede_sign` — sign with IR-Net's Error Decay Estimator backward (Qin et al., "Forward and Backward
 * Information Retention for Accurate Binary Neural Networks", CVPR 2020, arXiv:1909.10788; also
 * AdaBin's weight backward; methods.md §1.1 and §3.2).
 *
 *   forward:  q(x) = +1 if x >= 0 else −1            (sign(0) = +1)
 *   backward: dq/dx = k · t · (1 − tanh²(t·x))
 *
 * Schedule (`onEpochStart(e, E)`, e = 0 … E−1, called by the trainer before each epoch):
 *
 *   t_e = 10^( log10(tMin) + (log10(tMax) − log10(tMin)) · e / E ),   k_e = max(1/t_e, 1)
 *
 * with tMin = 1e-3 and tMax = 10 by default (IR-Net and AdaBin code). Before any epoch has started
 * (or when no trainer drives the schedule) t = 0.1 and k = 10, the modules' defaults (k·t = 1).
 * t and k are buffers ("t", "k", shape [1]) so they are saved in checkpoints and resume exactly.
 */
export class EdeSign extends Quantizer {
  readonly alias = 'ede_sign';
  readonly precision = 1;
  /** Current t (buffer, [1]). */
  readonly t: Tensor;
  /** Current k (buffer, [1]). */
  readonly k: Tensor;

  constructor(readonly tMin = 1e-3, readonly tMax = 10) {
    super();
    if (!(tMin > 0 && tMax > 0 && Number.isFinite(tMin) && Number.isFinite(tMax))) {
      fail('ede_sign', 'tMin > 0 and tMax > 0', `tMin=${tMin}, tMax=${tMax}`);
    }
    this.t = this.registerBuffer('t', full([1], 0.1));
    this.k = this.registerBuffer('k', full([1], 10));
  }

  /** Set t and k for epoch `epoch` (0-based) of `epochs`. */
  override onEpochStart(epoch: number, epochs: number): void {
    if (!(epochs > 0)) return;
    const { t, k } = edeSchedule(epoch, epochs, this.tMin, this.tMax);
    (this.t.storage as Float32Array)[0] = t;
    (this.k.storage as Float32Array)[0] = k;
  }

  apply(x: Tensor): Tensor {
    // t and k are read at the forward: the gradient uses the values its forward pass saw.
    return edeSign(x, this.t.item(), this.k.item());
  }

  config(): QuantizerConfig {
    return { alias: this.alias, tMin: this.tMin, tMax: this.tMax };
  }

  static fromConfig(c: QuantizerConfig): EdeSign {
    const positive = (v: number): boolean => Number.isFinite(v) && v > 0;
    return new EdeSign(numOption(c, 'tMin', 1e-3, positive), numOption(c, 'tMax', 10, positive));
  }
}

/** IR-Net's EDE schedule (methods.md §3.2) at the start of epoch e (0-based) of E: t and k = max(1/t, 1). */
export function edeSchedule(epoch: number, epochs: number, tMin = 1e-3, tMax = 10): { t: number; k: number } {
  const t = 10 ** (Math.log10(tMin) + ((Math.log10(tMax) - Math.log10(tMin)) * epoch) / epochs);
  return { t, k: t < 1 ? 1 / t : 1 };
}

/** sign(x) (sign(0) = +1) with the EDE backward k·t·(1 − tanh²(t·x)); shared by ede_sign and adabin_weight. */
export function edeSign(x: Tensor, t: number, k: number): Tensor {
  return customGrad('ede_sign', [x], ([v]) => sign(v!), (g, [v]) => {
    const gv = g.f32(), xv = v!.f32();
    const out = new Float32Array(xv.length);
    for (let i = 0; i < out.length; i++) {
      const th = Math.tanh(t * xv[i]!);
      out[i] = gv[i]! * k * t * (1 - th * th);
    }
    return [wrap(out, v!.shape)];
  });
}
