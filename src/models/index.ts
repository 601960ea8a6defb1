import type { Sequential } from '../nn/module.js';
import type { TrainConfig } from '../train/config.js';
import { methodPreset } from './methods.js';
import { mnistModel } from './mnist.js';

export { methodActivation, methodNames, methodPreset, type MethodPreset } from './methods.js';
export { mnistModel } from './mnist.js';
export { BiRealBlock, ResNet18, resnet18, type ResNet18Options } from './resnet18.js';

/** The network a training config describes (same config → same architecture and parameter names). */
export function buildModel(config: Pick<TrainConfig, 'dataset' | 'arch' | 'method' | 'hidden'>): Sequential {
  return mnistModel(config.arch, methodPreset(config.method), { hidden: config.hidden });
}
export { resnet20, shortcutA, TwoShortcutBlock } from './resnet20.js';
