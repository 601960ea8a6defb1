import { fail } from '../core/errors.js';
import { type Tensor, wrap } from '../core/tensor.js';
import { add, div, mul, sub } from '../ops/elementwise.js';
import { approxSign } from './approx_sign.js';
import { Quantizer, type QuantizerConfig } from './quantizer.js';

export type AdaBinActForm = 'code' | 'paper';

/**
 * `adabin_act` — AdaBin's activation binarizer (Tu, Chen, Ren, Wang, "AdaBin: Improving Binary Neural
 * Networks with Adaptive Binary Sets", ECCV 2022; arXiv:2208.08084; methods.md §3.3). Input
 * quantizer with ONE pair of learnable scalars per layer (not per channel; ctx.channels is not
 * used): parameters `alpha` = α_a (init 1) and `beta` = β_a (init 0), shape [1].
 *
 * Both forms normalise and binarise the same way and share the same surrogate:
 *   V  = (x − β_a)/α_a,   Ba = sign(V)  (sign(0) = +1),  backward dBa/dV = ApproxSign'(V) = 2·max(0, 1 − |V|)
 * and differ only in the output map (option `form`):
 *   'code'  (default; the official code, `BinaryActivation`):  out = α_a·(Ba + β_a)
 *            output set {α_a(β_a − 1), α_a(β_a + 1)}: threshold β_a, but centre α_a·β_a
 *   'paper' (the paper's B(x) = β + α·sign(x − β)):            out = β_a + α_a·Ba
 *            output set {β_a − α_a, β_a + α_a}: threshold = centre = β_a
 * The two coincide only at α_a = 1 (methods.md §3.3 and §7.4). In the paper form the surrogate is
 * taken on the normalised V = (x − β)/α (sign(x − β) = sign(V) for α > 0), so the x-gradient is
 * the same as in the code form and only the α/β gradients of the output map differ.
 * Gradients reach x, α_a and β_a by autograd (through the normalisation and the output map).
 * α_a is not constrained (as in the official code): α_a = 0 gives non-finite values, and α_a < 0
 * flips the threshold direction.
 */
export class AdaBinAct extends Quantizer {
  readonly alias = 'adabin_act';
  readonly precision = 1;
  readonly alpha: Tensor;
  readonly beta: Tensor;

  constructor(readonly form: AdaBinActForm = 'code') {
    super();
    if (form !== 'code' && form !== 'paper') fail('adabin_act form', '"code" or "paper"', JSON.stringify(form));
    this.alpha = this.registerParameter('alpha', wrap(Float32Array.of(1), [1]));
    this.beta = this.registerParameter('beta', wrap(Float32Array.of(0), [1]));
  }

  apply(x: Tensor): Tensor {
    const ba = approxSign(div(sub(x, this.beta), this.alpha));
    return this.form === 'code' ? mul(this.alpha, add(ba, this.beta)) : add(this.beta, mul(this.alpha, ba));
  }

  config(): QuantizerConfig {
    return { alias: this.alias, form: this.form };
  }

  static fromConfig(c: QuantizerConfig): AdaBinAct {
    const form = c.form ?? 'code';
    if (form !== 'code' && form !== 'paper') fail('adabin_act form', '"code" or "paper"', JSON.stringify(form));
    return new AdaBinAct(form);
  }
}
