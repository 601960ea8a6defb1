import { fail } from '../core/errors.js';
import type { QuantizerConfig } from '../quantizers/index.js';
import { PReLU } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import { Maxout, RPReLU } from '../nn/react.js';

/** The non-linearity a method puts after each batch norm of the binary part (none: sign is the non-linearity). */
export type MethodActivation = 'none' | 'prelu' | 'rprelu' | 'maxout';

/**
 * A method preset picks the quantizers and non-linearities of a binary network, so a user names a
 * method instead of wiring quantizers by hand (they can still pass quantizers to the layers).
 * Source of every choice: ../shared/docs/methods.md (section in each description).
 */
export interface MethodPreset {
  name: string;
  description: string;
  inputQuantizer: QuantizerConfig;
  kernelQuantizer: QuantizerConfig;
  activation: MethodActivation;
  /** Set when the method is a reconstruction and its numbers must not be reported as the paper's. */
  reconstruction?: string;
}

const preset = (p: MethodPreset): MethodPreset => p;

const PRESETS: Readonly<Record<string, MethodPreset>> = {
  ste: preset({
    name: 'ste',
    description: 'BNN (Hubara et al. 2016): sign with the clipped straight-through estimator for weights and activations (§1.1)',
    inputQuantizer: { alias: 'ste_sign' },
    kernelQuantizer: { alias: 'ste_sign' },
    activation: 'none',
  }),
  xnor: preset({
    name: 'xnor',
    description: 'XNOR-Net: ste_sign activations; weights α·sign(W), α = per-channel mean|W| (detached) (§1.2)',
    inputQuantizer: { alias: 'ste_sign' },
    kernelQuantizer: { alias: 'xnor_sign' },
    activation: 'none',
  }),
  bireal: preset({
    name: 'bireal',
    description: 'Bi-Real Net: ApproxSign activations; magnitude-aware weights α·sign(W) with α in the gradient (§1.1–1.2)',
    inputQuantizer: { alias: 'approx_sign' },
    kernelQuantizer: { alias: 'magnitude_aware_sign' },
    activation: 'none',
  }),
  irnet: preset({
    name: 'irnet',
    description: 'IR-Net: error decay estimator (EDE) for weights and activations, t: 1e-3 → 10 per epoch (§1.1, §3.2); Libra-PB weight balancing not included',
    inputQuantizer: { alias: 'ede_sign' },
    kernelQuantizer: { alias: 'ede_sign' },
    activation: 'none',
  }),
  reactnet: preset({
    name: 'reactnet',
    description: 'ReActNet: RSign (learnable per-channel threshold, ApproxSign), XNOR-scaled weights, RPReLU (§1.3)',
    inputQuantizer: { alias: 'rsign' },
    kernelQuantizer: { alias: 'xnor_sign' },
    activation: 'rprelu',
  }),
  sabnn: preset({
    name: 'sabnn',
    description: 'SA-BNN reconstruction, reading B: learnable per-channel state-aware scales τ+/τ−, ApproxSign activations (§2.3)',
    inputQuantizer: { alias: 'approx_sign' },
    kernelQuantizer: { alias: 'sabnn_sign', variant: 'B' },
    activation: 'none',
    reconstruction: "SA-BNN's exact rule is not public; this is a reconstruction (methods.md §2.3). Do not report its numbers as SA-BNN's.",
  }),
  'sabnn-a': preset({
    name: 'sabnn-a',
    description: 'SA-BNN reconstruction, reading A: fixed per-state gradient coefficients (ρ = τ−/τ+ = 0.8), ApproxSign activations (§2.3)',
    inputQuantizer: { alias: 'approx_sign' },
    kernelQuantizer: { alias: 'sabnn_sign', variant: 'A' },
    activation: 'none',
    reconstruction: "SA-BNN's exact rule is not public; this is a reconstruction (methods.md §2.3). Do not report its numbers as SA-BNN's.",
  }),
  adabin: preset({
    name: 'adabin',
    description: 'AdaBin (official code form): learnable α/β activation sets, equalized weights (mean/std, not detached, EDE), Maxout (§3)',
    inputQuantizer: { alias: 'adabin_act', form: 'code' },
    kernelQuantizer: { alias: 'adabin_weight' },
    activation: 'maxout',
  }),
  'adabin-paper': preset({
    name: 'adabin-paper',
    description: "AdaBin with the paper's activation form B(x) = β + α·sign(x − β) (§3.3)",
    inputQuantizer: { alias: 'adabin_act', form: 'paper' },
    kernelQuantizer: { alias: 'adabin_weight' },
    activation: 'maxout',
  }),
  rebnn: preset({
    name: 'rebnn',
    description: 'ReBNN (paper-faithful): RSign, learned per-channel α, balanced reconstruction gradient with adaptive γ, RPReLU (§4)',
    inputQuantizer: { alias: 'rsign' },
    kernelQuantizer: { alias: 'rebnn_weight', gamma: 'adaptive' },
    activation: 'rprelu',
  }),
  'rebnn-code': preset({
    name: 'rebnn-code',
    description: "ReBNN as released: constant γ = 2e-4 (the code's round_pass bug), c0 = 0.02, randn-initialised scale, no STE clipping (§4.4)",
    inputQuantizer: { alias: 'rsign' },
    kernelQuantizer: { alias: 'rebnn_weight', gamma: 2e-4, c0: 0.02, init: 'randn', steClip: false },
    activation: 'rprelu',
  }),
  // Full precision: same layers and parameter names as the binary nets (a binary layer with identity
  // quantizers is a plain conv/dense), so any arch has a float teacher / baseline. Without sign the
  // net needs a non-linearity: PReLU (slope 0.25, learnable; ReLU-like, and the PReLU inside
  // ReActNet's RPReLU) after every BN where the binary presets have none. Archs with a built-in
  // non-linearity (resnet18, reactnet-a: RPReLU) keep theirs.
  float: preset({
    name: 'float',
    description: 'Full precision (no binarization): identity quantizers, PReLU after every batch norm; for KD teachers and float baselines',
    inputQuantizer: { alias: 'identity' },
    kernelQuantizer: { alias: 'identity' },
    activation: 'prelu',
  }),
};

