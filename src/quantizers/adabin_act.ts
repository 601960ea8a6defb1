import { fail } from '../core/errors.js';
import { backend, type Tensor, wrap } from '../core/tensor.js';
import { adabinAct as refAdabinAct, adabinActBackward as refAdabinActBackward } from '../backends/ref/adabin_act.js';
import { fresh, needsGrad, record } from '../autograd/tape.js';
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
 * Gradients reach x, α_a and β_a through the normalisation and the output map, as autograd of the
 * formulas would send them. `apply` runs them as one op (`adabinActFused`: one pass forward, one
 * backward, instead of five elementwise ops, two broadcast reductions and their gradients);
 * ONEBIT_FUSED_ADABIN=0 runs the op-by-op composition (`adabinActComposed`, the tests' reference).
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
    return process.env.ONEBIT_FUSED_ADABIN === '0' ? adabinActComposed(x, this.alpha, this.beta, this.form) : adabinActFused(x, this.alpha, this.beta, this.form);
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

/** AdaBin's activation binarizer op by op (autograd of each step): the reference for `adabinActFused`. */
export function adabinActComposed(x: Tensor, alpha: Tensor, beta: Tensor, form: AdaBinActForm): Tensor {
  const ba = approxSign(div(sub(x, beta), alpha));
  return form === 'code' ? mul(alpha, add(ba, beta)) : add(beta, mul(alpha, ba));
}

/**
 * AdaBin's activation binarizer as one op, forward and backward one pass each (the backend's
 * `adabinAct` kernels, else backends/ref/adabin_act.ts, which gives the formulas). alpha and beta:
 * shape [1]. Values and the x-gradient equal `adabinActComposed` bit for bit (the same float32
 * steps in the same order); the α/β gradients are the same sums taken in float64 in a fixed order
 * (the composition sums in the backend's order), so they agree to rounding.
 */
export function adabinActFused(x: Tensor, alpha: Tensor, beta: Tensor, form: AdaBinActForm): Tensor {
  if (alpha.size !== 1 || beta.size !== 1) fail('adabin_act', 'alpha and beta with one value each', `${alpha.size} and ${beta.size}`);
  const xd = x.f32('adabin_act');
  const a = alpha.f32()[0]!, b = beta.f32()[0]!;
  const code = form === 'code';
  const be = backend();
  const y = (be.adabinAct ?? refAdabinAct)(xd, a, b, code);
  return record(wrap(y, x.shape), 'adabin_act', [x, alpha, beta], (g) => {
    const r = (be.adabinActBackward ?? refAdabinActBackward)(g.f32(), xd, a, b, code, needsGrad(x));
    return [r.dx && fresh(wrap(r.dx, x.shape)), needsGrad(alpha) ? wrap(Float32Array.of(r.da), alpha.shape) : null, needsGrad(beta) ? wrap(Float32Array.of(r.db), beta.shape) : null];
  });
}
