import { fail } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { Module } from '../nn/module.js';

/**
 * A quantizer = forward + pseudo-gradient + precision + config (Larq's design). `apply` returns the
 * quantized tensor; its gradient (the straight-through estimator or another surrogate) is attached
 * through `customGrad`, never through the `sign` op, whose true gradient stays 0.
 *
 * Quantizers are Modules: the ones with learnable state (ReActNet's RSign bias, AdaBin's α/β,
 * ReBNN's scale, SA-BNN's τ±) register parameters and buffers, which then appear in the binary
 * layer's state dict under `inputQuantizer.*` / `kernelQuantizer.*`, and they can use the
 * trainer's hooks (`onEpochStart`, `afterStep`, `auxLoss`).
 */
export abstract class Quantizer extends Module {
  /** Registry alias, equal to the file name (`ste_sign.ts` registers "ste_sign"). */
  abstract readonly alias: string;
  /** Bits per value of the output (1 for binary). */
  abstract readonly precision: number;
  abstract apply(x: Tensor): Tensor;
  /** JSON config that `createQuantizer` turns back into an equal quantizer. */
  abstract config(): QuantizerConfig;

  forward(x: Tensor): Tensor {
    return this.apply(x);
  }

  override describe(): string {
    return this.alias;
  }
}

export interface QuantizerConfig {
  alias: string;
  [option: string]: unknown;
}

/**
 * Where a quantizer is used, so it can size its parameters: `role` "input" quantizes activations
 * [N, C, ...] with `channels` = C; "kernel" quantizes weights [Cout, ...] with `channels` = Cout.
 */
export interface QuantizerContext {
  role: 'input' | 'kernel';
  channels: number;
  /** The shape of the tensor to quantize when known up front (kernel role: the weight's shape). */
  shape?: readonly number[];
}

/** Read an optional numeric option from a config, with a clear error for a bad value. */
export function numOption(c: QuantizerConfig, key: string, dflt: number, check: (v: number) => boolean = Number.isFinite): number {
  const v = c[key];
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !check(v)) fail(`${c.alias} ${key}`, 'a valid number', JSON.stringify(v));
  return v;
}
