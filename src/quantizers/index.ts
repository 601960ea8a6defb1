import { fail } from '../core/errors.js';
import type { Quantizer, QuantizerConfig } from './quantizer.js';
import { SteSign } from './ste_sign.js';
import { XnorSign } from './xnor_sign.js';

export type { Quantizer, QuantizerConfig } from './quantizer.js';
export { SteSign } from './ste_sign.js';
export { XnorSign, channelMeanAbs } from './xnor_sign.js';

/** Every registered quantizer: alias (= file name) -> constructor from config. */
const REGISTRY: Readonly<Record<string, (c: QuantizerConfig) => Quantizer>> = {
  ste_sign: SteSign.fromConfig,
  xnor_sign: XnorSign.fromConfig,
};

export function quantizerAliases(): string[] {
  return Object.keys(REGISTRY);
}

/** A quantizer from its alias, its config object, or an instance (returned as is). */
export function createQuantizer(spec: string | QuantizerConfig | Quantizer): Quantizer {
  if (typeof spec === 'object' && 'apply' in spec && typeof spec.apply === 'function') return spec as Quantizer;
  const config: QuantizerConfig = typeof spec === 'string' ? { alias: spec } : (spec as QuantizerConfig);
  const make = Object.hasOwn(REGISTRY, config.alias) ? REGISTRY[config.alias] : undefined;
  if (!make) fail('quantizer', `one of ${quantizerAliases().join(', ')}`, JSON.stringify(config.alias));
  return make(config);
}
