import { fail } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { add } from '../ops/elementwise.js';
import { matmul } from '../ops/matmul.js';
import { conv2d, pad2d } from '../ops/conv.js';
import { fusedSignEnabled, packedConv2d, packedForwardEnabled, packedLinear, packedSignConv2d } from '../ops/binary_forward.js';
import { reshape } from '../ops/shape.js';
import { createQuantizer, type Quantizer, type QuantizerConfig, type QuantizerContext } from '../quantizers/index.js';
import { uniformInit } from './init.js';
import { checkFeatures, pair, type Conv2dOptions } from './layers.js';
import { Module } from './module.js';
import type { WeightClip } from './weight_clip.js';

export { WeightClip } from './weight_clip.js';

export type QuantizerSpec = string | QuantizerConfig | Quantizer | null;

export interface BinaryLayerOptions {
  /** Quantizer of the incoming activations; null keeps them real (e.g. ReActNet step 1). Default "ste_sign". */
  inputQuantizer?: QuantizerSpec;
  /** Quantizer of the latent float weights; null keeps them real. Default "ste_sign". */
  kernelQuantizer?: QuantizerSpec;
  /** Constraint on the latent float weights, applied in place after every optimizer step (`afterStep`), e.g. Larq's WeightClip. Default none. */
  kernelConstraint?: WeightClip | null;
}

/**
 * Common part of the binary layers: latent float weights (what the optimizer updates) quantized on
 * every read, and an input quantizer (Larq's QuantDense / QuantConv2D design).
 */
export interface BinaryLayer {
  readonly weight: Tensor;
  readonly inputQuantizer: Quantizer | null;
  readonly kernelQuantizer: Quantizer | null;
}

export function isBinaryLayer(m: Module): m is Module & BinaryLayer {
  return m instanceof BinaryLinear || m instanceof BinaryConv2d;
}

/** The quantizer of a binary layer (default ste_sign; null = keep real values). */
function quantizerOf(spec: QuantizerSpec | undefined, ctx: QuantizerContext): Quantizer | null {
  return spec === null ? null : createQuantizer(spec ?? 'ste_sign', ctx);
}

/**
 * What BinaryLinear and BinaryConv2d share: latent weights (+ optional bias), the two quantizers
 * registered as children (learnable quantizer state trains and saves with the layer) and the
 * optional kernel constraint applied after each optimizer step.
 */
abstract class BinaryLayerBase extends Module implements BinaryLayer {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly inputQuantizer: Quantizer | null;
  readonly kernelQuantizer: Quantizer | null;
  readonly kernelConstraint: WeightClip | null;

  protected constructor(weightShape: number[], fanIn: number, inChannels: number, opts: BinaryLayerOptions & { bias?: boolean }) {
    super();
    const outChannels = weightShape[0]!;
    this.weight = this.registerParameter('weight', uniformInit(weightShape, fanIn));
    this.bias = opts.bias ? this.registerParameter('bias', uniformInit([outChannels], fanIn)) : null;
    const iq = quantizerOf(opts.inputQuantizer, { role: 'input', channels: inChannels });
    const kq = quantizerOf(opts.kernelQuantizer, { role: 'kernel', channels: outChannels, shape: this.weight.shape });
    this.inputQuantizer = iq && this.registerModule('inputQuantizer', iq);
    this.kernelQuantizer = kq && this.registerModule('kernelQuantizer', kq);
    this.kernelConstraint = opts.kernelConstraint ?? null;
  }

  /**
   * Whether to try the packed 1-bit forward: both quantizers present and 1-bit (a float `identity`
   * quantizer is 32-bit, so float teachers skip the two-valued check), and the backend enables it.
   */
  protected packable(): boolean {
    return !!this.inputQuantizer && !!this.kernelQuantizer && this.inputQuantizer.precision === 1 && this.kernelQuantizer.precision === 1 && packedForwardEnabled();
  }

  /** Applies `kernelConstraint` (if any) to the latent weights after each optimizer step. */
  override afterStep(): void {
    super.afterStep();
    this.kernelConstraint?.apply(this.weight);
  }
}

