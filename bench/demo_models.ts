/**
 * `npm run demo:models`: the models of the browser demo (demo/), made with onebit itself:
 *
 *   1. MNIST: trains the default `onebit train` net (binary MLP, ste, 5 epochs, seed 0; ~1 min on
 *      the native backend) into `runs/demo-mnist/`, or takes `--mnist-from CKPT`, and exports its
 *      best checkpoint to `demo/models/mnist.onebit` (labels '0'..'9').
 *   2. CIFAR-10: exports `--cifar-from CKPT` (a run folder means its best.ckpt; e.g.
 *      runs/cifar10-r20-bireal-e12) to `demo/models/cifar10-resnet20.onebit` (the CIFAR-10 class
 *      names as labels). Without it, trains a QUICK ResNet-20 (bireal, `--cifar-epochs`, default 1)
 *      into `runs/demo-cifar10-quick/` first — a low-accuracy model, and says so.
 *
 * Every exported model is then loaded by the inference engine and evaluated on the test set (the
 * inputs built from the raw pixels with the model's own `metadata.preprocess`, as the demo does),
 * so the accuracies printed and written to demo/models/README.md are those of the `.onebit` files.
 * With the CIFAR-10 test set at hand, a few test images go to demo/models/samples/ as PNGs (the
 * demo's "try a sample" buttons). All files are written atomically (temp file + rename).
 *
 *   npm run demo:models -- --cifar-from runs/cifar10-r20-bireal-e12
 *   npm run demo:models -- --mnist-from runs/demo-mnist --cifar-from runs/cifar10-r20-bireal-e12   # export only
 *
 * CIFAR-10 data (quick training, evaluation, samples): `--data-dir`, else the checkpoint's own
 * dataDir, else the cache folder (data/download.ts; the quick training downloads it there when
 * missing, like `onebit train`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { PNG } from 'pngjs';
import '../src/index.js';
import { OnebitError } from '../src/core/errors.js';
import { CIFAR10_CLASSES, loadCifar10, loadMnist, type Dataset } from '../src/data/index.js';
import { checkCifar10File } from '../src/data/cifar.js';
import { defaultCifar10Dir, ensureCifar10 } from '../src/data/download.js';
import { exportCheckpoint } from '../src/deploy/export.js';
import { loadModel, type InferenceModel } from '../src/infer/index.js';
import { preprocessOf } from '../src/infer/preprocess.js';
import { writeFileAtomic } from '../src/train/checkpoint.js';
import { loadTrainedModel, train, type EpochStats } from '../src/train/trainer.js';
import type { TrainConfig } from '../src/train/config.js';
import { formatEpoch } from '../src/cli/commands.js';

/** The repository root: the nearest folder above this file with onebit's package.json. */
function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg) && (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string }).name === 'onebit') return dir;
    const up = path.dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
}

const ROOT = repoRoot();
const o = new Command('demo-models')
  .description('Make the browser demo\'s models (demo/models/) with onebit\'s own training and export.')
  .option('--out <dir>', 'output folder', path.join(ROOT, 'demo', 'models'))
  .option('--mnist-from <ckpt>', 'export this MNIST checkpoint (or run folder: its best.ckpt) instead of training one')
  .option('--mnist-run <dir>', 'run folder of the MNIST training', path.join(ROOT, 'runs', 'demo-mnist'))
  .option('--mnist-epochs <n>', 'epochs of the MNIST training (the `onebit train` default)', '5')
  .option('--cifar-from <ckpt>', 'export this CIFAR-10 checkpoint (or run folder: its best.ckpt); without it a quick model is trained')
  .option('--cifar-run <dir>', 'run folder of the quick CIFAR-10 training', path.join(ROOT, 'runs', 'demo-cifar10-quick'))
  .option('--cifar-epochs <n>', 'epochs of the quick CIFAR-10 training', '1')
  .option('--cifar-train-subset <n>', 'quick CIFAR-10 training: first n training images only (0 = all)', '0')
  .option('--data-dir <dir>', 'the cifar-10-batches-bin folder (default: the checkpoint\'s, else the cache folder)')
  .option('--eval-subset <n>', 'evaluate the exported models on the first n test images (0 = all)', '0')
  .option('--samples <n>', 'CIFAR-10 test images written to <out>/samples/ as PNGs (one per class first)', '10')
  .option('--skip-mnist', 'leave mnist.onebit as it is')
  .option('--skip-cifar', 'leave cifar10-resnet20.onebit as it is')
  .parse()
  .opts();

