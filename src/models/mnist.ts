import { fail } from '../core/errors.js';
import { BinaryConv2d, BinaryLinear } from '../nn/binary.js';
import { BatchNorm1d, BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d } from '../nn/layers.js';
import { Sequential } from '../nn/module.js';
import type { Module } from '../nn/module.js';
import { methodActivations, type MethodPreset } from './methods.js';

/**
 * Small binary networks for 28x28 single-channel inputs (MNIST). First and last layers stay real-
 * valued, as in every BNN paper; every hidden layer is binary (1-bit weights and activations).
 *
 * mlp:  Flatten → Linear(784, H) → BN → [BinaryLinear(H, H) → BN] × 2 → Linear(H, 10)
 * cnn:  Conv(1, 32, 3, pad 1) → BN → MaxPool 2 → BinaryConv(32, 64, 3, pad 1) → BN → MaxPool 2
 *       → Flatten → BinaryLinear(3136, 256) → BN → Linear(256, 10)
 *       The binary conv pads with zeros (padValue 0), as the official BNN codes do.
 * A method with a non-linearity (ReActNet/ReBNN: RPReLU, AdaBin: Maxout) gets it after every
 * batch norm; with the plain presets, sign is the only non-linearity.
 */
export function mnistModel(arch: string, method: MethodPreset, opts: { hidden?: number; numClasses?: number } = {}): Sequential {
  const q = { inputQuantizer: method.inputQuantizer, kernelQuantizer: method.kernelQuantizer };
  const k = opts.numClasses ?? 10;
  const act = (c: number): Module[] => methodActivations(method, c);
  switch (arch) {
    case 'mlp': {
      const h = opts.hidden ?? 256;
      return new Sequential(
        new Flatten(),
        new Linear(784, h), new BatchNorm1d(h), ...act(h),
        new BinaryLinear(h, h, q), new BatchNorm1d(h), ...act(h),
        new BinaryLinear(h, h, q), new BatchNorm1d(h), ...act(h),
        new Linear(h, k),
      );
    }
    case 'cnn':
      return new Sequential(
        new Conv2d(1, 32, 3, { padding: 1 }), new BatchNorm2d(32), ...act(32), new MaxPool2d(2),
        new BinaryConv2d(32, 64, 3, { ...q, padding: 1, padValue: 0 }), new BatchNorm2d(64), ...act(64), new MaxPool2d(2),
        new Flatten(),
        new BinaryLinear(64 * 7 * 7, 256, q), new BatchNorm1d(256), ...act(256),
        new Linear(256, k),
      );
    default:
      return fail('arch', 'one of mlp, cnn (for MNIST)', JSON.stringify(arch));
  }
}
