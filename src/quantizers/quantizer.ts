import type { Tensor } from '../core/tensor.js';

/**
 * A quantizer = forward + pseudo-gradient + precision + config (Larq's design). `apply` returns the
 * quantized tensor; its gradient (the straight-through estimator or another surrogate) is attached
 * through `customGrad`, never through the `sign` op, whose true gradient stays 0.
 */
export interface Quantizer {
  /** Registry alias, equal to the file name (`ste_sign.ts` registers "ste_sign"). */
  readonly alias: string;
  /** Bits per value of the output (1 for binary). */
  readonly precision: number;
  apply(x: Tensor): Tensor;
  /** JSON config that `createQuantizer` turns back into an equal quantizer. */
  config(): QuantizerConfig;
}

export interface QuantizerConfig {
  alias: string;
  [option: string]: unknown;
}
