import { fail } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { checkNumber, Optimizer, type Group, type ParamGroup } from './optimizer.js';

/** Options of `SGD` (PyTorch names in camelCase). */
export interface SGDOptions {
  lr: number;
  momentum: number;
  dampening: number;
  nesterov: boolean;
  weightDecay: number;
}

export const SGD_DEFAULTS: SGDOptions = { lr: 1e-3, momentum: 0, dampening: 0, nesterov: false, weightDecay: 0 };

/**
 * Stochastic gradient descent, exactly torch.optim.SGD (maximize = false). Per parameter, with
 * weight decay λ, momentum μ, dampening τ:
 *   g ← ∇p + λ·p
 *   if μ ≠ 0:  b ← g on the first step, else b ← μ·b + (1 − τ)·g;   g ← nesterov ? g + μ·b : b
 *   p ← p − lr·g
 * The momentum buffer b ("<group>.<param>.momentum") is created on a parameter's first update.
 * Arithmetic in float64 within a step; parameters and buffers are stored as float32.
 */
export class SGD extends Optimizer<SGDOptions> {
  constructor(params: Tensor[] | ParamGroup<SGDOptions>[], opts: Partial<SGDOptions> = {}) {
    super(params, { ...SGD_DEFAULTS, ...definedOnly(opts) });
  }

  get kind(): string {
    return 'sgd';
  }

  protected bufferNames(): readonly string[] {
    return ['momentum'];
  }

  protected eagerBuffers(): boolean {
    return false;
  }

  protected override validateGroup(g: Group<SGDOptions>, what: string): void {
    super.validateGroup(g, what);
    checkNumber(what, 'momentum', g.momentum, 0);
    checkNumber(what, 'dampening', g.dampening, 0);
    if (typeof g.nesterov !== 'boolean') fail(what, 'nesterov to be true or false', JSON.stringify(g.nesterov) ?? 'undefined');
    if (g.nesterov && (g.momentum <= 0 || g.dampening !== 0)) {
      fail(what, 'momentum > 0 and dampening 0 with nesterov', `momentum ${g.momentum}, dampening ${g.dampening}`, 'Nesterov momentum needs a momentum, e.g. 0.9.');
    }
  }

  protected update(p: Float32Array, grad: Float32Array, group: Group<SGDOptions>, key: string): void {
    const { lr, momentum: mu, dampening, nesterov, weightDecay: wd } = group;
    let buf: Float32Array | undefined;
    let first = false;
    if (mu !== 0) {
      buf = this.buffers.get(key + 'momentum');
      if (!buf) {
        first = true;
        buf = new Float32Array(p.length);
        this.buffers.set(key + 'momentum', buf);
      }
    }
    for (let i = 0; i < p.length; i++) {
      let d = grad[i]! + wd * p[i]!;
      if (buf) {
        const b = first ? d : mu * buf[i]! + (1 - dampening) * d;
        buf[i] = b;
        d = nesterov ? d + mu * b : b;
      }
      p[i] = p[i]! - lr * d;
    }
  }
}

/** Drop keys whose value is undefined, so they fall back to the defaults. */
export function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