/** Validated weight shape and fan-in of a binary convolution. */
function convWeight(inChannels: number, outChannels: number, kernelSize: [number, number], groups: number): [number[], number] {
  if (!Number.isInteger(groups) || groups < 1 || inChannels % groups || outChannels % groups) {
    fail('BinaryConv2d', `channels divisible by groups=${groups}`, `in=${inChannels}, out=${outChannels}`);
  }
  return [[outChannels, inChannels / groups, ...kernelSize], (inChannels / groups) * kernelSize[0] * kernelSize[1]];
}

/** y = q_in(x)·q_k(W)ᵀ (+ b). W: [out, in] latent floats. */
export class BinaryLinear extends BinaryLayerBase {
  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: BinaryLayerOptions & { bias?: boolean } = {}) {
    super([outFeatures, inFeatures], inFeatures, inFeatures, opts);
  }

  forward(x: Tensor): Tensor {
    checkFeatures('BinaryLinear', x, this.inFeatures);
    const xq = this.inputQuantizer ? this.inputQuantizer.apply(x) : x;
    const wq = this.kernelQuantizer ? this.kernelQuantizer.apply(this.weight) : this.weight;
    const packed = this.packable() ? packedLinear(xq, wq) : null;
    const y = packed ?? matmul(xq, wq, false, true);
    return this.bias ? add(y, this.bias) : y;
  }

  override describe(): string {
    return `BinaryLinear(${this.inFeatures} -> ${this.outFeatures}, in=${this.inputQuantizer?.alias ?? 'float'}, kernel=${this.kernelQuantizer?.alias ?? 'float'})`;
  }
}

/**
 * Binary 2-D convolution. `padValue` says what the border holds after the input is quantized:
 * 0 (zero padding — what every official BNN code does, methods.md §7.11; 0 is not a binary value,
 * so a deployed 1-bit kernel must correct the border) or ±1 (padding stays binary, so a 1-bit
 * kernel is exact with no correction; Larq's `pad_values=1`).
 */
export class BinaryConv2d extends BinaryLayerBase {
  readonly kernelSize: [number, number];
  readonly padValue: number;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: number | [number, number],
    readonly opts: BinaryLayerOptions & Conv2dOptions & { padValue?: -1 | 0 | 1 } = {},
  ) {
    super(...convWeight(inChannels, outChannels, pair(kernelSize), opts.groups ?? 1), inChannels, opts);
    this.padValue = opts.padValue ?? 0;
    if (![-1, 0, 1].includes(this.padValue)) fail('BinaryConv2d padValue', '-1, 0 or 1', String(opts.padValue));
    this.kernelSize = pair(kernelSize);
  }

  forward(x: Tensor): Tensor {
    const wq = this.kernelQuantizer ? this.kernelQuantizer.apply(this.weight) : this.weight;
    const [ph, pw] = pair(this.opts.padding ?? 0);
    const conv = { stride: this.opts.stride, dilation: this.opts.dilation, groups: this.opts.groups, padding: [ph, pw] as [number, number] };
    const packable = this.packable();
    const withBias = (y: Tensor) => (this.bias ? add(y, reshape(this.bias, [1, this.outChannels, 1, 1])) : y);
    // A sign quantizer with a pointwise pseudo-gradient fuses into the packed conv (no ±1 tensor).
    const fused = packable && fusedSignEnabled() ? this.inputQuantizer!.fusedSign(x) : null;
    if (fused) {
      const y = packedSignConv2d(fused.input, wq, conv, this.padValue, fused.grad);
      if (y) return withBias(y);
    }
    let xq = this.inputQuantizer ? this.inputQuantizer.apply(x) : x;
    if (packable) {
      const y = packedConv2d(xq, wq, conv, this.padValue);
      if (y) return withBias(y);
    }
    if (this.padValue !== 0 && (ph || pw)) {
      xq = pad2d(xq, [ph, ph, pw, pw], this.padValue);
      conv.padding = [0, 0];
    }
    return conv2d(xq, wq, this.bias, conv);
  }

  override describe(): string {
    return `BinaryConv2d(${this.inChannels} -> ${this.outChannels}, ${this.kernelSize.join('x')}, pad=${this.padValue})`;
  }
}