function count(name: string, v: string, min = 0): number {
  if (!/^\d+$/.test(String(v).trim()) || Number(v) < min) throw new OnebitError(`${name}: expected an integer ≥ ${min}, but got "${v}".`);
  return Number(v);
}

const outDir = path.resolve(String(o.out));
const evalSubset = count('--eval-subset', o.evalSubset);
const MNIST_FILE = 'mnist.onebit', CIFAR_FILE = 'cifar10-resnet20.onebit';

/** A checkpoint argument: a run folder means its best.ckpt. */
function ckptOf(p: string): string {
  const abs = path.resolve(p);
  return fs.existsSync(abs) && fs.statSync(abs).isDirectory() ? path.join(abs, 'best.ckpt') : abs;
}

const rel = (p: string): string => path.relative(process.cwd(), p) || '.';
const kib = (n: number): string => `${(n / 1024).toFixed(1)} KiB`;
const pct = (x: number): string => `${(100 * x).toFixed(2)}%`;

/** Top-1 accuracy of the engine on `ds` (its first `limit` examples), inputs from raw pixels and the model's preprocess. */
function engineAccuracy(m: InferenceModel, ds: Dataset, limit: number): { acc: number; n: number } {
  const pre = preprocessOf(m);
  const per = ds.shape.reduce((a, b) => a * b, 1), C = ds.shape[0]!, plane = per / C;
  const n = limit > 0 ? Math.min(limit, ds.count) : ds.count;
  const B = 250;
  let correct = 0;
  for (let s = 0; s < n; s += B) {
    const b = Math.min(B, n - s), x = new Float32Array(b * per);
    for (let i = 0; i < b * per; i++) {
      const c = Math.floor((i % per) / plane);
      x[i] = (ds.images[s * per + i]! * pre.scale - pre.mean[c]!) / pre.std[c]!;
    }
    const logits = m.predict(x, [b, ...m.inputShape]);
    for (let i = 0; i < b; i++) {
      let best = 0;
      for (let k = 1; k < m.classes; k++) if (logits[i * m.classes + k]! > logits[i * m.classes + best]!) best = k;
      if (best === ds.labels[s + i]) correct++;
    }
  }
  return { acc: correct / n, n };
}

interface Made {
  file: string;
  what: string;
  /** How it was made (README). */
  how: string;
  fileBytes: number;
  floatBytes: number;
  trainAcc: number | null;
  engine: { acc: number; n: number } | null;
  quick: boolean;
}

