import { fail, fmtShape } from '../core/errors.js';
import { type Tensor, wrap } from '../core/tensor.js';
import { mul, sign } from '../ops/elementwise.js';
import { clippedSte } from './ste_sign.js';
import { customGrad } from '../ops/custom.js';
import { numOption, Quantizer, type QuantizerConfig } from './quantizer.js';

/**
 * `xnor_sign` — XNOR-Net's scaled weight binarizer (Rastegari et al., ECCV 2016) in the detached
 * form ReActNet uses (methods.md §1.2). For a kernel W with output channels on axis 0:
 *
 *   forward:  Ŵ_i = α_i · sign(W_i),  α_i = mean_j |W_ij|   (per output channel, j over the rest)
 *   backward: dŴ/dW = 1[|W| <= clipValue]  (clipped STE; α is detached, no α factor)
 *
 * Meant as a kernel quantizer; a tensor of rank 1 gets one α for all values.
 */
export class XnorSign extends Quantizer {
  readonly alias = 'xnor_sign';
  readonly precision = 1;

  constructor(readonly clipValue = 1) {
    super();
  }

  apply(w: Tensor): Tensor {
    const c = this.clipValue;
    return customGrad('xnor_sign', [w], ([v]) => mul(sign(v!), channelMeanAbs(v!)), (g, [v]) => [clippedSte(g, v!, c)]);
  }

  config(): QuantizerConfig {
    return { alias: this.alias, clipValue: this.clipValue };
  }

  static fromConfig(c: QuantizerConfig): XnorSign {
    return new XnorSign(numOption(c, 'clipValue', 1, (v) => v > 0));
  }
}

/** mean |W| over all axes but 0, shaped [C, 1, 1, …] to broadcast against W (no gradient). */
export function channelMeanAbs(w: Tensor): Tensor {
  if (w.rank === 0) fail('xnor_sign', 'a tensor of rank >= 1', `shape ${fmtShape(w.shape)}`);
  const C = w.rank === 1 ? 1 : w.shape[0]!;
  const per = w.size / C;
  const v = w.f32();
  const out = new Float32Array(C);
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let j = 0; j < per; j++) s += Math.abs(v[c * per + j]!);
    out[c] = s / per;
  }
  return wrap(out, w.rank === 1 ? [1] : [C, ...Array(w.rank - 1).fill(1)]);
}
