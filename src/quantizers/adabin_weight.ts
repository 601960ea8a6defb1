import { fail, fmtShape } from '../core/errors.js';
import { type Tensor, wrap } from '../core/tensor.js';
import { fresh, record } from '../autograd/tape.js';
import { add, div, maximum, mul, sqrt, square, sub } from '../ops/elementwise.js';
import { mean } from '../ops/reduce.js';
import { edeSchedule, edeSign } from './ede_sign.js';
import { numOption, Quantizer, type QuantizerConfig } from './quantizer.js';

/**
 * Floor on the per-channel variance (so α_w >= 1e-6): only there to keep U = (W − β)/α finite for a
 * constant channel (α = 0 would give 0/0). Any real weight channel has variance far above it, so
 * there α_w is exactly the population std; a floored channel gets no gradient through α_w's
 * variance path (the `maximum` routes it to the constant).
 */
export const ADABIN_VAR_FLOOR = 1e-12;

/**
 * AdaBin weight equalization W_b = α·B(U) + β with U = (W − β)/α, β = per-channel mean and α =
 * per-channel population std (both with gradient, never detached), written from differentiable ops.
 * `binarize` maps U to the binary code (AdaBinWeight passes sign with the EDE backward); tests pass a
 * smooth stand-in to finite-difference-check the mean/std paths.
 */
export function adabinEqualize(w: Tensor, binarize: (u: Tensor) => Tensor): Tensor {
  if (w.rank === 0) fail('adabin_weight', 'a weight tensor of rank >= 1', `shape ${fmtShape(w.shape)}`);
  const axes = w.rank === 1 ? [0] : Array.from({ length: w.rank - 1 }, (_, i) => i + 1);
  const beta = mean(w, axes, true); // [Co, 1, …]
  const centered = sub(w, beta);
  const alpha = sqrt(maximum(mean(square(centered), axes, true), ADABIN_VAR_FLOOR)); // population std
  const u = div(centered, alpha);
  return add(mul(alpha, binarize(u)), beta);
}


/**
 * `adabin_weight` — AdaBin's weight binarizer (Tu, Chen, Ren, Wang, "AdaBin: Improving Binary Neural
 * Networks with Adaptive Binary Sets", ECCV 2022; arXiv:2208.08084), as in the official code
 * (huawei-noah/Efficient-Computing, BinaryNetworks/AdaBin, `AdaBin_Conv2d.forward`; methods.md §3.2).
 * Kernel quantizer: W [Co, ...], statistics per output channel i over all other axes (M values; a
 * rank-1 W is one channel):
 *
 *   forward:  β_i = mean_j W_ij,   α_i = sqrt(mean_j (W_ij − β_i)²)   (population std)
 *             U = (W − β)/α,   Bw = sign(U) (sign(0) = +1),   W_b = α·Bw + β  ∈ {β_i − α_i, β_i + α_i}
 *   backward: through sign only, IR-Net's EDE  dBw/dU = k·t·(1 − tanh²(t·U));
 *             everything else by autograd: α and β are NOT detached, so W also gets gradient
 *             through the mean/std paths and the outer α·(·) + β, exactly as the official code.
 *
 * t and k are buffers (`t`, `k`, saved in the state dict). Before any epoch they are the code's
 * module defaults t = 0.1, k = 10 (k·t = 1). With `progressive` (default true, as on ImageNet and
 * in the CIFAR train.sh) `onEpochStart(e, E)` sets
 *   t_e = 10^(log10 tMin + (log10 tMax − log10 tMin)·e/E),  k_e = 1/t_e if t_e < 1 else 1,
 * with tMin = 1e-3, tMax = 10 by default (options `tMin`, `tMax`); `progressive: false` keeps the
 * defaults for the whole run (the CIFAR code without --progressive).
 *
 * Deviation: α is floored at sqrt(ADABIN_VAR_FLOOR) = 1e-6 (variance floored at 1e-12) so a
 * constant channel maps to finite values (β + 1e-6) instead of NaN; see ADABIN_VAR_FLOOR.
 *
 * `apply` runs it as one op (`adabinWeightFused`: statistics in float64, the backward in closed
 * form) instead of ~24 small ops and their gradients per layer; ONEBIT_FUSED_ADABIN=0 runs the
 * op-by-op `adabinEqualize` (the tests' reference).
 */
export class AdaBinWeight extends Quantizer {
  readonly alias = 'adabin_weight';
  readonly precision = 1;
  readonly t: Tensor;
  readonly k: Tensor;

  constructor(readonly progressive = true, readonly tMin = 1e-3, readonly tMax = 10) {
    super();
    if (!(tMin > 0 && tMax > 0)) fail('adabin_weight', 'tMin > 0 and tMax > 0', `tMin=${tMin}, tMax=${tMax}`);
    this.t = this.registerBuffer('t', wrap(Float32Array.of(0.1), [1]));
    this.k = this.registerBuffer('k', wrap(Float32Array.of(10), [1]));
  }

