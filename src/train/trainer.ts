import * as fs from 'node:fs';
import * as path from 'node:path';
import { OnebitError, fail } from '../core/errors.js';
import { manualSeed, rng, type RngState } from '../core/rng.js';
import { Tensor } from '../core/tensor.js';
import { backward, noGrad } from '../autograd/tape.js';
import { clearRecyclePool, recycling } from '../core/recycle.js';
import { argmax } from '../ops/reduce.js';
import type { Module } from '../nn/module.js';
import { buildModel } from '../models/index.js';
import { FlipTracker } from '../metrics/flips.js';
import { createOptimizer, type Optimizer } from '../optim/index.js';
import { constantLr, cosineLr, linearLr, stepLr, warmup, type LrSchedule } from '../optim/schedule.js';
import { CIFAR10_MEAN, CIFAR10_STD, DataLoader, loadCifar10, loadMnist, MNIST_MEAN, MNIST_STD, type Dataset } from '../data/index.js';
import { defaultCifar10Dir } from '../data/download.js';
import { PrefetchLoader } from '../data/prefetch.js';
import { loadCheckpoint, saveCheckpoint, writeFileAtomic, type CheckpointData } from './checkpoint.js';
import { resolveConfig, type TrainConfig } from './config.js';
import { loadTeacher, teacherLogits, trainingLoss, type Teacher } from './distill.js';
import { initFromCheckpoint, type InitFromReport } from './init_from.js';

/** One line of the training log (also a line of metrics.jsonl). */
export interface EpochStats {
  epoch: number;
  epochs: number;
  /** Mean training loss, including any auxiliary term (`auxLoss`). */
  loss: number;
  /** Mean auxiliary loss the model adds through its gradients only (ReBNN's reconstruction term); 0 if none. */
  auxLoss: number;
  trainAcc: number;
  testAcc: number;
  lr: number;
  imagesPerSec: number;
  /** Mean per-step flip rate FR(t) of all binary layers' latent weights over the epoch. */
  flipRate: number;
  flipRateLayers: Record<string, number>;
  /** Mean sequential-oscillation rate SO(t) (flip, then flip straight back) over the epoch. */
  oscillationRate: number;
  /** Fraction of binary weights whose sign differs from initialisation (RBNN's notion). */
  initFlip: number;
  seconds: number;
}

/** Hooks the training loop calls; all optional. The CLI uses them for the progress bar and log lines. */
export interface TrainCallbacks {
  onTrainStart?(info: { config: TrainConfig; startEpoch: number; numBatches: number; model: Module }): void;
  /** After `config.initFrom` was applied (fresh runs only): what was loaded, kept at init, ignored. */
  onInitFrom?(report: InitFromReport): void;
  /** After the `config.teacher` checkpoint was loaded. */
  onTeacher?(info: { file: string; config: TrainConfig; params: number }): void;
  onEpochStart?(epoch: number): void;
  onBatchEnd?(info: { epoch: number; batch: number; numBatches: number; loss: number }): void;
  onEvalStart?(epoch: number): void;
  onEpochEnd?(stats: EpochStats): void;
  onCheckpoint?(file: string): void;
}

export interface TrainOptions {
  /** Run folder: last.ckpt, best.ckpt, metrics.jsonl, config.json. Nothing is written when empty. */
  outDir?: string;
  /** Checkpoint to continue from; its config is used (only `epochs` may be raised). */
  resume?: string;
  callbacks?: TrainCallbacks;
  /** Stop after this many epochs in this process (tests use it to simulate an interruption). */
  stopAfterEpochs?: number;
}

export interface TrainResult {
  config: TrainConfig;
  model: Module;
  history: EpochStats[];
}

interface Meta {
  kind: 'onebit-train';
  config: TrainConfig;
  epoch: number;
  rng: RngState;
  optimizer: { kind: string; step: number; groups: Record<string, unknown>[] };
  history: EpochStats[];
  /** SHA-256 of the teacher checkpoint (config.teacher) the run distils from; absent without one. */
  teacherSha256?: string;
}

/** Build everything a config describes: the seeded model and its optimizer. */
export function setup(config: TrainConfig): { model: Module; optimizer: Optimizer } {
  manualSeed(config.seed);
  const model = buildModel(config);
  const optimizer = createOptimizer(config.optimizer, model.parameters(), {
    lr: config.lr,
    weightDecay: config.weightDecay,
    ...(config.optimizer === 'sgd' ? { momentum: config.momentum } : {}),
  });
  return { model, optimizer };
}

/**
 * The learning-rate schedule over `totalSteps` optimizer steps: cosine to 0, linear to 0, step
 * (×0.1 at each third of training) or constant, after an optional linear warm-up.
 */
