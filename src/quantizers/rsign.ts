import { fail, fmtShape } from '../core/errors.js';
import { full, type Tensor, wrap } from '../core/tensor.js';
import { customGrad } from '../ops/custom.js';
import { approxSignDerivative } from './approx_sign.js';
import { add } from '../ops/elementwise.js';
import { reshape } from '../ops/shape.js';
import { Quantizer, type QuantizerConfig, type QuantizerContext, type SignGrad } from './quantizer.js';

/**
 * `rsign` — ReActNet's RSign: sign with a learnable per-channel threshold (Liu et al., "ReActNet",
 * ECCV 2020, arXiv:2003.03488; methods.md §1.3). For activations x: [N, C, ...]:
 *
 *   forward:  q(x)_{n,c,…} = sign(x_{n,c,…} + b_c)        (sign(0) = +1; b: parameter "bias", [C], init 0)
 *   backward: dq/dx = ApproxSign'(x + b),   dL/db_c = Σ_{n,…} dL/dq · ApproxSign'(x + b)
 *
 * with ApproxSign'(u) = 2 + 2u on [−1, 0), 2 − 2u on [0, 1), 0 elsewhere (Bi-Real; `approx_sign`).
 * Input role only (the bias broadcasts over axis 1); it is ReActNet's `LearnableBias` followed by
 * Bi-Real's `BinaryActivation`, fused.
 */
export class RSign extends Quantizer {
  readonly alias = 'rsign';
  readonly precision = 1;
  readonly bias: Tensor;

  constructor(readonly channels: number) {
    super();
    if (!Number.isInteger(channels) || channels <= 0) fail('rsign channels', 'a positive integer', String(channels));
    this.bias = this.registerParameter('bias', full([channels], 0));
  }

  apply(x: Tensor): Tensor {
    const C = this.checkInput(x);
    const N = x.shape[0]!, inner = x.size / (N * C);
    // u = x + b (b broadcast over axis 1), computed once; forward and backward both read it.
    const shifted = (xv: Float32Array, bv: Float32Array): Float32Array => {
      const u = new Float32Array(xv.length);
      for (let n = 0, i = 0; n < N; n++) for (let c = 0; c < C; c++) for (let j = 0; j < inner; j++, i++) u[i] = xv[i]! + bv[c]!;
      return u;
    };
    let u: Float32Array | null = null;
    return customGrad(
      'rsign',
      [x, this.bias],
      ([xv, bv]) => {
        u = shifted(xv!.f32(), bv!.f32());
        const q = new Float32Array(u.length);
        for (let i = 0; i < q.length; i++) q[i] = u[i]! >= 0 ? 1 : -1;
        return wrap(q, x.shape);
      },
      (g) => {
        const gv = g.f32(), uv = u!;
        const gx = new Float32Array(uv.length);
        const gb = new Float32Array(C);
        for (let n = 0, i = 0; n < N; n++) {
          for (let c = 0; c < C; c++) {
            let s = 0;
            for (let j = 0; j < inner; j++, i++) {
              const d = gv[i]! * approxSignDerivative(uv[i]!);
              gx[i] = d;
              s += d;
            }
            gb[c] = gb[c]! + s;
          }
        }
        return [wrap(gx, x.shape), wrap(gb, [C])];
      },
    );
  }

  /**
   * sign(x + b) with ApproxSign's gradient, fused into the packed conv: x + b is one broadcast add
   * (b's gradient, the sum of the add's gradient over every axis but 1, flows through it), and the
   * conv packs the signs itself. The same forward bits as `apply`; b's gradient is the same sum in
   * the reduction's order. Not when `apply` was replaced.
   */
  override fusedSign(x: Tensor): { input: Tensor; grad: SignGrad } | null {
    if (this.apply !== RSign.prototype.apply) return null;
    const C = this.checkInput(x);
    return { input: add(x, reshape(this.bias, [1, C, ...Array<number>(x.rank - 2).fill(1)])), grad: { kind: 'approx_sign' } };
  }

  /** x must be [N, C, ...] with this quantizer's C; returns C. */
  private checkInput(x: Tensor): number {
    const C = this.channels;
    if (x.rank < 2 || x.shape[1] !== C) fail('rsign', `input [N, ${C}, ...] (${C} channels on axis 1)`, `shape ${fmtShape(x.shape)}`);
    return C;
  }

  config(): QuantizerConfig {
    return { alias: this.alias };
  }

  static fromConfig(_c: QuantizerConfig, ctx: QuantizerContext): RSign {
    return new RSign(ctx.channels);
  }
}
