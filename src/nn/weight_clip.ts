import { fail, fmtShape } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';

/**
 * `WeightClip` — Larq's `constraints.WeightClip`: keeps latent weights in [−clipValue, clipValue]
 * (default 1) by clamping them in place after each optimizer step. Binary layers apply it in
 * `afterStep()` when given as `kernelConstraint`; with the clipped STE (|W| <= 1) a latent weight
 * outside the clip range would otherwise get zero gradient forever.
 */
export class WeightClip {
  constructor(readonly clipValue = 1) {
    if (!(Number.isFinite(clipValue) && clipValue > 0)) fail('WeightClip clipValue', 'a finite number > 0', String(clipValue));
  }

  /** Clamp `w` to [−clipValue, clipValue] in place (its storage; gradients and the tape are untouched). Returns `w`. */
  apply(w: Tensor): Tensor {
    if (w.dtype !== 'float32' || !w.isContiguous) fail('WeightClip', 'a contiguous float32 tensor', `${w.dtype} tensor of shape ${fmtShape(w.shape)}`);
    const v = w.storage as Float32Array;
    const c = this.clipValue;
    for (let i = 0; i < v.length; i++) {
      const x = v[i]!;
      if (x > c) v[i] = c;
      else if (x < -c) v[i] = -c;
    }
    return w;
  }

  config(): { name: 'WeightClip'; clipValue: number } {
    return { name: 'WeightClip', clipValue: this.clipValue };
  }
}
