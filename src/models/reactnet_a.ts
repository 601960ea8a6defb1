import { fail, fmtShape } from '../core/errors.js';
import { type Tensor, wrap } from '../core/tensor.js';
import { record } from '../autograd/tape.js';
import { add } from '../ops/elementwise.js';
import { BinaryConv2d } from '../nn/binary.js';
import { AvgPool2d, BatchNorm2d, Conv2d, GlobalAvgPool2d, Linear } from '../nn/layers.js';
import { RPReLU } from '../nn/react.js';
import { Module, Sequential } from '../nn/module.js';
import type { MethodPreset } from './methods.js';

/**
 * ReActNet-A (Liu et al., ECCV 2020, arXiv:2003.03488), the MobileNet-V1-style BNN, methods.md §1.5
 * (official code: `mobilenet/2_step2/reactnet.py`).
 *
 *   stem:   real Conv3x3(3, 32, stride s0, pad 1) → BN                     (no activation)
 *   body:   13 ReActBlocks; widths [32 | 64, 128, 128, 256, 256, 512×6, 1024×2], stride 2 where
 *           the width changes (except 32 → 64, stride 1)
 *   head:   global average pool → real Linear(1024, classes)
 *
 * `inputSize` 224 (ImageNet, the paper's net): s0 = 2, 224 → 112 → … → 7×7 before the pool,
 * 1000 classes by default. Any input size below 64 (CIFAR, 32): s0 = 1 — onebit's adaptation, as
 * the CIFAR ResNets drop the ImageNet stem's downsampling — so 32 → 32 → … → 2×2, 10 classes by
 * default. There is no official CIFAR ReActNet-A.
 *
 * Real-valued (32-bit): stem conv, FC, every BN / RPReLU / RSign-bias parameter and the residual
 * stream. Binary convs zero-pad (padValue 0), as the official code.
 */
export interface ReActNetAOptions {
  /** Input height = width: 224 (ImageNet, default) or e.g. 32 (CIFAR). */
  inputSize?: number;
  /** Default 1000 for inputSize ≥ 64, else 10. */
  numClasses?: number;
}

/** Stage widths of ReActNet-A: the stem's 32, then one entry per block (methods.md §1.5). */
export const REACTNET_A_WIDTHS: readonly number[] = [32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024];

/**
 * One ReActNet-A block, `C → C` or `C → 2C`; every binary conv is wrapped as
 * `q_in → binconv → BN → (+shortcut) → RPReLU` (q_in: the preset's input quantizer, RSign for
 * `reactnet`):
 *
 *   out1 = RPReLU1(BN1(BinConv3x3(q_in(x), stride)) + (AvgPool2d(2, 2)(x) if stride 2 else x))
 *   C → C:   out = RPReLU2(BN2(BinConv1x1(q_in(out1))) + out1)
 *   C → 2C:  out = RPReLU2(BN2(BinConv1x1_{C→2C}(q_in(out1))) + [out1, out1])
 *
 * The official code's two binary 1×1 convs `C → C` (binary_pw_down1/2, each with its own BN and
 * `out1` as shortcut, outputs concatenated) are stored here as ONE 1×1 conv `C → 2C` whose output
 * channels 0…C−1 are down1 and C…2C−1 down2, with one BN(2C) and the shortcut `out1` repeated on
 * the channel axis. That is the same function (both convs read the same quantized input, and
 * scales, BN and RPReLU are per output channel) with one input quantizer instead of two — as the
 * official code, which binarizes once (move21 → sign) for both. To import official weights, split
 * the conv and BN along the output channels.
 *
 * The non-linearity is RPReLU for every method preset (it is part of the architecture, as in
 * `resnet18`); the preset picks the quantizers.
 */
export class ReActBlock extends Module {
  readonly conv3x3: BinaryConv2d;
  readonly bn1: BatchNorm2d;
  readonly act1: RPReLU;
  readonly pool: AvgPool2d | null;
  readonly pw: BinaryConv2d;
  readonly bn2: BatchNorm2d;
  readonly act2: RPReLU;

  constructor(readonly inChannels: number, readonly outChannels: number, readonly stride: number, method: MethodPreset) {
    super();
    if (outChannels !== inChannels && outChannels !== 2 * inChannels) {
      fail('ReActBlock', 'outChannels = inChannels or 2·inChannels', `${inChannels} -> ${outChannels}`);
    }
    if (stride !== 1 && stride !== 2) fail('ReActBlock stride', '1 or 2', String(stride));
    const q = { inputQuantizer: method.inputQuantizer, kernelQuantizer: method.kernelQuantizer, padValue: 0 as const, bias: false };
    const c = inChannels;
    this.conv3x3 = this.registerModule('conv3x3', new BinaryConv2d(c, c, 3, { ...q, stride, padding: 1 }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(c));
    this.pool = stride === 2 ? this.registerModule('pool', new AvgPool2d(2, 2)) : null;
    this.act1 = this.registerModule('act1', new RPReLU(c));
    this.pw = this.registerModule('pw', new BinaryConv2d(c, outChannels, 1, q));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(outChannels));
    this.act2 = this.registerModule('act2', new RPReLU(outChannels));
  }