export function makeSchedule(config: TrainConfig, stepsPerEpoch: number): LrSchedule {
  const total = config.epochs * stepsPerEpoch;
  const base =
    config.schedule === 'cosine' ? cosineLr() :
    config.schedule === 'linear' ? linearLr() :
    config.schedule === 'step' ? stepLr({ stepSize: Math.max(1, Math.ceil(total / 3)), gamma: 0.1 }) : constantLr();
  return config.warmupEpochs > 0 ? warmup(base, { steps: Math.max(1, Math.round(config.warmupEpochs * stepsPerEpoch)) }) : base;
}

/**
 * The training and test sets of a config (subsets applied). CIFAR-10 is read from `dataDir`, or the
 * cache folder (`defaultCifar10Dir()`; `onebit train` downloads it there first when missing).
 */
export function loadData(config: TrainConfig, only?: 'test'): { train: Dataset; test: Dataset } {
  const dir = config.dataDir || undefined;
  const cifar = config.dataset === 'cifar10';
  const load = (split: 'train' | 'test'): Dataset => (cifar ? loadCifar10(split, dir ?? defaultCifar10Dir()) : loadMnist(split, dir));
  const test = head(load('test'), config.testSubset);
  return { train: only === 'test' ? test : head(load('train'), config.trainSubset), test };
}

/** Per-channel normalization of a dataset (training-set statistics). */
export function datasetNorm(dataset: TrainConfig['dataset']): { mean: number[]; std: number[] } {
  return dataset === 'cifar10' ? { mean: CIFAR10_MEAN, std: CIFAR10_STD } : { mean: MNIST_MEAN, std: MNIST_STD };
}

/** The first n examples of a dataset (a view, no copy); n = 0 keeps all. */
function head(ds: Dataset, n: number): Dataset {
  if (!n || n >= ds.count) return ds;
  const per = ds.shape.reduce((a, b) => a * b, 1);
  return { ...ds, images: ds.images.subarray(0, n * per), labels: ds.labels.subarray(0, n), count: n };
}

/**
 * Train a model as `config` says (see TrainConfig), checkpointing every epoch. With
 * `config.teacher` the loss distils from that checkpoint's model (see `trainingLoss`); with
 * `config.initFrom` a fresh run starts from that checkpoint's matching tensors (`initFromCheckpoint`).
 * Both paths are stored absolute, so a resumed run finds them from any folder.
 */
