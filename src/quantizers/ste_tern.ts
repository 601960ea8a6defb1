import { fail } from '../core/errors.js';
import { type Tensor, wrap } from '../core/tensor.js';
import { customGrad } from '../ops/custom.js';
import { numOption, Quantizer, type QuantizerConfig } from './quantizer.js';

/**
 * `ste_tern` — ternarization with the clipped straight-through estimator (Larq
 * `quantizers.ste_tern` / `SteTern`; Ternary Weight Networks: Li, Zhang & Liu, arXiv:1605.04711).
 *
 *   forward:  q(x) = +1 if x >= Δ (and x > 0),  −1 if x <= −Δ (and x < 0),  0 otherwise
 *             (Larq's sign(sign(x + Δ) + sign(x − Δ)), with TF's sign(0) = 0; a value exactly at
 *             ±Δ goes to ±1, and with Δ = 0 an exact zero stays 0)
 *             Δ = thresholdValue (default 0.05), or with `ternaryWeightNetworks: true`
 *             Δ = 0.7 · mean|x| over the whole tensor (TWN's rule; recomputed on every call)
 *   backward: dq/dx = 1[|x| <= clipValue]            (clipValue = 1 by default)
 *
 * Three levels, so precision = 2 (Larq reports 2 as well).
 */
export class SteTern extends Quantizer {
  readonly alias = 'ste_tern';
  readonly precision = 2;
  readonly thresholdValue: number;
  readonly ternaryWeightNetworks: boolean;
  readonly clipValue: number;

  constructor(opts: { thresholdValue?: number; ternaryWeightNetworks?: boolean; clipValue?: number } = {}) {
    super();
    this.thresholdValue = opts.thresholdValue ?? 0.05;
    this.ternaryWeightNetworks = opts.ternaryWeightNetworks ?? false;
    this.clipValue = opts.clipValue ?? 1;
    if (!(Number.isFinite(this.thresholdValue) && this.thresholdValue >= 0)) fail('ste_tern thresholdValue', 'a number >= 0', String(this.thresholdValue));
    if (!(this.clipValue > 0)) fail('ste_tern clipValue', 'a number > 0', String(this.clipValue));
  }

  /** The threshold Δ used for `x`. */
  threshold(x: Tensor): number {
    if (!this.ternaryWeightNetworks) return this.thresholdValue;
    const v = x.f32();
    if (v.length === 0) return 0;
    let s = 0;
    for (let i = 0; i < v.length; i++) s += Math.abs(v[i]!);
    return Math.fround((0.7 * s) / v.length);
  }

  apply(x: Tensor): Tensor {
    const clip = this.clipValue;
    return customGrad(
      'ste_tern',
      [x],
      ([v]) => {
        const d = this.threshold(v!);
        const xv = v!.f32();
        const q = new Float32Array(xv.length);
        for (let i = 0; i < q.length; i++) {
          const e = xv[i]!;
          q[i] = e >= d && e > 0 ? 1 : e <= -d && e < 0 ? -1 : 0;
        }
        return wrap(q, v!.shape);
      },
      (g, [v]) => {
        const gv = g.f32(), xv = v!.f32();
        const out = new Float32Array(xv.length);
        for (let i = 0; i < out.length; i++) out[i] = Math.abs(xv[i]!) <= clip ? gv[i]! : 0;
        return [wrap(out, v!.shape)];
      },
    );
  }

  config(): QuantizerConfig {
    return { alias: this.alias, thresholdValue: this.thresholdValue, ternaryWeightNetworks: this.ternaryWeightNetworks, clipValue: this.clipValue };
  }

  static fromConfig(c: QuantizerConfig): SteTern {
    const twn = c['ternaryWeightNetworks'];
    if (twn !== undefined && typeof twn !== 'boolean') fail(`${c.alias} ternaryWeightNetworks`, 'true or false', JSON.stringify(twn));
    return new SteTern({
      thresholdValue: numOption(c, 'thresholdValue', 0.05, (v) => Number.isFinite(v) && v >= 0),
      ternaryWeightNetworks: twn,
      clipValue: numOption(c, 'clipValue', 1, (v) => v > 0),
    });
  }
}
