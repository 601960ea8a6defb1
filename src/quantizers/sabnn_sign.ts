import { fail, fmtShape } from '../core/errors.js';
import { type Tensor, wrap } from '../core/tensor.js';
import { abs, add, greaterEqual, mul, neg, sign, sub } from '../ops/elementwise.js';
import { customGrad } from '../ops/custom.js';
import { sum } from '../ops/reduce.js';
import { reshape } from '../ops/shape.js';
import { numOption, Quantizer, type QuantizerConfig, type QuantizerContext } from './quantizer.js';
import { channelMeanAbs } from './xnor_sign.js';

export type SabnnVariant = 'A' | 'B';

/**
 * `sabnn_sign` — a RECONSTRUCTION of the state-aware weight binarizer of SA-BNN (Liu, Chen, Zhuang,
 * Shen, Zhang, Ding, "SA-BNN: State-Aware Binary Neural Network", AAAI 2021). Only the paper's
 * abstract could be verified: it says the latent weights are updated with *independent gradient
 * coefficients for the two states* {−1, +1}. The exact rule, whether the coefficients are learned,
 * and their defaults are NOT public; everything below follows methods.md §2.3–2.4 and is labelled
 * there as an unverified reconstruction. Results obtained with this quantizer are results of the
 * reconstruction, not SA-BNN's published numbers, and must not be reported as such.
 *
 * Kernel quantizer: W [Co, ...] with output channels on axis 0 (a rank-1 W is one channel); per
 * channel i, b_ij = sign(W_ij) with sign(0) = +1, and G = dL/dŴ. Two readings (option `variant`):
 *
 * (A) gradient-only coefficients (the literal reading of the abstract):
 *     forward:  Ŵ_i = α_i · sign(W_i),  α_i = mean_j |W_ij|   (detached, as in xnor_sign / ReActNet)
 *     backward: dL/dW_ij = c(b_ij) · G_ij · 1[|W_ij| <= clipValue],
 *               c(+1) = tauPlus, c(−1) = tauMinus = rho · tauPlus  (fixed hyper-parameters)
 *     Options `rho` (= τ−/τ+, default 0.8; rho = 1 gives back xnor_sign's gradient up to the factor
 *     tauPlus) and `tauPlus` (default 1). The defaults are my choice: the paper's values are unknown
 *     (methods.md suggests sweeping rho over {0.5, 0.8, 1.25, 2}).
 *
 * (B) state-aware learnable scaling factors (default; the spec author's uncertain recollection):
 *     forward:  Ŵ_ij = +τ+_i if W_ij >= 0 else −τ−_i
 *     backward: dL/dW_ij  = τ_{b_ij,i} · G_ij · 1[|W_ij| <= clipValue]
 *               dL/dτ+_i  = +Σ_{j: W_ij >= 0} G_ij
 *               dL/dτ−_i  = −Σ_{j: W_ij <  0} G_ij
 *     τ± are learnable per output channel (ctx.channels of them), stored as the parameters
 *     `tauPlus` and `tauMinus`; the values used are their absolute values (τ = |stored|, so τ >= 0
 *     always; the gradient to the stored value is multiplied by sign(stored), sign(0) = +1). While
 *     the stored values stay positive (they start positive) this is exactly the rule above.
 *     Initialisation: τ+_i = τ−_i = mean_j |W_ij|, taken lazily from the first W this quantizer sees
 *     (the weights do not exist yet when the quantizer is built); a channel with mean|W_i| = 0 gets 1.
 *     The buffer `initialized` (0/1) records that this happened, so a loaded checkpoint is not
 *     re-initialised. Option `init` (> 0) instead sets τ± = init at construction.
 *     The output is still 1-bit per weight: Ŵ = ((τ+ + τ−)/2)·sign(W) + (τ+ − τ−)/2.
 *
 * precision 1 in both variants. `clipValue` (default 1) is the STE clipping threshold.
 */
export class SabnnSign extends Quantizer {
  readonly alias = 'sabnn_sign';
  readonly precision = 1;
  readonly tauPlusParam: Tensor | null = null;
  readonly tauMinusParam: Tensor | null = null;
  private readonly initialized: Tensor | null = null;

  constructor(
    readonly channels: number,
    readonly variant: SabnnVariant = 'B',
    readonly rho = 0.8,
    readonly tauPlus = 1,
    readonly clipValue = 1,
    readonly init?: number,
  ) {
    super();
    if (variant !== 'A' && variant !== 'B') fail('sabnn_sign variant', '"A" or "B"', JSON.stringify(variant));
    if (variant === 'B') {
      if (!Number.isInteger(channels) || channels < 1) fail('sabnn_sign channels', 'a positive integer', String(channels));
      const v = init ?? 0;
      this.tauPlusParam = this.registerParameter('tauPlus', wrap(new Float32Array(channels).fill(v), [channels]));
      this.tauMinusParam = this.registerParameter('tauMinus', wrap(new Float32Array(channels).fill(v), [channels]));
      this.initialized = this.registerBuffer('initialized', wrap(Float32Array.of(init === undefined ? 0 : 1), [1]));
    }
  }

