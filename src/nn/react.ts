import { fail, fmtShape } from '../core/errors.js';
import { full, type Tensor } from '../core/tensor.js';
import { add } from '../ops/elementwise.js';
import { channelAct } from '../ops/channel_act.js';
import { reshape } from '../ops/shape.js';
import { PReLU } from './layers.js';
import { Module } from './module.js';

/** ReActNet / AdaBin activation pieces (methods.md §1.3, §3.4). All take [N, C] or [N, C, H, W]. */

function positiveChannels(what: string, c: number): void {
  if (!Number.isInteger(c) || c <= 0) fail(`${what} channels`, 'a positive integer', String(c));
}

/** x must have as many channels (axis 1) as the per-channel vector p [C]. */
function checkChannels(what: string, p: Tensor, x: Tensor): void {
  const C = p.shape[0]!;
  if (x.rank < 2 || x.shape[1] !== C) fail(what, `input [N, ${C}, ...] (${C} channels on axis 1)`, `shape ${fmtShape(x.shape)}`);
}

/** A per-channel vector [C] reshaped to [1, C, 1, …] to broadcast over x (channels on axis 1). */
function perChannel(what: string, p: Tensor, x: Tensor): Tensor {
  checkChannels(what, p, x);
  return reshape(p, [1, p.shape[0]!, ...Array<number>(x.rank - 2).fill(1)]);
}

/**
 * ReActNet's `LearnableBias`: y = x + b_c, one learnable shift per channel (axis 1), parameter
 * "bias" of shape [C], initialised to 0 (Liu et al., "ReActNet", ECCV 2020, arXiv:2003.03488).
 */
export class LearnableBias extends Module {
  readonly bias: Tensor;

  constructor(readonly channels: number) {
    super();
    positiveChannels('LearnableBias', channels);
    this.bias = this.registerParameter('bias', full([channels], 0));
  }

  forward(x: Tensor): Tensor {
    return add(x, perChannel('LearnableBias', this.bias, x));
  }

  override describe(): string {
    return `LearnableBias(${this.channels})`;
  }
}

/**
 * ReActNet's RPReLU: y = PReLU_c(x + b1_c) + b2_c, i.e. LearnableBias → PReLU(C, slope 0.25) →
 * LearnableBias (methods.md §1.3). Children "move0", "prelu", "move1" (ReActNet's `move` naming),
 * so the state dict holds move0.bias, prelu.weight, move1.bias, each of shape [C].
 */
export class RPReLU extends Module {
  readonly move0: LearnableBias;
  readonly prelu: PReLU;
  readonly move1: LearnableBias;

  constructor(readonly channels: number, slopeInit = 0.25) {
    super();
    positiveChannels('RPReLU', channels);
    this.move0 = this.registerModule('move0', new LearnableBias(channels));
    this.prelu = this.registerModule('prelu', new PReLU(channels, slopeInit));
    this.move1 = this.registerModule('move1', new LearnableBias(channels));
  }

  forward(x: Tensor): Tensor {
    // PReLU(C) with C = 1 shares one slope and skips its channel check: check here instead.
    checkChannels('RPReLU', this.move0.bias, x);
    // One fused op (ops/channel_act.ts): the same forward values as move1(prelu(move0(x))).
    return channelAct(x, { b0: this.move0.bias, neg: this.prelu.weight, b1: this.move1.bias });
  }

  override describe(): string {
    return `RPReLU(${this.channels})`;
  }
}

/**
 * AdaBin's "Maxout" non-linearity (Tu et al., ECCV 2022; code `Maxout`; methods.md §3.4): a
 * learnable two-slope per-channel ReLU without bias,
 *
 *   y = posScale_c · ReLU(x) − negScale_c · ReLU(−x),
 *
 * parameters "posScale" and "negScale" of shape [C] (the code's pos_scale / neg_scale), initialised
 * to 1 and 0.25. Computed as `channelAct` (x >= 0 ? posScale·x : negScale·x, the same values); at
 * x = 0 exactly its gradient takes the posScale side (the composite's two ReLUs gave 0 there).
 */
export class Maxout extends Module {
  readonly posScale: Tensor;
  readonly negScale: Tensor;

  constructor(readonly channels: number, opts: { posInit?: number; negInit?: number } = {}) {
    super();
    positiveChannels('Maxout', channels);
    this.posScale = this.registerParameter('posScale', full([channels], opts.posInit ?? 1));
    this.negScale = this.registerParameter('negScale', full([channels], opts.negInit ?? 0.25));
  }

  forward(x: Tensor): Tensor {
    checkChannels('Maxout', this.posScale, x);
    // One fused op (ops/channel_act.ts): the same forward values as the two-ReLU composite.
    return channelAct(x, { pos: this.posScale, neg: this.negScale });
  }

  override describe(): string {
    return `Maxout(${this.channels})`;
  }
}
