import { fail } from '../core/errors.js';
import { Quantizer, type QuantizerConfig, type QuantizerContext } from './quantizer.js';
import { SteSign } from './ste_sign.js';
import { XnorSign } from './xnor_sign.js';

export { Quantizer, numOption, type QuantizerConfig, type QuantizerContext } from './quantizer.js';
export { SteSign } from './ste_sign.js';
export { XnorSign, channelMeanAbs } from './xnor_sign.js';

type Factory = (c: QuantizerConfig, ctx: QuantizerContext) => Quantizer;
type Role = QuantizerContext['role'];

interface Entry {
  make: Factory;
  /** Where it may be used: on activations ("input"), on weights ("kernel"), or both. */
  roles: readonly Role[];
}

const BOTH: readonly Role[] = ['input', 'kernel'];

/** Every registered quantizer: alias (= file name) -> constructor from config and context, and its roles. */
const REGISTRY: Readonly<Record<string, Entry>> = {
  ste_sign: { make: SteSign.fromConfig, roles: BOTH },
  xnor_sign: { make: XnorSign.fromConfig, roles: ['kernel'] },
};

export function quantizerAliases(): string[] {
  return Object.keys(REGISTRY);
}

/** The roles ("input", "kernel") a registered quantizer supports. */
export function quantizerRoles(alias: string): readonly Role[] {
  return REGISTRY[alias]?.roles ?? [];
}

/**
 * A quantizer from its alias or config object (built for `ctx`: role and channel count), or an
 * instance (returned as is).
 */
export function createQuantizer(spec: string | QuantizerConfig | Quantizer, ctx: QuantizerContext = { role: 'input', channels: 1 }): Quantizer {
  if (spec instanceof Quantizer) return spec;
  const config: QuantizerConfig = typeof spec === 'string' ? { alias: spec } : spec;
  const entry = Object.hasOwn(REGISTRY, config.alias) ? REGISTRY[config.alias] : undefined;
  if (!entry) fail('quantizer', `one of ${quantizerAliases().join(', ')}`, JSON.stringify(config.alias));
  if (!entry.roles.includes(ctx.role)) {
    fail(config.alias, `use as ${entry.roles.join(' or ')} quantizer`, `use as ${ctx.role} quantizer`, `Pass it as ${entry.roles[0]}Quantizer.`);
  }
  return entry.make(config, ctx);
}
