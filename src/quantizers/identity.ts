import type { Tensor } from '../core/tensor.js';
import { Quantizer, type QuantizerConfig } from './quantizer.js';

/**
 * `identity` — no quantization: the value passes through unchanged, at full (32-bit) precision.
 *
 *   forward:  q(x) = x
 *   backward: dq/dx = 1                      (the true gradient; no straight-through estimator)
 *
 * It keeps one side of a binary layer real while the layer keeps its place, parameter names and
 * hooks: the `float` method preset (full-precision teachers and baselines) uses it on both sides,
 * and ReActNet's two-step recipe (methods.md §1.6) on the weights in step 1 (`--binarize
 * activations`). Summaries count its layers as 32-bit; `.onebit` export rejects them (not 1-bit).
 */
export class Identity extends Quantizer {
  readonly alias = 'identity';
  readonly precision = 32;

  apply(x: Tensor): Tensor {
    return x;
  }

  config(): QuantizerConfig {
    return { alias: this.alias };
  }

  static fromConfig(): Identity {
    return new Identity();
  }
}
