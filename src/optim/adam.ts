import { fail } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { checkNumber, Optimizer, type Group, type ParamGroup } from './optimizer.js';
import { definedOnly } from './sgd.js';

/** Options of `Adam` / `AdamW` (PyTorch names in camelCase). */
export interface AdamOptions {
  lr: number;
  betas: readonly [number, number];
  eps: number;
  weightDecay: number;
}

export const ADAM_DEFAULTS: AdamOptions = { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 };
export const ADAMW_DEFAULTS: AdamOptions = { ...ADAM_DEFAULTS, weightDecay: 1e-2 };

/**
 * Adam, exactly torch.optim.Adam (amsgrad = false, maximize = false). At step t, per parameter,
 * with β₁, β₂, ε and L2 weight decay λ:
 *   g ← ∇p + λ·p
 *   m ← β₁·m + (1 − β₁)·g            v ← β₂·v + (1 − β₂)·g²
 *   p ← p − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)
 * (= p − lr·m̂/(√v̂ + ε) with m̂ = m/(1 − β₁ᵗ), v̂ = v/(1 − β₂ᵗ)). t is the optimizer's step
 * counter. m and v ("<group>.<param>.m" / ".v") start at zero; computed in float64, stored float32.
 */
export class Adam extends Optimizer<AdamOptions> {
  /** True for AdamW's decoupled weight decay. */
  protected decoupled(): boolean {
    return false;
  }

  constructor(params: Tensor[] | ParamGroup<AdamOptions>[], opts: Partial<AdamOptions> = {}, defaults = ADAM_DEFAULTS) {
    super(params, { ...defaults, ...definedOnly(opts) });
  }

  get kind(): string {
    return 'adam';
  }

  protected bufferNames(): readonly string[] {
    return ['m', 'v'];
  }

  protected eagerBuffers(): boolean {
    return true;
  }

  protected override validateGroup(g: Group<AdamOptions>, what: string): void {
    super.validateGroup(g, what);
    if (!Array.isArray(g.betas) || g.betas.length !== 2) fail(what, 'betas to be [beta1, beta2]', JSON.stringify(g.betas) ?? 'undefined');
    checkNumber(what, 'betas[0]', g.betas[0], 0, false, 1);
    checkNumber(what, 'betas[1]', g.betas[1], 0, false, 1);
    checkNumber(what, 'eps', g.eps, 0);
  }

  protected update(p: Float32Array, grad: Float32Array, group: Group<AdamOptions>, key: string, t: number): void {
    const { lr, eps, weightDecay: wd } = group;
    const [b1, b2] = group.betas;
    const m = this.buffers.get(key + 'm')!, v = this.buffers.get(key + 'v')!;
    const stepSize = lr / (1 - b1 ** t);
    const bc2Sqrt = Math.sqrt(1 - b2 ** t);
    const decoupled = this.decoupled();
    const l2 = decoupled ? 0 : wd;
    const shrink = decoupled ? 1 - lr * wd : 1;
    for (let i = 0; i < p.length; i++) {
      const x = shrink * p[i]!;
      const g = grad[i]! + l2 * x;
      const mi = b1 * m[i]! + (1 - b1) * g;
      const vi = b2 * v[i]! + (1 - b2) * g * g;
      m[i] = mi;
      v[i] = vi;
      p[i] = x - stepSize * (mi / (Math.sqrt(vi) / bc2Sqrt + eps));
    }
  }
}

/**
 * AdamW, exactly torch.optim.AdamW: decoupled weight decay, then the Adam update without L2:
 *   p ← p − lr·λ·p   (i.e. p·(1 − lr·λ)),   then m, v and p as in `Adam` with g = ∇p.
 * Default weight decay λ = 1e-2.
 */
export class AdamW extends Adam {
  constructor(params: Tensor[] | ParamGroup<AdamOptions>[], opts: Partial<AdamOptions> = {}) {
    super(params, opts, ADAMW_DEFAULTS);
  }

  override get kind(): string {
    return 'adamw';
  }

  protected override decoupled(): boolean {
    return true;
  }
}
