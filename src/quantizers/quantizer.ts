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

  /**
   * For an input quantizer whose forward is exactly sign(x) (±1, sign(0) = +1, NaN stays NaN) and
   * whose pseudo-gradient is pointwise in x: that gradient on arrays. Binary layers then fuse the
   * quantizer into the packed conv (ops/binary_forward.ts `packedSignConv2d`): the ±1 tensor is
   * never stored, the conv packs x's signs itself, and `apply` is not called. Null (the default)
   * for every other quantizer, and for a sign quantizer whose `apply` was overridden or patched.
   */
  signGrad(): SignGrad | null {
    return null;
  }

  /**
   * The fused form of this input quantizer for binary layers: sign(input) with the pointwise
   * pseudo-gradient `grad`, where `input` is x itself (a sign quantizer: `signGrad`) or a tensor
   * computed from x with ordinary ops (ReActNet's RSign: x + b, so sign(x + b) fuses too and b's
   * gradient flows through the add). Null when the quantizer does not fuse.
   */
  fusedSign(x: Tensor): { input: Tensor; grad: SignGrad } | null {
    const grad = this.signGrad();
    return grad ? { input: x, grad } : null;
  }

  override describe(): string {
    return this.alias;
  }
}

/**
 * The pointwise pseudo-gradient of a sign quantizer, as data (so a backend can fuse it into a
 * conv's backward): 'clipped_ste' dL/dx = dL/dq·1[−clip <= x <= clip] (ste_sign); 'approx_sign'
 * dL/dx = dL/dq·ApproxSign'(x) (approx_sign). ops/binary_forward.ts `applySignGrad` runs it.
 */
export type SignGrad = { readonly kind: 'clipped_ste'; readonly clip: number } | { readonly kind: 'approx_sign' };

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
