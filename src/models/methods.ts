import { fail } from '../core/errors.js';
import type { QuantizerConfig } from '../quantizers/index.js';

/**
 * A method preset picks the quantizers (and later the non-linearities and defaults) of a binary
 * network, so a user names a method instead of wiring quantizers by hand.
 */
export interface MethodPreset {
  name: string;
  description: string;
  inputQuantizer: QuantizerConfig;
  kernelQuantizer: QuantizerConfig;
}

const PRESETS: Readonly<Record<string, MethodPreset>> = {
  ste: {
    name: 'ste',
    description: 'sign with the clipped straight-through estimator for weights and activations (BNN, Hubara et al. 2016)',
    inputQuantizer: { alias: 'ste_sign' },
    kernelQuantizer: { alias: 'ste_sign' },
  },
  xnor: {
    name: 'xnor',
    description: 'ste_sign activations; weights α·sign(W) with XNOR-Net per-channel α = mean|W| (detached)',
    inputQuantizer: { alias: 'ste_sign' },
    kernelQuantizer: { alias: 'xnor_sign' },
  },
};

export function methodNames(): string[] {
  return Object.keys(PRESETS);
}

export function methodPreset(name: string): MethodPreset {
  const p = Object.hasOwn(PRESETS, name) ? PRESETS[name] : undefined;
  if (!p) fail('method', `one of ${methodNames().join(', ')}`, JSON.stringify(name));
  return p;
}