/** Which side(s) of the binary layers a run binarizes (ReActNet two-step recipe, methods.md §1.6). */
export type Binarize = 'both' | 'activations' | 'weights';

/**
 * The preset with one side made real: `activations` keeps the binary activations and makes the
 * weights real (ReActNet step 1: kernel quantizer → identity), `weights` the reverse, `both` (the
 * default) returns the preset unchanged. Parameter names of everything else stay the same, so a
 * step-2 run can start from the step-1 checkpoint (`--init-from`); state of the replaced quantizer
 * (e.g. ReBNN's scale) is simply absent in step 1 and keeps its fresh initialisation in step 2.
 */
export function withBinarize(method: MethodPreset, binarize: Binarize = 'both'): MethodPreset {
  switch (binarize) {
    case 'both': return method;
    case 'activations': return { ...method, kernelQuantizer: { alias: 'identity' }, description: `${method.description} [step 1: real weights]` };
    case 'weights': return { ...method, inputQuantizer: { alias: 'identity' }, description: `${method.description} [real activations]` };
    default: return fail('binarize', 'one of both, activations, weights', JSON.stringify(binarize));
  }
}

/** Names of every method preset (the `--method` choices). */
export function methodNames(): string[] {
  return Object.keys(PRESETS);
}

/** The preset named `name`; an unknown name fails with the list of valid ones. */
export function methodPreset(name: string): MethodPreset {
  const p = Object.hasOwn(PRESETS, name) ? PRESETS[name] : undefined;
  if (!p) fail('method', `one of ${methodNames().join(', ')}`, JSON.stringify(name));
  return p;
}

/** The preset's non-linearity for `channels` channels, or null for none. */
export function methodActivation(method: MethodPreset, channels: number): Module | null {
  switch (method.activation) {
    case 'none': return null;
    case 'prelu': return new PReLU(channels);
    case 'rprelu': return new RPReLU(channels);
    case 'maxout': return new Maxout(channels);
  }
}

/** The preset's non-linearity as a list of layers to splice into a Sequential ([] for none). */
export function methodActivations(method: MethodPreset, channels: number): Module[] {
  const a = methodActivation(method, channels);
  return a ? [a] : [];
}