export function train(partial: Partial<TrainConfig>, opts: TrainOptions = {}): TrainResult {
  let config = resolveConfig(partial);
  if (!opts.resume) config = { ...config, teacher: config.teacher && path.resolve(config.teacher), initFrom: config.initFrom && path.resolve(config.initFrom) };
  let startEpoch = 0;
  let history: EpochStats[] = [];
  let resumed: { ck: CheckpointData; meta: Meta } | null = null;
  if (opts.resume) {
    const ck = loadCheckpoint(opts.resume);
    const meta = checkMeta(ck, opts.resume);
    if (partial.epochs !== undefined && partial.epochs < meta.epoch) {
      fail('--epochs', `at least the ${meta.epoch} epochs already done`, String(partial.epochs));
    }
    config = resolveConfig({ ...meta.config, epochs: partial.epochs ?? meta.config.epochs });
    resumed = { ck, meta };
    startEpoch = meta.epoch;
    history = meta.history.slice(0, startEpoch);
  }

  // The teacher is built first: loading it re-seeds the global RNG, and setup() seeds it again.
  const teacher: Teacher | null = config.teacher ? loadTeacher(config.teacher, config.dataset, loadTrainedModel) : null;
  if (teacher && resumed?.meta.teacherSha256 && resumed.meta.teacherSha256 !== teacher.sha256) {
    fail('--resume', `the teacher checkpoint the run started with (SHA-256 ${resumed.meta.teacherSha256.slice(0, 12)}…)`,
      `a different file at ${config.teacher} (${teacher.sha256.slice(0, 12)}…)`, 'Put the original teacher back, or start a new run.');
  }
  const { model, optimizer } = setup(config);
  // Before the flip tracker, so "flips from init" count from the loaded weights. On resume the
  // checkpoint restores everything, so it is not applied again.
  const initReport = config.initFrom && !resumed ? initFromCheckpoint(model, config.initFrom) : null;
  const data = loadData(config);
  const norm = datasetNorm(config.dataset);
  const augment = config.dataset === 'cifar10' && config.augment ? { pad: 4, flip: true } : undefined;
  // Augmented batches are built in a worker (data/prefetch.ts): identical batches and rng use, the
  // training thread only copies them.
  const trainOpts = { batchSize: config.batchSize, shuffle: true, normalize: norm, augment };
  const trainLoader = augment ? new PrefetchLoader(data.train, trainOpts) : new DataLoader(data.train, trainOpts);
  const testLoader = new DataLoader(data.test, { batchSize: Math.min(config.dataset === 'cifar10' ? 500 : 1000, data.test.count), shuffle: false, normalize: norm });
  const numBatches = trainLoader.numBatches;
  const totalSteps = config.epochs * numBatches;
  const schedule = makeSchedule(config, numBatches);

  const flips = new FlipTracker(model);
  if (resumed) restore(resumed.ck, resumed.meta, model, optimizer, flips);
  const modules = model.namedModules().map(([, m]) => m);
  const cb = opts.callbacks ?? {};
  cb.onTrainStart?.({ config, startEpoch, numBatches, model });
  if (initReport) cb.onInitFrom?.(initReport);
  if (teacher) cb.onTeacher?.({ file: teacher.file, config: teacher.config, params: teacher.model.parameters().reduce((n, p) => n + p.size, 0) });
  if (opts.outDir) {
    fs.mkdirSync(opts.outDir, { recursive: true });
    // Temp files of a save that was killed mid-write (the checkpoint they were meant to replace is intact).
    for (const f of fs.readdirSync(opts.outDir)) if (/^\..+\.\d+\.tmp$/.test(f)) fs.rmSync(path.join(opts.outDir, f), { force: true });
    writeFileAtomic(path.join(opts.outDir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  }

  const stopAt = opts.stopAfterEpochs !== undefined ? Math.min(config.epochs, startEpoch + opts.stopAfterEpochs) : config.epochs;
  // Parameters, their gradients and buffers outlive a step; everything else a step allocates is
  // reused by the next (core/recycle.ts). The pool is dropped when training ends.
  const keepModel = () => persistentTensors(model);
  try {
    for (let epoch = startEpoch; epoch < stopAt; epoch++) {
      cb.onEpochStart?.(epoch + 1);
      model.train();
      flips.resetEpoch();
      for (const m of modules) m.onEpochStart(epoch, config.epochs);
      const t0 = performance.now();
      let lossSum = 0, auxSum = 0, correct = 0, seen = 0, batch = 0, lr = 0;
      for (const { x, y } of trainLoader.batches()) {
        const step = epoch * numBatches + batch;
        optimizer.setLrFactor(schedule.factor(step, totalSteps));
        lr = optimizer.lr;
          const [l, aux, right] = recycling(keepModel, () => {
          const logits = model.forward(x);
          const loss = trainingLoss(logits, y, {
            teacherLogits: teacher ? teacherLogits(teacher, x) : null,
            kdWeight: config.kdWeight, kdTemperature: config.kdTemperature, labelSmoothing: config.labelSmoothing,
          });
          backward(loss);
          optimizer.step();
          optimizer.zeroGrad();
          flips.update();
          let auxStep = 0;
          for (const m of modules) {
            auxStep += m.auxLoss();
            m.afterStep();
          }
          return [loss.item() + auxStep, auxStep, countCorrect(logits, y)] as const;
        });
        if (!Number.isFinite(l)) {
          throw new OnebitError(`train: expected a finite loss, but got ${l} at epoch ${epoch + 1}, batch ${batch + 1}. Lower --lr.`);
        }
        lossSum += l * y.length;
        auxSum += aux * y.length;
        correct += right;
        seen += y.length;
        batch++;
        cb.onBatchEnd?.({ epoch: epoch + 1, batch, numBatches, loss: lossSum / seen });
      }
      const seconds = (performance.now() - t0) / 1000;
      cb.onEvalStart?.(epoch + 1);
      const testAcc = evaluate(model, testLoader);
      const fr = flips.epochRate();
      const stats: EpochStats = {
        epoch: epoch + 1, epochs: config.epochs, loss: lossSum / seen, auxLoss: auxSum / seen, trainAcc: correct / seen, testAcc, lr,
        imagesPerSec: seen / seconds, flipRate: fr.model, flipRateLayers: fr.layers, oscillationRate: fr.so, initFlip: fr.initFlip, seconds,
      };
      history.push(stats);
      if (opts.outDir) {
        appendFlipLog(opts.outDir, epoch + 1, flips);
        const ck = makeCheckpoint(config, epoch + 1, model, optimizer, history, flips, teacher?.sha256);
        const last = path.join(opts.outDir, 'last.ckpt');
        saveCheckpoint(last, ck);
        cb.onCheckpoint?.(last);
        if (history.every((h) => h.testAcc <= testAcc)) saveCheckpoint(path.join(opts.outDir, 'best.ckpt'), ck);
        writeFileAtomic(path.join(opts.outDir, 'metrics.jsonl'), history.map((h) => JSON.stringify(h)).join('\n') + '\n');
      }
      cb.onEpochEnd?.(stats);
    }
  } finally {
    clearRecyclePool();
  }
  return { config, model, history };
}

/**
 * What outlives a training step or an evaluation batch of `model`: its parameters (with their
 * gradients) and buffers. Everything else such a step allocates is recycled (core/recycle.ts).
 */
export function persistentTensors(model: Module): Tensor[] {
  return [...model.parameters(), ...model.namedBuffers().map(([, b]) => b)];
}

/** Top-1 accuracy of `model` in eval mode over a loader, with no tape. */
export function evaluate(model: Module, loader: DataLoader): number {
  const wasTraining = model.training;
  model.eval();
  let correct = 0, seen = 0;
  noGrad(() => {
    for (const { x, y } of loader.batches()) {
      correct += recycling(() => persistentTensors(model), () => countCorrect(model.forward(x), y));
      seen += y.length;
    }
  });
  clearRecyclePool();
  model.train(wasTraining);
  return correct / seen;
}

function countCorrect(logits: Tensor, y: Int32Array): number {
  const pred = argmax(logits.detach(), 1).values();
  let c = 0;
  for (let i = 0; i < y.length; i++) if (pred[i] === y[i]) c++;
  return c;
}

function makeCheckpoint(config: TrainConfig, epoch: number, model: Module, optimizer: Optimizer, history: EpochStats[], flips: FlipTracker, teacherSha256?: string): CheckpointData {
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, data] of flips.state()) tensors.set(`flips.${name}`, { shape: [data.length], data });
  for (const [name, t] of model.stateDict()) tensors.set(`model.${name}`, { shape: [...t.shape], data: t.f32() });
  const sd = optimizer.stateDict();
  for (const [key, buf] of Object.entries(sd.buffers)) tensors.set(`optim.${key}`, { shape: [buf.length], data: buf });
  const meta: Meta = {
    kind: 'onebit-train', config, epoch, rng: rng().getState(),
    optimizer: { kind: sd.kind, step: sd.step, groups: sd.groups as Record<string, unknown>[] }, history,
    ...(teacherSha256 ? { teacherSha256 } : {}),
  };
  return { meta: meta as unknown as Record<string, unknown>, tensors };
}

