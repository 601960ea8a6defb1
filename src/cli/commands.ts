import * as fs from 'node:fs';
import * as path from 'node:path';
import cliProgress from 'cli-progress';
import { OnebitError } from '../core/errors.js';
import { ensureCifar10 } from '../data/download.js';
import { loadCheckpoint } from '../train/checkpoint.js';
import { DataLoader } from '../data/index.js';
import { datasetNorm, evaluate, loadData, loadTrainedModel, train, type EpochStats, type TrainCallbacks } from '../train/trainer.js';
import type { Command } from 'commander';
import { resolveConfig, type TrainConfig } from '../train/config.js';
import type { InitFromReport } from '../train/init_from.js';
import { formatSummary, summary } from '../metrics/summary.js';
import { methodPreset, mnistModel, reactnetA, resnet18, resnet20, vggSmall, withBinarize, type Binarize } from '../models/index.js';

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
// Always `N.NNe-N` (scripts parse it): rates are < 1, and 0 prints as 0.00e-0.
const flip = (x: number) => x.toExponential(2).replace('e+0', 'e-0');

/** One log line per epoch; scripts read `test acc NN.NN%` and `flip N.NNe-N`. */
export function formatEpoch(s: EpochStats): string {
  return [
    `epoch ${s.epoch}/${s.epochs}`,
    `loss ${s.loss.toFixed(4)}` + (s.auxLoss ? ` (rec ${s.auxLoss.toExponential(2)})` : ''),
    `train acc ${pct(s.trainAcc)}`,
    `test acc ${pct(s.testAcc)}`,
    `lr ${s.lr.toExponential(2)}`,
    `${Math.round(s.imagesPerSec)} img/s`,
    `flip ${flip(s.flipRate)}`,
    `osc ${flip(s.oscillationRate)}`,
    `${s.seconds.toFixed(1)} s`,
  ].join('  ');
}

function resolveCheckpoint(p: string): string {
  return fs.existsSync(p) && fs.statSync(p).isDirectory() ? path.join(p, 'last.ckpt') : p;
}

interface TrainFlags extends Partial<TrainConfig> {
  out?: string;
  resume?: string;
  force?: boolean;
  progress?: boolean;
}

/**
 * The options the user actually gave (commander fills in defaults; those are dropped), so that a
 * `--recipe` can supply its own values for everything not given explicitly.
 */
export function explicitOptions<T extends Record<string, unknown>>(opts: T, cmd: Command): Partial<T> {
  return Object.fromEntries(Object.entries(opts).filter(([k]) => cmd.getOptionValueSource(k) !== 'default')) as Partial<T>;
}

/**
 * `onebit train`. `flags` holds only the options given on the command line (`explicitOptions`):
 * the recipe and the defaults fill in the rest (`resolveConfig`).
 */
/**
 * Make sure CIFAR-10 is on disk before a synchronous training or evaluation starts: with
 * --data-dir the files are checked; without, the cache folder is used and, when missing, the
 * official archive is downloaded and verified there (data/download.ts), with a progress bar.
 */
export async function ensureDataFor(dataset: string, dataDir: string | undefined, progress = true): Promise<void> {
  if (dataset === 'cifar10') await ensureCifar10({ dataDir: dataDir || undefined, progress });
}

/**
 * The saved config of a run folder that was stopped before its first epoch ended: config.json is
 * written at the start, the first checkpoint only after epoch 1, so such a folder has a config but
 * no last.ckpt/best.ckpt and no metrics. `--resume` starts it over from that config (nothing was
 * banked, so nothing is lost). Null for anything else (a checkpoint file, a folder with a checkpoint
 * or with metrics, a missing path): those take the normal resume path and its errors.
 */
export function unstartedRunConfig(resumeArg: string): Partial<TrainConfig> | null {
  if (!fs.existsSync(resumeArg) || !fs.statSync(resumeArg).isDirectory()) return null;
  const has = (f: string) => fs.existsSync(path.join(resumeArg, f));
  if (has('last.ckpt') || has('best.ckpt') || !has('config.json')) return null;
  const metrics = path.join(resumeArg, 'metrics.jsonl');
  if (fs.existsSync(metrics) && fs.readFileSync(metrics, 'utf8').trim()) return null;
  const file = path.join(resumeArg, 'config.json');
  let c: unknown;
  try {
    c = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new OnebitError(`--resume: expected ${file} to hold the run's JSON config, but got ${(e as Error).message}. Start the run again with its flags and --out ${resumeArg} --force.`);
  }
  if (typeof c !== 'object' || c === null || Array.isArray(c)) {
    throw new OnebitError(`--resume: expected ${file} to hold a JSON object, but got ${Array.isArray(c) ? 'an array' : JSON.stringify(c)}. Start the run again with its flags and --out ${resumeArg} --force.`);
  }
  return c as Partial<TrainConfig>;
}

