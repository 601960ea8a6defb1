import type { Module } from '../nn/module.js';
import type { TrainConfig } from '../train/config.js';
import { methodPreset } from './methods.js';
import { mnistModel } from './mnist.js';
import { resnet18 } from './resnet18.js';
import { resnet20 } from './resnet20.js';

export { methodActivation, methodNames, methodPreset, type MethodPreset } from './methods.js';
export { mnistModel } from './mnist.js';
export { BiRealBlock, ResNet18, resnet18, type ResNet18Options } from './resnet18.js';

/** The network a training config describes (same config → same architecture and parameter names). */
export function buildModel(config: Pick<TrainConfig, 'dataset' | 'arch' | 'method' | 'hidden'>): Module {
  const preset = methodPreset(config.method);
  switch (config.arch) {
    case 'resnet20':
      return resnet20(preset);
    case 'resnet18':
      return resnet18(preset);
    default:
      return mnistModel(config.arch, preset, { hidden: config.hidden });
  }
}
export { resnet20, shortcutA, TwoShortcutBlock } from './resnet20.js';
