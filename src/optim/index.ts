import { fail } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { Adam, AdamW, ADAM_DEFAULTS, type AdamOptions } from './adam.js';
import type { Optimizer, ParamGroup } from './optimizer.js';
import { SGD, SGD_DEFAULTS, type SGDOptions } from './sgd.js';

export * from './optimizer.js';
export * from './sgd.js';
export * from './adam.js';
export * from './schedule.js';

export const OPTIMIZER_NAMES = ['sgd', 'adam', 'adamw'] as const;
export type OptimizerName = (typeof OPTIMIZER_NAMES)[number];

/** Options accepted by `createOptimizer` (each optimizer takes only its own; undefined = default). */
export type OptimizerOptions = Partial<SGDOptions> & Partial<AdamOptions>;

/**
 * Build an optimizer by name: 'sgd' → SGD (p ← p − lr·(momentum-filtered ∇p + λp)),
 * 'adam' → Adam (L2 in the gradient), 'adamw' → AdamW (decoupled decay p ← p(1 − lr·λ)).
 * An unknown name, or an option the chosen optimizer does not have, fails with the valid choices.
 */
export function createOptimizer(
  name: OptimizerName,
  params: Tensor[] | ParamGroup<SGDOptions>[] | ParamGroup<AdamOptions>[],
  opts: OptimizerOptions = {},
): Optimizer {
  if (!(OPTIMIZER_NAMES as readonly unknown[]).includes(name)) {
    fail('createOptimizer', `an optimizer name among ${OPTIMIZER_NAMES.join(', ')}`, JSON.stringify(name) ?? String(name));
  }
  const allowed = Object.keys(name === 'sgd' ? SGD_DEFAULTS : ADAM_DEFAULTS);
  for (const [k, v] of Object.entries(opts)) {
    if (v !== undefined && !allowed.includes(k)) fail(`createOptimizer('${name}')`, `options among ${allowed.join(', ')}`, `"${k}"`);
  }
  if (name === 'sgd') return new SGD(params as ParamGroup<SGDOptions>[], opts);
  const o = opts as Partial<AdamOptions>;
  return name === 'adam' ? new Adam(params as ParamGroup<AdamOptions>[], o) : new AdamW(params as ParamGroup<AdamOptions>[], o);
}