/** The `npm run demo:models …` invocation of this process. */
const INVOCATION = `npm run demo:models${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;

/**
 * Export `ckpt` to `out`, load it in the engine, evaluate it, print its sizes. `trained`: what this
 * process ran to make the checkpoint (null when it was given).
 */
async function exportAndCheck(ckpt: string, out: string, what: string, test: Dataset | null, trained: string | null, quick: boolean): Promise<Made> {
  const { graph } = exportCheckpoint(ckpt, out); // written atomically
  const c = graph.metadata.config as TrainConfig;
  const recipe = `${c.dataset} ${c.arch}, ${c.method}, ${c.epochs} epoch${c.epochs === 1 ? '' : 's'}, ${c.optimizer} lr ${c.lr}, batch ${c.batchSize}, seed ${c.seed}` +
    (c.trainSubset ? `, ${c.trainSubset} training images` : '');
  const how = trained
    ? `\`${INVOCATION}\` ran \`${trained}\` (${recipe}) and exported \`${rel(ckpt)}\``
    : `\`${INVOCATION}\` exported \`${rel(ckpt)}\` (${recipe})`;
  const m = await loadModel(out);
  const fileBytes = fs.statSync(out).size, floatBytes = m.size.floatBytes;
  const trainAcc = typeof graph.metadata.testAcc === 'number' ? graph.metadata.testAcc : null;
  const binary = graph.nodes.filter((n) => n.op === 'binary_conv2d' || n.op === 'binary_dense').length;
  console.log(`${rel(out)}: ${what}, ${graph.nodes.length} nodes (${binary} binary), input [${m.inputShape.join(', ')}], labels ${m.labels?.slice(0, 3).join(', ')}, …`);
  console.log(`  size ${fileBytes} bytes (${kib(fileBytes)}) vs float32 ${floatBytes} bytes (${kib(floatBytes)}): ${(floatBytes / fileBytes).toFixed(1)}x smaller`);
  let engine: Made['engine'] = null;
  if (test) {
    const t0 = performance.now();
    engine = engineAccuracy(m, test, evalSubset);
    console.log(`  test accuracy of the .onebit model (engine, ${m.backend.name}): ${pct(engine.acc)} on ${engine.n} images` +
      (trainAcc !== null ? ` (training graph at export: ${pct(trainAcc)})` : '') + `, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  } else {
    console.log(`  (no test set at hand: not evaluated${trainAcc !== null ? `; training graph at export: ${pct(trainAcc)}` : ''})`);
  }
  return { file: path.basename(out), what, how, fileBytes, floatBytes, trainAcc, engine, quick };
}

function logEpoch(s: EpochStats): void {
  console.log('  ' + formatEpoch(s));
}

/** The CIFAR-10 folder to read test images from, or null when none is on disk. */
function cifarDir(ckptDataDir: string | undefined): string | null {
  const candidates = [o.dataDir as string | undefined, ckptDataDir, defaultCifar10Dir()].filter((d): d is string => !!d);
  for (const d of candidates) {
    try {
      checkCifar10File('demo-models', path.join(d, 'test_batch.bin'), 'test_batch.bin');
      return d;
    } catch {
      /* try the next */
    }
  }
  return null;
}

/** Write up to n CIFAR-10 test images as PNGs (first one per class, then in order) + samples.json. */
function writeSamples(test: Dataset, n: number): void {
  if (n === 0) return;
  const dir = path.join(outDir, 'samples');
  const picked: number[] = [];
  for (let c = 0; c < 10 && picked.length < n; c++) {
    const i = test.labels.indexOf(c);
    if (i >= 0) picked.push(i);
  }
  for (let i = 0; i < test.count && picked.length < n; i++) if (!picked.includes(i)) picked.push(i);
  const list = picked.map((i) => {
    const label = CIFAR10_CLASSES[test.labels[i]!]!;
    const png = new PNG({ width: 32, height: 32 });
    for (let p = 0; p < 1024; p++) {
      for (let c = 0; c < 3; c++) png.data[p * 4 + c] = test.images[i * 3072 + c * 1024 + p]!;
      png.data[p * 4 + 3] = 255;
    }
    const file = `cifar10-test-${i}-${label}.png`;
    writeFileAtomic(path.join(dir, file), PNG.sync.write(png));
    return { file: `samples/${file}`, label, index: i };
  });
  writeFileAtomic(path.join(dir, 'samples.json'), JSON.stringify(list, null, 2) + '\n');
  console.log(`${rel(dir)}/: ${list.length} CIFAR-10 test images as PNG (${list.map((s) => s.label).join(', ')})`);
}

function readme(made: Made[]): string {
  const lines = [
    '# Demo models',
    '',
    'Made by `bench/demo_models.ts` (`npm run demo:models`), not by hand: onebit trains or takes a checkpoint,',
    '`exportCheckpoint` writes the `.onebit` file, and the inference engine evaluates the file on the test set.',
    '',
    '| file | model | how it was made | .onebit | float32 | test acc (.onebit file, engine) | test acc (training graph) |',
    '|---|---|---|---:|---:|---:|---:|',
    ...made.map((m) => `| \`${m.file}\` | ${m.what}${m.quick ? ' (**quick model**)' : ''} | ${m.how} | ${kib(m.fileBytes)} | ${kib(m.floatBytes)} | ` +
      `${m.engine ? `${pct(m.engine.acc)} (${m.engine.n} images)` : '—'} | ${m.trainAcc !== null ? pct(m.trainAcc) : '—'} |`),
    '',
    '`samples/` (when present): CIFAR-10 test images as PNG, for the demo\'s sample buttons.',
    '',
  ];
  return lines.join('\n');
}