  override onEpochStart(epoch: number, epochs: number): void {
    if (!this.progressive || !(epochs > 0)) return;
    const { t, k } = edeSchedule(epoch, epochs, this.tMin, this.tMax);
    (this.t.storage as Float32Array)[0] = t;
    (this.k.storage as Float32Array)[0] = k;
  }

  apply(w: Tensor): Tensor {
    const t = this.t.f32()[0]!, k = this.k.f32()[0]!;
    return process.env.ONEBIT_FUSED_ADABIN === '0' ? adabinEqualize(w, (u) => edeSign(u, t, k)) : adabinWeightFused(w, t, k);
  }

  config(): QuantizerConfig {
    return { alias: this.alias, progressive: this.progressive, tMin: this.tMin, tMax: this.tMax };
  }

  static fromConfig(c: QuantizerConfig): AdaBinWeight {
    const progressive = c.progressive ?? true;
    if (typeof progressive !== 'boolean') fail('adabin_weight progressive', 'true or false', JSON.stringify(progressive));
    const pos = (v: number) => Number.isFinite(v) && v > 0;
    return new AdaBinWeight(progressive, numOption(c, 'tMin', 1e-3, pos), numOption(c, 'tMax', 10, pos));
  }
}

/**
 * The AdaBin weight binarizer (above) as one op. Per output channel of M weights, in float64:
 * β = mean W, var = mean (W − β)², α = sqrt(max(var, ADABIN_VAR_FLOOR)), U = (W − β)/α; the output is
 * fl32(fl32(α) + fl32(β)) where U >= 0, fl32(fl32(β) − fl32(α)) where U < 0 (NaN where W is NaN):
 * two values per channel, as `adabinEqualize` gives (which computes the statistics in float32 steps,
 * so the two can differ in the last bit). The backward is autograd's gradient written out: with
 * B = sign(U), s = k·t·(1 − tanh²(t·U)) (EDE) and g = dL/dW_b,
 *
 *   dL/dW_l = g_l·s_l + (Σ g − Σ g·s)/M + (U_l/M)·(Σ g·B − Σ g·s·U)
 *
 * (the first term through U, the second through β, the third through α; the third is absent for a
 * floored channel, where α is the constant floor), each sum in float64.
 */
export function adabinWeightFused(w: Tensor, t: number, k: number): Tensor {
  if (w.rank === 0) fail('adabin_weight', 'a weight tensor of rank >= 1', `shape ${fmtShape(w.shape)}`);
  const wd = w.f32('adabin_weight');
  const C = w.rank === 1 ? 1 : w.shape[0]!, M = C ? wd.length / C : 0;
  const out = new Float32Array(wd.length);
  const beta = new Float64Array(C), alpha = new Float64Array(C), floored = new Uint8Array(C);
  const fr = Math.fround;
  for (let c = 0; c < C; c++) {
    const o = c * M;
    let sum = 0;
    for (let j = 0; j < M; j++) sum += wd[o + j]!;
    const b = sum / M;
    let sq = 0;
    for (let j = 0; j < M; j++) {
      const d = wd[o + j]! - b;
      sq += d * d;
    }
    const v = sq / M;
    floored[c] = v < ADABIN_VAR_FLOOR ? 1 : 0;
    const a = Math.sqrt(v < ADABIN_VAR_FLOOR ? ADABIN_VAR_FLOOR : v);
    beta[c] = b;
    alpha[c] = a;
    const a32 = fr(a), b32 = fr(b), hi = fr(a32 + b32), lo = fr(b32 - a32);
    for (let j = 0; j < M; j++) {
      const u = (wd[o + j]! - b) / a;
      out[o + j] = u >= 0 ? hi : u < 0 ? lo : NaN;
    }
  }
  return record(wrap(out, w.shape), 'adabin_weight', [w], (g) => {
    const gd = g.f32();
    const dx = new Float32Array(wd.length);
    const sv = new Float64Array(M), uv = new Float64Array(M);
    for (let c = 0; c < C; c++) {
      const o = c * M, a = alpha[c]!, b = beta[c]!;
      let G = 0, GS = 0, GB = 0, GSU = 0;
      for (let j = 0; j < M; j++) {
        const u = (wd[o + j]! - b) / a, th = Math.tanh(t * u), s = k * t * (1 - th * th), gj = gd[o + j]!;
        uv[j] = u;
        sv[j] = s;
        G += gj;
        GS += gj * s;
        GB += u >= 0 ? gj : u < 0 ? -gj : NaN;
        GSU += gj * s * u;
      }
      const viaBeta = (G - GS) / M, viaAlpha = floored[c] ? 0 : (GB - GSU) / M;
      for (let j = 0; j < M; j++) dx[o + j] = gd[o + j]! * sv[j]! + viaBeta + uv[j]! * viaAlpha;
    }
    return [fresh(wrap(dx, w.shape))];
  });
}
