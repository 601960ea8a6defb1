import { fail } from '../core/errors.js';
import { type Tensor, wrap } from '../core/tensor.js';
import { abs, add, clamp, div, maximum, mul, sub, tanh } from '../ops/elementwise.js';
import { customGrad } from '../ops/custom.js';
import { max } from '../ops/reduce.js';
import { reshape } from '../ops/shape.js';
import { Quantizer, type QuantizerConfig, type QuantizerContext } from './quantizer.js';

export type DoReFaMode = 'activations' | 'weights';

/**
 * `dorefa` — DoReFa-Net's k-bit quantizer (Zhou et al., "DoReFa-Net", arXiv:1606.06160; Larq
 * `quantizers.DoReFaQuantizer`). With n = 2^kBit − 1 and round_n(u) = round(u·n)/n, where round is
 * half-to-even like TF's `tf.round` (so round_1(0.5) = 0):
 *
 *   mode "activations" (input role):
 *     forward:  q(x) = round_n(clamp(x, 0, 1))             levels {0, 1/n, …, 1}
 *     backward: dq/dx = 1[0 <= x <= 1]                      (STE through round_n, clamp's gradient)
 *   mode "weights" (kernel role):
 *     forward:  u = tanh(W) / (2·max|tanh(W)|) + 0.5,   q(W) = 2·round_n(u) − 1     levels {−1, …, +1}
 *     backward: dq/dW = 2·du/dW                             (STE through round_n; the tanh
 *               normalisation, max included, is differentiated by autograd, as in Larq)
 *
 * precision = kBit (default 2). max|tanh(W)| is taken over the whole tensor (Larq's reduce_max) and
 * floored at 1e-30 so an all-zero kernel quantizes to round_n(0.5) instead of NaN. When the config
 * gives no `mode`, it follows the role: "activations" for input, "weights" for kernel.
 */
export class DoReFa extends Quantizer {
  readonly alias = 'dorefa';
  readonly precision: number;
  readonly kBit: number;
  readonly mode: DoReFaMode;

  constructor(opts: { kBit?: number; mode?: DoReFaMode } = {}) {
    super();
    this.kBit = opts.kBit ?? 2;
    this.mode = opts.mode ?? 'activations';
    if (!Number.isInteger(this.kBit) || this.kBit < 1 || this.kBit > 16) fail('dorefa kBit', 'an integer from 1 to 16', String(opts.kBit));
    if (this.mode !== 'activations' && this.mode !== 'weights') fail('dorefa mode', '"activations" or "weights"', JSON.stringify(opts.mode));
    this.precision = this.kBit;
  }

  apply(x: Tensor): Tensor {
    if (this.mode === 'activations') return this.roundN(clamp(x, 0, 1));
    const t = tanh(x);
    const m = max(reshape(abs(t), [x.size]), 0);
    const u = add(div(t, maximum(mul(m, 2), 1e-30)), 0.5);
    return sub(mul(this.roundN(u), 2), 1);
  }

  /** round(u·n)/n with an identity gradient (half to even, in float32 like TF). */
  private roundN(u: Tensor): Tensor {
    const n = 2 ** this.kBit - 1;
    return customGrad('dorefa_round', [u], ([v]) => {
      const uv = v!.f32();
      const out = new Float32Array(uv.length);
      for (let i = 0; i < out.length; i++) out[i] = roundHalfEven(Math.fround(uv[i]! * n)) / n;
      return wrap(out, v!.shape);
    }, (g) => [g]);
  }

  config(): QuantizerConfig {
    return { alias: this.alias, kBit: this.kBit, mode: this.mode };
  }

  static fromConfig(c: QuantizerConfig, ctx: QuantizerContext): DoReFa {
    const k = c['kBit'] ?? 2;
    if (typeof k !== 'number' || !Number.isInteger(k) || k < 1 || k > 16) fail('dorefa kBit', 'an integer from 1 to 16', JSON.stringify(k));
    const expected: DoReFaMode = ctx.role === 'kernel' ? 'weights' : 'activations';
    const mode = c['mode'] ?? expected;
    if (mode !== 'activations' && mode !== 'weights') fail('dorefa mode', '"activations" or "weights"', JSON.stringify(mode));
    if (mode !== expected) {
      const hint = mode === 'weights' ? 'Mode "weights" quantizes kernels: pass it as kernelQuantizer.' : 'Mode "activations" quantizes inputs: pass it as inputQuantizer.';
      fail('dorefa', `mode "${expected}" as ${ctx.role} quantizer`, `mode "${mode}"`, hint);
    }
    return new DoReFa({ kBit: k, mode });
  }
}

/** Round to the nearest integer, ties to even (TF's tf.round, NumPy's rint). */
export function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v - Math.trunc(v)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