  forward(x: Tensor): Tensor {
    const r1 = this.pool ? this.pool.forward(x) : x;
    const out1 = this.act1.forward(add(this.bn1.forward(this.conv3x3.forward(x)), r1));
    const r2 = this.outChannels === this.inChannels ? out1 : repeatChannels(out1);
    return this.act2.forward(add(this.bn2.forward(this.pw.forward(out1)), r2));
  }

  override describe(): string {
    return `ReActBlock(${this.inChannels} -> ${this.outChannels}, stride ${this.stride})`;
  }
}

/** The whole network; child names: stem (conv, BN), features ("0".."12" blocks), pool, fc. */
export class ReActNetA extends Module {
  readonly stem: Sequential;
  readonly features: Sequential;
  readonly pool: GlobalAvgPool2d;
  readonly fc: Linear;
  readonly inputSize: number;
  readonly numClasses: number;

  constructor(readonly method: MethodPreset, opts: ReActNetAOptions = {}) {
    super();
    const size = opts.inputSize ?? 224;
    const stemStride = size >= 64 ? 2 : 1;
    // The stem and four stride-2 blocks must halve evenly: 32 × 2^(s0−1) divides the input size.
    const unit = 16 * stemStride;
    if (!Number.isInteger(size) || size < unit || size % unit) {
      fail('reactnetA inputSize', `a multiple of ${unit} (e.g. 224 for ImageNet, 32 for CIFAR)`, String(opts.inputSize));
    }
    const k = opts.numClasses ?? (size >= 64 ? 1000 : 10);
    if (!Number.isInteger(k) || k < 1) fail('reactnetA numClasses', 'a positive integer', String(k));
    this.inputSize = size;
    this.numClasses = k;
    const w = REACTNET_A_WIDTHS;
    this.stem = this.registerModule('stem', new Sequential(new Conv2d(3, w[0]!, 3, { stride: stemStride, padding: 1, bias: false }), new BatchNorm2d(w[0]!)));
    const blocks: ReActBlock[] = [];
    for (let i = 1; i < w.length; i++) {
      const stride = w[i] !== w[i - 1] && w[i] !== 64 ? 2 : 1;
      blocks.push(new ReActBlock(w[i - 1]!, w[i]!, stride, method));
    }
    this.features = this.registerModule('features', new Sequential(...blocks));
    this.pool = this.registerModule('pool', new GlobalAvgPool2d());
    this.fc = this.registerModule('fc', new Linear(w[w.length - 1]!, k));
  }

  forward(x: Tensor): Tensor {
    if (x.rank !== 4 || x.shape[1] !== 3 || x.shape[2] !== this.inputSize || x.shape[3] !== this.inputSize) {
      fail('ReActNetA', `input [N, 3, ${this.inputSize}, ${this.inputSize}]`, `shape ${fmtShape(x.shape)}`, 'Build it with the matching inputSize.');
    }
    return this.fc.forward(this.pool.forward(this.features.forward(this.stem.forward(x))));
  }

  override describe(): string {
    return `ReActNetA(method=${this.method.name}, input ${this.inputSize}, classes=${this.numClasses})`;
  }
}

/** ReActNet-A with the preset's quantizers; `inputSize` 224 (ImageNet, default) or 32 (CIFAR). */
export function reactnetA(method: MethodPreset, opts: ReActNetAOptions = {}): ReActNetA {
  return new ReActNetA(method, opts);
}

/**
 * [N, C, H, W] → [N, 2C, H, W] with y[:, c] = y[:, C + c] = x[:, c] (the shortcut of both halves
 * of a width-doubling ReActBlock). Gradient: dx[:, c] = g[:, c] + g[:, C + c].
 */
export function repeatChannels(x: Tensor): Tensor {
  if (x.rank !== 4) fail('repeatChannels', 'input [N, C, H, W]', `shape ${fmtShape(x.shape)}`);
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const plane = C * H * W;
  const xd = x.f32('repeatChannels');
  const y = new Float32Array(2 * N * plane);
  for (let n = 0; n < N; n++) {
    const src = xd.subarray(n * plane, (n + 1) * plane);
    y.set(src, 2 * n * plane);
    y.set(src, (2 * n + 1) * plane);
  }
  return record(wrap(y, [N, 2 * C, H, W]), 'repeatChannels', [x], (g) => {
    const gd = g.f32(), dx = new Float32Array(N * plane);
    for (let n = 0; n < N; n++) {
      const a = 2 * n * plane, b = a + plane, o = n * plane;
      for (let i = 0; i < plane; i++) dx[o + i] = gd[a + i]! + gd[b + i]!;
    }
    return [wrap(dx, x.shape)];
  });
}
