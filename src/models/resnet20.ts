import { fail, fmtShape } from '../core/errors.js';
import { backend, type Tensor, wrap } from '../core/tensor.js';
import { shortcutA as refShortcutA } from '../backends/ref/shortcut.js';
import { fresh, record } from '../autograd/tape.js';
import { add } from '../ops/elementwise.js';
import { BinaryConv2d } from '../nn/binary.js';
import { BatchNorm1d, BatchNorm2d, Conv2d, GlobalAvgPool2d, Linear } from '../nn/layers.js';
import { Module, Sequential } from '../nn/module.js';
import { methodActivation, methodActivations, type MethodPreset } from './methods.js';

/**
 * ResNet-20 for CIFAR (32×32×3) with the Bi-Real/AdaBin two-shortcut block (methods.md §3.6):
 * channels 16/32/64, [3, 3, 3] blocks, a real shortcut around EACH of the block's two binary 3×3
 * convs, option-A downsampling (x[:, :, ::2, ::2] zero-padded in channels, no parameters).
 *   stem:  real Conv3x3(3, 16) → BN → act
 *   block: out = act(BN(BinConv3x3(x, stride)) + shortcut(x));  out = act(BN(BinConv3x3(out)) + out)
 *   head:  global average pool → BN1d(64) → real Linear(64, classes)
 * `act` is the method's non-linearity (Maxout for AdaBin, RPReLU for ReActNet/ReBNN, none for the
 * plain presets). Binary convs zero-pad (padValue 0), as the official codes.
 */
export function resnet20(method: MethodPreset, opts: { numClasses?: number } = {}): Sequential {
  const act = (c: number): Module[] => methodActivations(method, c);
  const layers: Module[] = [new Conv2d(3, 16, 3, { padding: 1, bias: false }), new BatchNorm2d(16), ...act(16)];
  let cin = 16;
  for (const [stage, c] of [16, 32, 64].entries()) {
    for (let b = 0; b < 3; b++) {
      layers.push(new TwoShortcutBlock(cin, c, b === 0 && stage > 0 ? 2 : 1, method));
      cin = c;
    }
  }
  layers.push(new GlobalAvgPool2d(), new BatchNorm1d(64), new Linear(64, opts.numClasses ?? 10));
  return new Sequential(...layers);
}

/** The Bi-Real/AdaBin block with a shortcut around each of its two binary convs. */
export class TwoShortcutBlock extends Module {
  readonly conv1: BinaryConv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: BinaryConv2d;
  readonly bn2: BatchNorm2d;
  readonly act1: Module | null;
  readonly act2: Module | null;

  constructor(readonly inChannels: number, readonly outChannels: number, readonly stride: number, method: MethodPreset) {
    super();
    const q = { inputQuantizer: method.inputQuantizer, kernelQuantizer: method.kernelQuantizer, bias: false, padValue: 0 as const };
    this.conv1 = this.registerModule('conv1', new BinaryConv2d(inChannels, outChannels, 3, { ...q, stride, padding: 1 }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(outChannels));
    this.conv2 = this.registerModule('conv2', new BinaryConv2d(outChannels, outChannels, 3, { ...q, padding: 1 }));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(outChannels));
    const a1 = methodActivation(method, outChannels), a2 = methodActivation(method, outChannels);
    this.act1 = a1 && this.registerModule('act1', a1);
    this.act2 = a2 && this.registerModule('act2', a2);
  }

  forward(x: Tensor): Tensor {
    const r = this.stride === 1 && this.inChannels === this.outChannels ? x : shortcutA(x, this.outChannels);
    // BN + residual add fused (one pass; same values as add(bn(·), r)).
    let out = this.bn1.forwardAdd(this.conv1.forward(x), r);
    if (this.act1) out = this.act1.forward(out);
    let y = this.bn2.forwardAdd(this.conv2.forward(out), out);
    if (this.act2) y = this.act2.forward(y);
    return y;
  }
}

/**
 * Option-A shortcut (He et al. 2016, CIFAR ResNets): y = x[:, :, ::2, ::2] with (outC − C)/2 zero
 * channels on each side. No parameters; the gradient gathers the middle channels back.
 */
export function shortcutA(x: Tensor, outChannels: number): Tensor {
  if (x.rank !== 4 || (outChannels - x.shape[1]!) % 2 || outChannels < x.shape[1]!) {
    fail('shortcutA', `input [N, C, H, W] with ${outChannels} − C even and >= 0`, `shape ${fmtShape(x.shape)}`);
  }
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const Ho = Math.ceil(H / 2), Wo = Math.ceil(W / 2);
  const k = backend().shortcutA ?? refShortcutA;
  const y = k('forward', x.f32('shortcutA'), N, C, H, W, outChannels);
  return record(wrap(y, [N, outChannels, Ho, Wo]), 'shortcutA', [x], (g) => [fresh(wrap(k('backward', g.f32(), N, C, H, W, outChannels), x.shape))]);
}
