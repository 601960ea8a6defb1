import { fail } from '../core/errors.js';
import { Quantizer, type QuantizerConfig, type QuantizerContext } from './quantizer.js';
import { SteSign } from './ste_sign.js';
import { XnorSign } from './xnor_sign.js';
import { RebnnWeight } from './rebnn_weight.js';
import { SabnnSign } from './sabnn_sign.js';
import { AdaBinWeight } from './adabin_weight.js';
import { AdaBinAct } from './adabin_act.js';
import { ApproxSign } from './approx_sign.js';
import { SwishSign } from './swish_sign.js';
import { MagnitudeAwareSign } from './magnitude_aware_sign.js';
import { EdeSign } from './ede_sign.js';
import { RSign } from './rsign.js';
import { SteTern } from './ste_tern.js';
import { DoReFa } from './dorefa.js';
import { Identity } from './identity.js';

export { Quantizer, numOption, type QuantizerConfig, type QuantizerContext } from './quantizer.js';
export { SteSign } from './ste_sign.js';
export { XnorSign, channelMeanAbs } from './xnor_sign.js';
export { RebnnWeight, type RebnnInit, type RebnnOptions, type RebnnStats, type ShapedQuantizerContext } from './rebnn_weight.js';
export { SabnnSign, type SabnnVariant } from './sabnn_sign.js';
export { AdaBinWeight, adabinEqualize, ADABIN_VAR_FLOOR } from './adabin_weight.js';
export { AdaBinAct, type AdaBinActForm } from './adabin_act.js';
export { ApproxSign, approxSignDerivative, approxSignBackward } from './approx_sign.js';
export { SwishSign, swishSignDerivative } from './swish_sign.js';
export { MagnitudeAwareSign } from './magnitude_aware_sign.js';
export { EdeSign, edeSchedule, edeSign } from './ede_sign.js';
export { RSign } from './rsign.js';
export { SteTern } from './ste_tern.js';
export { DoReFa, roundHalfEven, type DoReFaMode } from './dorefa.js';
export { Identity } from './identity.js';

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
  rebnn_weight: { make: RebnnWeight.fromConfig, roles: ['kernel'] },
  sabnn_sign: { make: SabnnSign.fromConfig, roles: ['kernel'] },
  adabin_weight: { make: AdaBinWeight.fromConfig, roles: ['kernel'] },
  adabin_act: { make: AdaBinAct.fromConfig, roles: ['input'] },
  approx_sign: { make: ApproxSign.fromConfig, roles: BOTH },
  swish_sign: { make: SwishSign.fromConfig, roles: BOTH },
  magnitude_aware_sign: { make: MagnitudeAwareSign.fromConfig, roles: ['kernel'] },
  ede_sign: { make: EdeSign.fromConfig, roles: BOTH },
  rsign: { make: RSign.fromConfig, roles: ['input'] },
  ste_tern: { make: SteTern.fromConfig, roles: BOTH },
  // One alias, both roles: mode "activations" is the input role, mode "weights" the kernel role
  // (the mode defaults to the role's; a mismatch is an error in DoReFa.fromConfig).
  dorefa: { make: DoReFa.fromConfig, roles: BOTH },
  // No quantization (32-bit): the float preset and the real side of a two-step ReActNet run.
  identity: { make: Identity.fromConfig, roles: BOTH },
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