async function main(): Promise<void> {
  fs.mkdirSync(outDir, { recursive: true });
  const made: Made[] = [];

  if (!o.skipMnist) {
    let ckpt: string;
    if (o.mnistFrom) {
      ckpt = ckptOf(String(o.mnistFrom));
    } else {
      const run = path.resolve(String(o.mnistRun));
      const epochs = count('--mnist-epochs', o.mnistEpochs, 1);
      console.log(`MNIST: training the default onebit net (mlp, ste, ${epochs} epochs, seed 0) into ${rel(run)}/`);
      const t0 = performance.now();
      train({ epochs }, { outDir: run, callbacks: { onEpochEnd: logEpoch } });
      console.log(`  trained in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      ckpt = path.join(run, 'best.ckpt');
    }
    const test = loadMnist('test');
    made.push(await exportAndCheck(ckpt, path.join(outDir, MNIST_FILE), 'MNIST binary MLP', test,
      o.mnistFrom ? null : `onebit train --epochs ${o.mnistEpochs} --out ${rel(path.resolve(String(o.mnistRun)))}`, false));
  }

  if (!o.skipCifar) {
    let ckpt: string, quick = false, trained: string | null = null;
    if (o.cifarFrom) {
      ckpt = ckptOf(String(o.cifarFrom));
    } else {
      quick = true;
      const run = path.resolve(String(o.cifarRun));
      const epochs = count('--cifar-epochs', o.cifarEpochs, 1), subset = count('--cifar-train-subset', o.cifarTrainSubset);
      process.stderr.write(
        `warning: no --cifar-from checkpoint: training a QUICK CIFAR-10 ResNet-20 (bireal, ${epochs} epoch${epochs > 1 ? 's' : ''}` +
        `${subset ? `, ${subset} training images` : ''}). Expect low accuracy (~30-45 % after one epoch); for a real model pass ` +
        `--cifar-from <run folder or .ckpt> (e.g. runs/cifar10-r20-bireal-e12, 66 %).\n`);
      const dataDir = await ensureCifar10({ dataDir: o.dataDir ? path.resolve(String(o.dataDir)) : undefined });
      const config: Partial<TrainConfig> = { dataset: 'cifar10', arch: 'resnet20', method: 'bireal', epochs, batchSize: 128, lr: 2e-3, dataDir, trainSubset: subset };
      const t0 = performance.now();
      train(config, { outDir: run, callbacks: { onEpochEnd: logEpoch } });
      console.log(`  trained in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      ckpt = path.join(run, 'best.ckpt');
      trained = `onebit train --dataset cifar10 --arch resnet20 --method bireal --epochs ${epochs} --batch-size 128 --lr 2e-3${subset ? ` --train-subset ${subset}` : ''} --out ${rel(run)}`;
    }
    const cfg = loadTrainedModel(ckpt).config;
    if (cfg.dataset !== 'cifar10') throw new OnebitError(`--cifar-from: expected a CIFAR-10 checkpoint, but got ${rel(ckpt)} trained on ${cfg.dataset}.`);
    const dir = cifarDir(cfg.dataDir || undefined);
    const test = dir ? loadCifar10('test', dir) : null;
    made.push(await exportAndCheck(ckpt, path.join(outDir, CIFAR_FILE), `CIFAR-10 ${cfg.arch}, 1-bit (${cfg.method})`, test, trained, quick));
    if (test) writeSamples(test, count('--samples', o.samples));
    if (quick) process.stderr.write(`warning: ${rel(path.join(outDir, CIFAR_FILE))} is a quick model (see above); re-run with --cifar-from for a real one.\n`);
  }

  if (made.length) {
    // Keep the rows of a model this run left alone (--skip-…) from the previous README.
    const readmeFile = path.join(outDir, 'README.md');
    const old = fs.existsSync(readmeFile) ? fs.readFileSync(readmeFile, 'utf8').split('\n') : [];
    const kept = old.filter((l) => l.startsWith('| `') && !made.some((m) => l.startsWith(`| \`${m.file}\``)));
    const text = readme(made).replace('|---|---|---|---:|---:|---:|---:|\n', (h) => h + kept.map((l) => l + '\n').join(''));
    writeFileAtomic(readmeFile, text);
    console.log(`${rel(readmeFile)} written`);
  }
}

try {
  await main();
} catch (e) {
  process.stderr.write(`error: ${e instanceof OnebitError ? e.message : ((e as Error).stack ?? String(e))}\n`);
  process.exitCode = 1;
}
