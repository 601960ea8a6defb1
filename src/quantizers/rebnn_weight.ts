import { fail, fmtShape } from '../core/errors.js';
import { rng } from '../core/rng.js';
import { type Tensor, wrap } from '../core/tensor.js';
import { customGrad } from '../ops/custom.js';
import { numOption, Quantizer, type QuantizerConfig, type QuantizerContext } from './quantizer.js';

/**
 * A quantizer context that may also carry the shape of the tensor to quantize (for the kernel
 * role: the weight's shape [Co, ...]). `rebnn_weight` sizes its previous-sign buffer from it at
 * construction; without it the buffer is created at the first `apply` (see `RebnnWeight`).
 */
export interface ShapedQuantizerContext extends QuantizerContext {
  shape?: readonly number[];
}

/** What the latest backward computed, per output channel (for inspection and tests; float64, the values used). */
export interface RebnnStats {
  /** Balanced parameter γ_i used for the step. */
  gamma: Float64Array;
  /** flip_i: fraction of channel i's signs that differ from the stored previous signs. */
  flip: Float64Array;
  /** max_j |G_ij|, G = dL/dŴ. */
  gradMax: Float64Array;
  /** L_R = Σ_i γ_i/2 · ||W_i − Ŵ_i||² of the step. */
  reconLoss: number;
}

export type RebnnInit = 'mean_abs' | 'randn';

export interface RebnnOptions {
  /** Constant factor of the forward: Ŵ = c0·|s|·sign(W). 1 = paper; 0.02 = the released code. */
  c0?: number;
  /** 'adaptive' = the paper's rule; a number = constant γ (2e-4 = what the released code computes, a bug). */
  gamma?: 'adaptive' | number;
  /** Clamp range of the adaptive γ (the code's `thresholds`). */
  gammaMin?: number;
  gammaMax?: number;
  /** true: STE mask 1[|W| <= 1] (paper); false: no mask (released code). */
  steClip?: boolean;
  /** Initial s: 'mean_abs' (lazy, from the first W) or 'randn' (released code, seeded rng()). */
  init?: RebnnInit;
}

/**
 * `rebnn_weight` — ReBNN's weight binarizer (Xu et al., AAAI 2023; methods.md §4) with a learned
 * per-output-channel scale α = |s| and the weighted reconstruction loss whose weight γ (the
 * "balanced parameter") is set each step from the channel's sign-flip fraction.
 *
 *   forward:  Ŵ_ij = c0 · α_i · b_ij,   b = sign(W) (sign(0) = +1),  α_i = |s_i|
 *   backward (G = dL/dŴ, M = weights per channel, R = W − Ŵ):
 *     flip_i = (1/M) Σ_j 1[b_ij ≠ prev_ij]           prev = signs of the previous optimizer step
 *     γ_i    = clamp(flip_i · max_j |G_ij|, gammaMin, gammaMax)     (gamma: 'adaptive', default)
 *            = the constant `gamma`                                  (gamma: number)
 *     dW     = α_i · G · 1[|W| <= 1] + γ_i · R                        (steClip: false drops the mask)
 *     dα_i   = Σ_j G_ij·c0·b_ij − γ_i · Σ_j R_ij·c0·b_ij
 *     ds_i   = dα_i · sign(s_i)                                      (sign(0) = +1)
 *   L_R = Σ_i γ_i/2 · ||W_i − Ŵ_i||² enters through dW and dα only (γ is not differentiated);
 *   its value for the step is returned by `auxLoss()` so the trainer's logged loss includes it.
 *   The released code never reports it: its logged loss excludes L_R (methods.md §4.4).
 *
 * Faithfulness notes (methods.md §4.4, §7.1–7.3):
 * - γ: the released code's `round_pass` computes min(p, 1e-5) then max(·, 2e-4), which is always
 *   2e-4 — a bug that makes γ a constant. `gamma: 2e-4` reproduces that behaviour; the default
 *   'adaptive' is the paper's (intended) rule clamp(p, 1e-5, 2e-4).
 * - Previous signs: stored exactly (buffer `prevSign`, ±1, 0 = not yet set) instead of the code's
 *   `W − W.grad` approximation. The signs a backward used are committed in `afterStep()`, i.e.
 *   after the optimizer step that backward fed, so the next step's flip_i compares b^{t+1} with b^t
 *   (the paper's ||b^t − b^{t−1}||_0 / M). Committing sign(W) *as it is after the step* — the
 *   literal reading of methods.md §4.6's pseudocode — would make the next forward's signs equal the
 *   stored ones, flip ≡ 0 and γ ≡ gammaMin. The buffer is filled with sign(W) at the first forward,
 *   so the first step has flip = 0 (γ = gammaMin). Backwards without an optimizer step in between
 *   (gradient checks) all compare against the same stored signs.
 * - dα uses b (the exact derivative); the code's first term uses Σ G·W instead.
 * - The STE factor is α, not c0·α, as in the code (with c0 = 1 they agree).
 * - c0 defaults to 1 (paper); 0.02 is the code's extra constant.
 * - init: 'mean_abs' (default) sets s_i = mean_j|W_ij| / c0 from the first W this quantizer sees
 *   (lazily: the context gives only the channel count). So Ŵ starts as XNOR-Net's α·sign(W), which
 *   is the minimiser of ||W_i − α b_i||² over α: L_R starts at its optimum in α, and the
 *   reconstruction term of dα is 0 at the first step. A buffer `initialized` records that this happened,
 *   so a loaded checkpoint's s is never overwritten. 'randn' is the released code's |N(0,1)| start
 *   (drawn at construction from the seeded global `rng()`); it is meant for c0 = 0.02 and latent
 *   weights of magnitude ~1e-2 — with c0 = 1 and small W it makes R and L_R large.
 *
 * Checkpoints: `s`, `initialized` and `prevSign` are in the state dict, so a resumed run computes the
 * same γ. `prevSign` needs the weight's shape: it is registered at construction when the context
 * carries `shape`, and otherwise at the first `apply` — in that case a fresh quantizer (no forward
 * yet) has no `prevSign` entry and a strict `loadStateDict` of a checkpoint that has one fails.
 * Binary layers should pass the weight shape in the context to avoid this.
 */
