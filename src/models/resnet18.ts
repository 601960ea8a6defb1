import { fail } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { add } from '../ops/elementwise.js';
import { BinaryConv2d } from '../nn/binary.js';
import { AvgPool2d, BatchNorm2d, Conv2d, GlobalAvgPool2d, Linear } from '../nn/layers.js';
import { RPReLU } from '../nn/react.js';
import { Module, Sequential } from '../nn/module.js';
import type { MethodPreset } from './methods.js';

/**
 * Bi-Real / ReActNet ResNet-18 for CIFAR (32×32×3 inputs), methods.md §1.4.
 *
 *   stem:   real Conv3x3(3, 64, stride 1, pad 1) → BN            (CIFAR stem: no 7×7/2, no max-pool)
 *   body:   [4, 4, 4, 4] BiRealBlocks over widths 64, 128, 256, 512, stride 2 at the first block
 *           of stages 2–4 → 16 binary 3×3 convs, each with a real shortcut around it
 *   head:   global average pool → real Linear(512, numClasses)
 *
 * Real-valued (32-bit): stem conv, downsample 1×1 convs, FC, every BN / RPReLU parameter and the
 * residual stream. The binary convs pad with zeros (padValue 0), as the official ReActNet and
 * Bi-Real codes do (`nn.Conv2d(padding=1)` applied to the signed input): the border holds 0, not ±1.
 */
export interface ResNet18Options {
  numClasses?: number;
}

/**
 * One Bi-Real / ReActNet block (one binary conv):
 *
 *   r = x                                 if stride == 1 and Cin == Cout
 *     = BN(Conv1x1(AvgPool2d(2, 2)(x)))   otherwise (real downsample; no pool when stride == 1)
 *   y = act(BN(BinaryConv3x3(q_in(x), stride)) + r)
 *
 * q_in is the preset's input quantizer (e.g. ste_sign, or RSign with its learnable bias), held by
 * the binary conv. `act` is ReActNet's RPReLU(Cout) (learnable bias → PReLU → learnable bias).
 */
export class BiRealBlock extends Module {
  readonly downsample: Sequential | null;
  readonly conv: BinaryConv2d;
  readonly bn: BatchNorm2d;
  readonly act: RPReLU;

  constructor(readonly inChannels: number, readonly outChannels: number, readonly stride: number, method: MethodPreset) {
    super();
    if (stride !== 1 && stride !== 2) fail('BiRealBlock stride', '1 or 2', String(stride));
    const needDown = stride !== 1 || inChannels !== outChannels;
    this.downsample = needDown
      ? this.registerModule(
          'downsample',
          stride === 1
            ? new Sequential(new Conv2d(inChannels, outChannels, 1, { bias: false }), new BatchNorm2d(outChannels))
            : new Sequential(new AvgPool2d(2, 2), new Conv2d(inChannels, outChannels, 1, { bias: false }), new BatchNorm2d(outChannels)),
        )
      : null;
    this.conv = this.registerModule(
      'conv',
      new BinaryConv2d(inChannels, outChannels, 3, {
        inputQuantizer: method.inputQuantizer,
        kernelQuantizer: method.kernelQuantizer,
        stride,
        padding: 1,
        padValue: 0,
        bias: false,
      }),
    );
    this.bn = this.registerModule('bn', new BatchNorm2d(outChannels));
    this.act = this.registerModule('act', new RPReLU(outChannels));
  }

  forward(x: Tensor): Tensor {
    const r = this.downsample ? this.downsample.forward(x) : x;
    const y = this.bn.forward(this.conv.forward(x));
    return this.act.forward(add(y, r));
  }

  override describe(): string {
    return `BiRealBlock(${this.inChannels} -> ${this.outChannels}, stride ${this.stride})`;
  }
}

/** The whole network; child names: stem, stage1..stage4 (blocks "0".."3"), pool, fc. */
export class ResNet18 extends Module {
  readonly stem: Sequential;
  readonly stages: Sequential[];
  readonly pool: GlobalAvgPool2d;
  readonly fc: Linear;

  constructor(readonly method: MethodPreset, readonly numClasses = 10) {
    super();
    if (!Number.isInteger(numClasses) || numClasses < 1) fail('resnet18 numClasses', 'a positive integer', String(numClasses));
    this.stem = this.registerModule('stem', new Sequential(new Conv2d(3, 64, 3, { stride: 1, padding: 1, bias: false }), new BatchNorm2d(64)));
    const widths = [64, 128, 256, 512];
    const depths = [4, 4, 4, 4];
    let cin = 64;
    this.stages = widths.map((w, s) => {
      const blocks: BiRealBlock[] = [];
      for (let b = 0; b < depths[s]!; b++) {
        blocks.push(new BiRealBlock(cin, w, b === 0 && s > 0 ? 2 : 1, method));
        cin = w;
      }
      return this.registerModule(`stage${s + 1}`, new Sequential(...blocks));
    });
    this.pool = this.registerModule('pool', new GlobalAvgPool2d());
    this.fc = this.registerModule('fc', new Linear(512, numClasses));
  }

  forward(x: Tensor): Tensor {
    let y = this.stem.forward(x);
    for (const s of this.stages) y = s.forward(y);
    return this.fc.forward(this.pool.forward(y));
  }

  override describe(): string {
    return `ResNet18(method=${this.method.name}, classes=${this.numClasses})`;
  }
}

/** Bi-Real / ReActNet ResNet-18 for 32×32×3 CIFAR inputs with the preset's quantizers. */
export function resnet18(method: MethodPreset, opts: ResNet18Options = {}): ResNet18 {
  return new ResNet18(method, opts.numClasses ?? 10);
}