/** The dataset a `train` invocation will use (from the checkpoint on --resume). */
export function datasetOf(flags: TrainFlags): { dataset: string; dataDir?: string } {
  const unstarted = flags.resume ? unstartedRunConfig(flags.resume) : null;
  if (unstarted) {
    const c = resolveConfig(unstarted);
    return { dataset: c.dataset, dataDir: c.dataDir || undefined };
  }
  if (flags.resume) return checkpointData(flags.resume);
  const { out: _o, resume: _r, force: _f, progress: _p, ...rest } = flags;
  const c = resolveConfig(rest);
  return { dataset: c.dataset, dataDir: c.dataDir };
}

/** Dataset and data folder stored in a checkpoint (or a run folder's last.ckpt). */
export function checkpointData(ckpt: string): { dataset: string; dataDir?: string } {
  const c = (loadCheckpoint(resolveCheckpoint(ckpt)).meta as { config?: Partial<TrainConfig> }).config ?? {};
  return { dataset: c.dataset ?? 'mnist', dataDir: c.dataDir || undefined };
}

export function runTrain(flags: TrainFlags): void {
  const { out: outArg, resume: resumeArg, force, progress, ...rest } = flags;
  let out = outArg;
  const unstarted = resumeArg ? unstartedRunConfig(resumeArg) : null;
  const resume = resumeArg && !unstarted ? resolveCheckpoint(resumeArg) : undefined;
  let config: Partial<TrainConfig> = { ...rest };
  // Like --resume, --teacher and --init-from accept a run folder (its last.ckpt).
  if (rest.teacher) config.teacher = resolveCheckpoint(rest.teacher);
  if (rest.initFrom) config.initFrom = resolveCheckpoint(rest.initFrom);
  if (unstarted) {
    // Its saved config rules, as on any resume; only an explicitly given --epochs may change it.
    config = rest.epochs !== undefined ? { ...unstarted, epochs: rest.epochs } : unstarted;
    out = resumeArg;
    console.log(`${resumeArg} has its config.json but no checkpoint yet (stopped before epoch 1 ended): starting it over from that config.`);
  } else if (resume) {
    // On resume the checkpoint's config rules; only an explicitly given --epochs may extend it.
    config = rest.epochs !== undefined ? { epochs: rest.epochs } : {};
  } else if ((rest.kdWeight !== undefined || rest.kdTemperature !== undefined) && !rest.teacher) {
    throw new OnebitError(`--${rest.kdWeight !== undefined ? 'kd-weight' : 'kd-temperature'}: expected a --teacher checkpoint to distil from, but got none. Add --teacher <ckpt>.`);
  }
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  const named = resume ? null : resolveConfig(config);
  const outDir = out ?? (named ? path.join('runs', `${named.dataset}-${named.arch}-${named.method}-${stamp}`) : path.dirname(resume!));
  if (!resume && !force && fs.existsSync(path.join(outDir, 'last.ckpt'))) {
    throw new OnebitError(`--out: expected a folder without a checkpoint, but got ${outDir} which has last.ckpt. Use --resume ${outDir} to continue it, --force to overwrite, or another --out.`);
  }

  const t0 = performance.now();
  const bar = new cliProgress.SingleBar(
    {
      format: ' {bar} {percentage}% | batch {value}/{total} | loss {loss} | ETA {eta_formatted}',
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: true,
    },
    cliProgress.Presets.shades_classic,
  );
  // A terminal gets a live bar; a log file (no TTY) gets a plain line at every quarter of an epoch,
  // since the bar's own timer cannot fire while the synchronous training loop runs.
  const useBar = progress !== false && process.stderr.isTTY === true;
  const usePlain = progress !== false && !useBar;
  let nextQuarter = 1;
  let run: TrainConfig | null = null;
  const callbacks: TrainCallbacks = {
    onTrainStart: ({ config: c, startEpoch, numBatches, model }) => {
      run = c;
      const nParams = model.parameters().reduce((n, p) => n + p.size, 0);
      console.log(
        `onebit train: ${c.dataset} ${c.arch} method=${c.method} epochs=${c.epochs} batch=${c.batchSize} ` +
          `${c.optimizer} lr=${c.lr} wd=${c.weightDecay} ${c.schedule} seed=${c.seed}` +
          (c.recipe !== 'default' ? ` recipe=${c.recipe}` : '') + (c.binarize !== 'both' ? ` binarize=${c.binarize}` : '') +
          ` | ${nParams} parameters | ${numBatches} batches/epoch` +
          (startEpoch ? ` | resuming after epoch ${startEpoch}` : '') + ` | run folder ${outDir}`,
      );
    },
    onEpochStart: (epoch) => {
      nextQuarter = 1;
      if (useBar) {
        process.stderr.write(`epoch ${epoch}\n`);
        bar.start(1, 0, { loss: '-' });
      }
    },
    onBatchEnd: ({ epoch, batch, numBatches, loss }) => {
      if (useBar) {
        bar.setTotal(numBatches);
        bar.update(batch, { loss: loss.toFixed(4) });
      } else if (usePlain && batch >= (nextQuarter * numBatches) / 4) {
        process.stderr.write(`  epoch ${epoch}: ${nextQuarter * 25}% (${batch}/${numBatches} batches)  loss ${loss.toFixed(4)}  ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
        nextQuarter++;
      }
    },
    onEvalStart: () => {
      if (useBar) bar.stop();
    },
    onEpochEnd: (s) => console.log(formatEpoch(s)),
    onInitFrom: (r) => console.log(formatInitFrom(r)),
    onTeacher: ({ file, config: t, params }) =>
      console.log(`teacher: ${file} (${t.dataset} ${t.arch} method=${t.method}, ${params} parameters), kd-weight ${run?.kdWeight}, temperature ${run?.kdTemperature}`),
  };
  const result = train(config, { outDir, resume, callbacks });
  const h = result.history;
  if (!h.length) {
    console.log('nothing to do: the checkpoint has already completed all epochs (raise --epochs to continue).');
    return;
  }
  const best = h.reduce((a, b) => (b.testAcc > a.testAcc ? b : a));
  const last = h[h.length - 1]!;
  console.log(
    `done: ${last.epoch} epochs, ${((performance.now() - t0) / 1000).toFixed(1)} s in this process | ` +
      `final test acc ${pct(last.testAcc)}  best test acc ${pct(best.testAcc)} (epoch ${best.epoch})  flip ${flip(last.flipRate)} | ` +
      `checkpoint ${path.join(outDir, 'last.ckpt')}`,
  );
}

/** One-line (plus names) report of `--init-from`: loaded / kept at init / ignored tensors. */
export function formatInitFrom(r: InitFromReport): string {
  const names = (a: string[]) => (a.length ? `: ${a.slice(0, 8).join(', ')}${a.length > 8 ? `, … (${a.length - 8} more)` : ''}` : '');
  return [
    `init-from ${r.file}: loaded ${r.loaded.length} tensors`,
    `  kept at initialisation (not in the checkpoint) ${r.missing.length}${names(r.missing)}`,
    `  ignored (not in this model) ${r.unexpected.length}${names(r.unexpected)}`,
    ...(r.renamed.length
      ? [`  names did not line up; layers matched by position (checkpoint → model): ${r.renamed.filter(([a, b]) => a !== b).map(([a, b]) => `${a} → ${b}`).join(', ') || 'none moved'}`]
      : []),
  ].join('\n');
}

/** `onebit eval`: test accuracy of a training checkpoint. */
export function runEval(ckptArg: string, flags: { dataDir?: string }): void {
  const file = resolveCheckpoint(ckptArg);
  const { config, model, meta } = loadTrainedModel(file);
  const { test } = loadData({ ...config, dataDir: flags.dataDir ?? config.dataDir, trainSubset: 0, testSubset: 0 }, 'test');
  const loader = new DataLoader(test, { batchSize: Math.min(500, test.count), shuffle: false, normalize: datasetNorm(config.dataset) });
  const acc = evaluate(model, loader);
  console.log(`${file}: ${config.dataset} ${config.arch} method=${config.method}, epoch ${meta.epoch}: test acc ${pct(acc)}`);
}

/**
 * `onebit summary`: the bit-aware per-layer table of an architecture + method (no training, no
 * data). reactnet-a is built for `inputSize` (224: ImageNet, 1000 classes; 32: CIFAR, 10 classes).
 */
export function runSummary(flags: { arch: string; method: string; hidden?: number; binarize?: Binarize; inputSize?: number }): void {
  const preset = withBinarize(methodPreset(flags.method), flags.binarize ?? 'both');
  const size = flags.inputSize ?? 224;
  let input = [1, 3, 32, 32];
  let model;
  switch (flags.arch) {
    case 'resnet18': model = resnet18(preset); break;
    case 'resnet20': model = resnet20(preset); break;
    case 'vgg-small': model = vggSmall(preset); break;
    case 'reactnet-a':
      model = reactnetA(preset, { inputSize: size });
      input = [1, 3, size, size];
      break;
    default:
      model = mnistModel(flags.arch, preset, { hidden: flags.hidden });
      input = [1, 1, 28, 28];
  }
  const bin = flags.binarize && flags.binarize !== 'both' ? ` binarize=${flags.binarize}` : '';
  console.log(`onebit summary: ${flags.arch} method=${preset.name}${bin} input [${input.join(', ')}]`);
  process.stdout.write(formatSummary(summary(model, input)));
}