export class RebnnWeight extends Quantizer {
  readonly alias = 'rebnn_weight';
  readonly precision = 1;
  readonly channels: number;
  readonly c0: number;
  readonly gamma: 'adaptive' | number;
  readonly gammaMin: number;
  readonly gammaMax: number;
  readonly steClip: boolean;
  readonly init: RebnnInit;
  /** Raw scale parameter [Co]; α = |s|. */
  readonly s: Tensor;
  private readonly initialized: Tensor;
  private prevSignBuf: Tensor | null = null;
  private pending: Float32Array | null = null;
  private stats: RebnnStats | null = null;

  constructor(ctx: ShapedQuantizerContext, opts: RebnnOptions = {}) {
    super();
    if (!Number.isInteger(ctx.channels) || ctx.channels < 1) fail('rebnn_weight channels', 'a positive integer', String(ctx.channels));
    this.channels = ctx.channels;
    this.c0 = opts.c0 ?? 1;
    this.gamma = opts.gamma ?? 'adaptive';
    this.gammaMin = opts.gammaMin ?? 1e-5;
    this.gammaMax = opts.gammaMax ?? 2e-4;
    this.steClip = opts.steClip ?? true;
    this.init = opts.init ?? 'mean_abs';
    if (!(Number.isFinite(this.c0) && this.c0 > 0)) fail('rebnn_weight c0', 'a positive number', String(this.c0));
    if (this.gamma !== 'adaptive' && !(Number.isFinite(this.gamma) && this.gamma >= 0)) {
      fail('rebnn_weight gamma', '"adaptive" or a number >= 0', JSON.stringify(this.gamma));
    }
    if (!(this.gammaMin >= 0 && this.gammaMax >= this.gammaMin && Number.isFinite(this.gammaMax))) {
      fail('rebnn_weight gammaMin/gammaMax', '0 <= gammaMin <= gammaMax', `${this.gammaMin}, ${this.gammaMax}`);
    }
    if (this.init !== 'mean_abs' && this.init !== 'randn') fail('rebnn_weight init', '"mean_abs" or "randn"', JSON.stringify(this.init));

    const s = new Float32Array(this.channels);
    if (this.init === 'randn') for (let i = 0; i < s.length; i++) s[i] = rng().normal();
    this.s = this.registerParameter('s', wrap(s, [this.channels]));
    this.initialized = this.registerBuffer('initialized', wrap(Float32Array.of(this.init === 'randn' ? 1 : 0), [1]));
    if (ctx.shape) {
      this.checkShape(ctx.shape);
      this.prevSignBuf = this.registerBuffer('prevSign', wrap(new Float32Array(ctx.shape.reduce((a, b) => a * b, 1)), ctx.shape));
    }
  }

  /** The stored previous signs (±1; 0 = not yet set), or null before they exist (see the class doc). */
  get prevSign(): Tensor | null {
    return this.prevSignBuf;
  }

  /** γ, flip fractions, max |G| per channel and L_R of the latest backward; null before any. */
  get lastStats(): RebnnStats | null {
    return this.stats;
  }

  apply(w: Tensor): Tensor {
    this.prepare(w);
    return customGrad('rebnn_weight', [w, this.s], ([v, s]) => this.quantize(v!, s!), (g, [v, s]) => this.grad(g, v!, s!));
  }

  /** L_R of the latest backward (0 before any), for the trainer's logged loss. */
  override auxLoss(): number {
    return this.stats?.reconLoss ?? 0;
  }

  /** Commit the signs the latest backward used as the "previous signs" of the next step. */
  override afterStep(): void {
    if (this.pending && this.prevSignBuf) (this.prevSignBuf.storage as Float32Array).set(this.pending);
    this.pending = null;
  }

  config(): QuantizerConfig {
    return {
      alias: this.alias, c0: this.c0, gamma: this.gamma, gammaMin: this.gammaMin, gammaMax: this.gammaMax,
      steClip: this.steClip, init: this.init,
    };
  }

