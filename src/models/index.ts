import type { Module } from '../nn/module.js';
import type { TrainConfig } from '../train/config.js';
import { methodPreset, withBinarize, type Binarize } from './methods.js';
import { mnistModel } from './mnist.js';
import { reactnetA } from './reactnet_a.js';
import { resnet18 } from './resnet18.js';
import { resnet20 } from './resnet20.js';
import { vggSmall } from './vgg_small.js';

export { methodActivation, methodActivations, methodNames, methodPreset, withBinarize, type Binarize, type MethodActivation, type MethodPreset } from './methods.js';
export { mnistModel } from './mnist.js';
export { BiRealBlock, ResNet18, resnet18, type ResNet18Options } from './resnet18.js';
export { resnet20, shortcutA, TwoShortcutBlock } from './resnet20.js';
export { VggSmall, vggSmall } from './vgg_small.js';
export { REACTNET_A_WIDTHS, ReActBlock, ReActNetA, reactnetA, repeatChannels, type ReActNetAOptions } from './reactnet_a.js';

/**
 * The network a training config describes (same config → same architecture and parameter names).
 * `binarize` (default "both") makes one side of every binary layer real (ReActNet two-step recipe).
 * CIFAR archs are built for 32×32×3 inputs and 10 classes (reactnet-a with its CIFAR stem).
 */
export function buildModel(config: Pick<TrainConfig, 'dataset' | 'arch' | 'method' | 'hidden'> & { binarize?: Binarize }): Module {
  const preset = withBinarize(methodPreset(config.method), config.binarize ?? 'both');
  switch (config.arch) {
    case 'resnet20':
      return resnet20(preset);
    case 'resnet18':
      return resnet18(preset);
    case 'vgg-small':
      return vggSmall(preset);
    case 'reactnet-a':
      return reactnetA(preset, { inputSize: 32 });
    default:
      return mnistModel(config.arch, preset, { hidden: config.hidden });
  }
}