function checkMeta(ck: CheckpointData, file: string): Meta {
  const m = ck.meta as Partial<Meta>;
  if (m.kind !== 'onebit-train' || !m.config || typeof m.epoch !== 'number' || !m.rng || !m.optimizer || !Array.isArray(m.history)) {
    throw new OnebitError(`${file}: expected a training checkpoint (kind "onebit-train"), but got kind ${JSON.stringify(m.kind)}. Was it written by \`onebit export\`?`);
  }
  return m as Meta;
}

/**
 * flips.jsonl: one line per epoch with per-layer flip statistics (FR, SO, init flip, latent-weight
 * histogram) and the model-wide FR(t) of every step. Lines past `epoch` (from a run that was killed
 * and resumed) are dropped before appending.
 */
function appendFlipLog(outDir: string, epoch: number, flips: FlipTracker): void {
  if (!flips.hasBinaryLayers) return;
  const file = path.join(outDir, 'flips.jsonl');
  const kept = fs.existsSync(file)
    ? fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() && (JSON.parse(l) as { epoch: number }).epoch < epoch)
    : [];
  kept.push(JSON.stringify({ epoch, layers: flips.layerStats(), frSteps: flips.stepRates() }));
  writeFileAtomic(file, kept.join('\n') + '\n');
}

function restore(ck: CheckpointData, meta: Meta, model: Module, optimizer: Optimizer, flips: FlipTracker): void {
  const modelState = new Map<string, Float32Array>();
  const buffers: Record<string, Float32Array> = {};
  const flipState = new Map<string, Float32Array>();
  for (const [name, t] of ck.tensors) {
    if (name.startsWith('model.')) modelState.set(name.slice(6), t.data);
    else if (name.startsWith('optim.')) buffers[name.slice(6)] = t.data;
    else if (name.startsWith('flips.')) flipState.set(name.slice(6), t.data);
  }
  flips.loadState(flipState);
  model.loadStateDict(modelState);
  optimizer.loadStateDict({ ...meta.optimizer, buffers } as Parameters<Optimizer['loadStateDict']>[0]);
  rng().setState(meta.rng);
}

/** Load a training checkpoint's model (config + weights) for evaluation or export. */
export function loadTrainedModel(file: string): { config: TrainConfig; model: Module; meta: Meta } {
  const ck = loadCheckpoint(file);
  const meta = checkMeta(ck, file);
  const config = resolveConfig(meta.config);
  manualSeed(config.seed);
  const model = buildModel(config);
  const state = new Map<string, Float32Array>();
  for (const [name, t] of ck.tensors) if (name.startsWith('model.')) state.set(name.slice(6), t.data);
  model.loadStateDict(state);
  return { config, model, meta };
}