  static fromConfig(c: QuantizerConfig, ctx: ShapedQuantizerContext): RebnnWeight {
    const gamma = c.gamma === undefined || c.gamma === 'adaptive' ? 'adaptive' : numOption(c, 'gamma', 0, (v) => Number.isFinite(v) && v >= 0);
    const steClip = c.steClip ?? true;
    if (typeof steClip !== 'boolean') fail('rebnn_weight steClip', 'true or false', JSON.stringify(steClip));
    const init = c.init ?? 'mean_abs';
    if (init !== 'mean_abs' && init !== 'randn') fail('rebnn_weight init', '"mean_abs" or "randn"', JSON.stringify(init));
    return new RebnnWeight(ctx, {
      c0: numOption(c, 'c0', 1, (v) => Number.isFinite(v) && v > 0),
      gamma,
      gammaMin: numOption(c, 'gammaMin', 1e-5, (v) => Number.isFinite(v) && v >= 0),
      gammaMax: numOption(c, 'gammaMax', 2e-4, (v) => Number.isFinite(v) && v >= 0),
      steClip,
      init,
    });
  }

  private checkShape(shape: readonly number[]): void {
    if (shape.length < 1 || shape[0] !== this.channels) {
      fail('rebnn_weight', `a kernel with ${this.channels} output channels on axis 0`, `shape ${fmtShape(shape)}`);
    }
  }

  /** Shape checks, lazy previous-sign buffer and lazy mean|W| initialisation of s. */
  private prepare(w: Tensor): void {
    this.checkShape(w.shape);
    const C = this.channels, M = w.size / C;
    const wv = w.f32();
    if (!this.prevSignBuf) this.prevSignBuf = this.registerBuffer('prevSign', wrap(new Float32Array(w.size), w.shape));
    if (this.prevSignBuf.size !== w.size) {
      fail('rebnn_weight', `a kernel of shape ${fmtShape(this.prevSignBuf.shape)} (the stored previous signs)`, `shape ${fmtShape(w.shape)}`);
    }
    const prev = this.prevSignBuf.storage as Float32Array;
    if (prev.length && prev.every((p) => p === 0)) for (let k = 0; k < prev.length; k++) prev[k] = wv[k]! >= 0 ? 1 : -1;
    const done = this.initialized.storage as Float32Array;
    if (done[0] === 0) {
      const s = this.s.storage as Float32Array;
      for (let i = 0; i < C; i++) {
        let a = 0;
        for (let j = 0; j < M; j++) a += Math.abs(wv[i * M + j]!);
        s[i] = M ? a / M / this.c0 : 0;
      }
      done[0] = 1;
    }
  }

  private quantize(w: Tensor, s: Tensor): Tensor {
    const C = this.channels, M = w.size / C;
    const wv = w.f32(), sv = s.f32();
    const out = new Float32Array(w.size);
    for (let i = 0; i < C; i++) {
      const a = this.c0 * Math.abs(sv[i]!);
      for (let j = 0; j < M; j++) out[i * M + j] = wv[i * M + j]! >= 0 ? a : -a;
    }
    return wrap(out, w.shape);
  }

  private grad(g: Tensor, w: Tensor, s: Tensor): [Tensor, Tensor] {
    const C = this.channels, M = w.size / C, c0 = this.c0;
    const wv = w.f32(), sv = s.f32(), gv = g.f32();
    const prev = this.prevSignBuf!.storage as Float32Array;
    const dw = new Float32Array(w.size), ds = new Float32Array(C);
    const gamma = new Float64Array(C), flip = new Float64Array(C), gradMax = new Float64Array(C);
    const signs = new Float32Array(w.size);
    let recon = 0;
    for (let i = 0; i < C; i++) {
      const alpha = Math.abs(sv[i]!);
      let flips = 0, gmax = 0;
      for (let j = 0; j < M; j++) {
        const k = i * M + j;
        const b = wv[k]! >= 0 ? 1 : -1;
        signs[k] = b;
        if (prev[k] !== 0 && prev[k] !== b) flips++;
        gmax = Math.max(gmax, Math.abs(gv[k]!));
      }
      const fr = M ? flips / M : 0;
      const gm = this.gamma === 'adaptive' ? Math.min(Math.max(fr * gmax, this.gammaMin), this.gammaMax) : this.gamma;
      let da = 0, rr = 0;
      for (let j = 0; j < M; j++) {
        const k = i * M + j;
        const x = wv[k]!, b = signs[k]!, gk = gv[k]!;
        const r = x - c0 * alpha * b;
        const ste = !this.steClip || Math.abs(x) <= 1 ? alpha * gk : 0;
        dw[k] = ste + gm * r;
        da += gk * c0 * b - gm * r * c0 * b;
        rr += r * r;
      }
      ds[i] = sv[i]! >= 0 ? da : -da;
      gamma[i] = gm;
      flip[i] = fr;
      gradMax[i] = gmax;
      recon += (gm / 2) * rr;
    }
    this.pending = signs;
    this.stats = { gamma, flip, gradMax, reconLoss: recon };
    return [wrap(dw, w.shape), wrap(ds, [C])];
  }
}