  /** τ+ = c(+1) and τ− = c(−1) of variant A. */
  get tauMinus(): number {
    return this.rho * this.tauPlus;
  }

  apply(w: Tensor): Tensor {
    return this.variant === 'A' ? this.applyA(w) : this.applyB(w);
  }

  private applyA(w: Tensor): Tensor {
    const c = this.clipValue, tp = this.tauPlus, tm = this.tauMinus;
    return customGrad(
      'sabnn_sign_a',
      [w],
      ([v]) => mul(sign(v!), channelMeanAbs(v!)),
      (g, [v]) => {
        const coef = add(tm, mul(greaterEqual(v!, 0), tp - tm)); // τ+ where W >= 0, τ− where W < 0
        return [mul(mul(g, coef), greaterEqual(c, abs(v!)))];
      },
    );
  }

  private applyB(w: Tensor): Tensor {
    const bshape = this.channelShape(w);
    if (this.initialized!.f32()[0] === 0) this.initFrom(w);
    const c = this.clipValue;
    const axes = w.rank === 1 ? [0] : Array.from({ length: w.rank - 1 }, (_, i) => i + 1);
    const tp = reshape(abs(this.tauPlusParam!), bshape);
    const tm = reshape(abs(this.tauMinusParam!), bshape);
    return customGrad(
      'sabnn_sign_b',
      [w, tp, tm],
      ([v, p, m]) => {
        const pos = greaterEqual(v!, 0);
        return sub(mul(pos, p!), mul(sub(1, pos), m!));
      },
      (g, [v, p, m]) => {
        const pos = greaterEqual(v!, 0);
        const negm = sub(1, pos);
        const coef = add(mul(pos, p!), mul(negm, m!));
        return [
          mul(mul(g, coef), greaterEqual(c, abs(v!))),
          sum(mul(g, pos), axes, true),
          neg(sum(mul(g, negm), axes, true)),
        ];
      },
    );
  }

  /** [C, 1, …, 1] (or [1] for a rank-1 W), checking C against the channel count τ± were sized for. */
  private channelShape(w: Tensor): number[] {
    if (w.rank === 0) fail('sabnn_sign', 'a weight tensor of rank >= 1', `shape ${fmtShape(w.shape)}`);
    const C = w.rank === 1 ? 1 : w.shape[0]!;
    if (C !== this.channels) {
      fail('sabnn_sign', `a kernel with ${this.channels} output channels on axis 0`, `shape ${fmtShape(w.shape)}`);
    }
    return w.rank === 1 ? [1] : [C, ...Array<number>(w.rank - 1).fill(1)];
  }

  /** τ+_i = τ−_i = mean_j |W_ij| (1 for an all-zero channel), written in place. */
  private initFrom(w: Tensor): void {
    const a = channelMeanAbs(w).f32();
    const p = this.tauPlusParam!.storage as Float32Array, m = this.tauMinusParam!.storage as Float32Array;
    for (let i = 0; i < this.channels; i++) {
      const v = a[i]!;
      p[i] = m[i] = v > 0 && Number.isFinite(v) ? v : 1;
    }
    (this.initialized!.storage as Float32Array)[0] = 1;
  }

  config(): QuantizerConfig {
    if (this.variant === 'A') return { alias: this.alias, variant: 'A', rho: this.rho, tauPlus: this.tauPlus, clipValue: this.clipValue };
    const c: QuantizerConfig = { alias: this.alias, variant: 'B', clipValue: this.clipValue };
    if (this.init !== undefined) c.init = this.init;
    return c;
  }

  static fromConfig(c: QuantizerConfig, ctx: QuantizerContext): SabnnSign {
    const variant = c.variant ?? 'B';
    if (variant !== 'A' && variant !== 'B') fail('sabnn_sign variant', '"A" or "B"', JSON.stringify(variant));
    const pos = (v: number) => Number.isFinite(v) && v > 0;
    const init = c.init === undefined ? undefined : numOption(c, 'init', 1, pos);
    return new SabnnSign(ctx.channels, variant, numOption(c, 'rho', 0.8, pos), numOption(c, 'tauPlus', 1, pos), numOption(c, 'clipValue', 1, pos), init);
  }
}
