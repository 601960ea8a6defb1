import { fail, fmtShape } from '../core/errors.js';
import { type Tensor, wrap } from '../core/tensor.js';
import { add, div, maximum, mul, sqrt, square, sub } from '../ops/elementwise.js';
import { mean } from '../ops/reduce.js';
import { edeSchedule, edeSign } from './ede_sign.js';
import { numOption, Quantizer, type QuantizerConfig } from './quantizer.js';

/**
 * Floor on the per-channel variance (so α_w >= 1e-6): only there to keep U = (W − β)/α finite for a
 * constant channel (α = 0 would give 0/0). Any real weight channel has variance far above it, so
 * there α_w is exactly the population std; a floored channel gets no gradient through α_w's
 * variance path (the `maximum` routes it to the constant).
 */
export const ADABIN_VAR_FLOOR = 1e-12;

/**
 * AdaBin weight equalization W_b = α·B(U) + β with U = (W − β)/α, β = per-channel mean and α =
 * per-channel population std (both with gradient, never detached), written from differentiable ops.
 * `binarize` maps U to the binary code (AdaBinWeight passes sign with the EDE backward); tests pass a
 * smooth stand-in to finite-difference-check the mean/std paths.
 */
export function adabinEqualize(w: Tensor, binarize: (u: Tensor) => Tensor): Tensor {
  if (w.rank === 0) fail('adabin_weight', 'a weight tensor of rank >= 1', `shape ${fmtShape(w.shape)}`);
  const axes = w.rank === 1 ? [0] : Array.from({ length: w.rank - 1 }, (_, i) => i + 1);
  const beta = mean(w, axes, true); // [Co, 1, …]
  const centered = sub(w, beta);
  const alpha = sqrt(maximum(mean(square(centered), axes, true), ADABIN_VAR_FLOOR)); // population std
  const u = div(centered, alpha);
  return add(mul(alpha, binarize(u)), beta);
}


/**
 * `adabin_weight` — AdaBin's weight binarizer (Tu, Chen, Ren, Wang, "AdaBin: Improving Binary Neural
 * Networks with Adaptive Binary Sets", ECCV 2022; arXiv:2208.08084), as in the official code
 * (huawei-noah/Efficient-Computing, BinaryNetworks/AdaBin, `AdaBin_Conv2d.forward`; methods.md §3.2).
 * Kernel quantizer: W [Co, ...], statistics per output channel i over all other axes (M values; a
 * rank-1 W is one channel):
 *
 *   forward:  β_i = mean_j W_ij,   α_i = sqrt(mean_j (W_ij − β_i)²)   (population std)
 *             U = (W − β)/α,   Bw = sign(U) (sign(0) = +1),   W_b = α·Bw + β  ∈ {β_i − α_i, β_i + α_i}
 *   backward: through sign only, IR-Net's EDE  dBw/dU = k·t·(1 − tanh²(t·U));
 *             everything else by autograd: α and β are NOT detached, so W also gets gradient
 *             through the mean/std paths and the outer α·(·) + β, exactly as the official code.
 *
 * t and k are buffers (`t`, `k`, saved in the state dict). Before any epoch they are the code's
 * module defaults t = 0.1, k = 10 (k·t = 1). With `progressive` (default true, as on ImageNet and
 * in the CIFAR train.sh) `onEpochStart(e, E)` sets
 *   t_e = 10^(log10 tMin + (log10 tMax − log10 tMin)·e/E),  k_e = 1/t_e if t_e < 1 else 1,
 * with tMin = 1e-3, tMax = 10 by default (options `tMin`, `tMax`); `progressive: false` keeps the
 * defaults for the whole run (the CIFAR code without --progressive).
 *
 * Deviation: α is floored at sqrt(ADABIN_VAR_FLOOR) = 1e-6 (variance floored at 1e-12) so a
 * constant channel maps to finite values (β + 1e-6) instead of NaN; see ADABIN_VAR_FLOOR.
 */
export class AdaBinWeight extends Quantizer {
  readonly alias = 'adabin_weight';
  readonly precision = 1;
  readonly t: Tensor;
  readonly k: Tensor;

  constructor(readonly progressive = true, readonly tMin = 1e-3, readonly tMax = 10) {
    super();
    if (!(tMin > 0 && tMax > 0)) fail('adabin_weight', 'tMin > 0 and tMax > 0', `tMin=${tMin}, tMax=${tMax}`);
    this.t = this.registerBuffer('t', wrap(Float32Array.of(0.1), [1]));
    this.k = this.registerBuffer('k', wrap(Float32Array.of(10), [1]));
  }

  override onEpochStart(epoch: number, epochs: number): void {
    if (!this.progressive || !(epochs > 0)) return;
    const { t, k } = edeSchedule(epoch, epochs, this.tMin, this.tMax);
    (this.t.storage as Float32Array)[0] = t;
    (this.k.storage as Float32Array)[0] = k;
  }

  apply(w: Tensor): Tensor {
    const t = this.t.f32()[0]!, k = this.k.f32()[0]!;
    return adabinEqualize(w, (u) => edeSign(u, t, k));
  }

  config(): QuantizerConfig {
    return { alias: this.alias, progressive: this.progressive, tMin: this.tMin, tMax: this.tMax };
  }

  static fromConfig(c: QuantizerConfig): AdaBinWeight {
    const progressive = c.progressive ?? true;
    if (typeof progressive !== 'boolean') fail('adabin_weight progressive', 'true or false', JSON.stringify(progressive));
    const pos = (v: number) => Number.isFinite(v) && v > 0;
    return new AdaBinWeight(progressive, numOption(c, 'tMin', 1e-3, pos), numOption(c, 'tMax', 10, pos));
  }
}
