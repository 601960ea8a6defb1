/**
 * MNIST method comparison: every method preset × seeds at the same budget, as separate
 * `onebit train` processes (`--jobs` at a time, one thread each). Resumable: a run folder that
 * already has a checkpoint is continued with --resume (a finished one costs nothing). Writes
 * results/mnist-methods.json and results/mnist-methods.md (test accuracy mean ± std over seeds,
 * per-epoch flip rate FR and oscillation SO), and RESULT lines.
 *
 *   npm run experiment:mnist -- --methods ste,xnor,... --seeds 3 --epochs 3 --train-subset 20000 --jobs 2
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { methodNames } from '../src/models/methods.js';

const opts = new Command('compare_methods')
  .option('--methods <list>', 'comma-separated method presets', methodNames().join(','))
  .option('--seeds <n>', 'number of seeds (0..n-1)', '3')
  .option('--epochs <n>', 'epochs per run', '3')
  .option('--train-subset <n>', 'training examples per run (0 = all)', '20000')
  .option('--jobs <n>', 'runs in parallel', '2')
  .option('--out <dir>', 'folder of the run folders', 'runs/compare-mnist')
  .parse()
  .opts();

const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');
const methods = String(opts.methods).split(',').map((m) => m.trim()).filter(Boolean);
const seeds = [...Array(Number(opts.seeds)).keys()];
const budget = ['--epochs', String(opts.epochs), '--train-subset', String(opts.trainSubset)];

interface Job { method: string; seed: number; dir: string }
const jobs: Job[] = methods.flatMap((method) => seeds.map((seed) => ({ method, seed, dir: path.join(opts.out, `${method}-s${seed}`) })));

function runOne(j: Job): Promise<void> {
  const resume = fs.existsSync(path.join(j.dir, 'last.ckpt'));
  const args = resume
    ? ['--no-concurrent-recompilation', cli, 'train', '--resume', j.dir, '--no-progress']
    : ['--no-concurrent-recompilation', cli, 'train', '--method', j.method, '--seed', String(j.seed), ...budget, '--out', j.dir, '--no-progress', '--force'];
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, { env: { ...process.env, ONEBIT_THREADS: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    p.stdout.on('data', (d: Buffer) => process.stdout.write(d.toString().split('\n').filter(Boolean).map((l) => `[${j.method} s${j.seed}] ${l}\n`).join('')));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${j.method} seed ${j.seed} failed (${code}): ${err.slice(-2000)}`))));
  });
}

const queue = [...jobs];
await Promise.all(Array.from({ length: Number(opts.jobs) }, async () => {
  for (let j = queue.shift(); j; j = queue.shift()) await runOne(j);
}));

interface Row { epoch: number; loss: number; testAcc: number; flipRate: number; oscillationRate: number; initFlip: number; seconds: number }
const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
const std = (a: number[]) => Math.sqrt(mean(a.map((x) => (x - mean(a)) ** 2)));
const summary = methods.map((method) => {
  const runs = seeds.map((seed) => fs.readFileSync(path.join(opts.out, `${method}-s${seed}`, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Row));
  const last = runs.map((r) => r[r.length - 1]!);
  const best = runs.map((r) => Math.max(...r.map((e) => e.testAcc)));
  const epochs = runs[0]!.length;
  return {
    method,
    finalAcc: { mean: mean(last.map((l) => l.testAcc)), std: std(last.map((l) => l.testAcc)) },
    bestAcc: { mean: mean(best), std: std(best) },
    flipRate: [...Array(epochs).keys()].map((e) => mean(runs.map((r) => r[e]!.flipRate))),
    oscillation: [...Array(epochs).keys()].map((e) => mean(runs.map((r) => r[e]!.oscillationRate))),
    initFlip: mean(last.map((l) => l.initFlip)),
    secondsPerEpoch: mean(runs.flatMap((r) => r.map((e) => e.seconds))),
  };
});

const pct = (x: number) => (100 * x).toFixed(2);
const e = (x: number) => x.toExponential(2);
const ste = summary.find((s) => s.method === 'ste');
const lines = [
  `MNIST, binary MLP (default architecture), ${opts.epochs} epochs on ${Number(opts.trainSubset) || 60000} training images, seeds 0..${seeds.length - 1}, Adam lr 3e-3 cosine, batch 100.`,
  '',
  '| method | final test acc (mean ± std) | best test acc | Δ vs ste (final) | FR per epoch | SO per epoch | init flip | s/epoch |',
  '|---|---|---|---|---|---|---|---|',
  ...summary.map((s) =>
    `| ${s.method} | ${pct(s.finalAcc.mean)} ± ${pct(s.finalAcc.std)} | ${pct(s.bestAcc.mean)} | ${ste ? (100 * (s.finalAcc.mean - ste.finalAcc.mean)).toFixed(2) : '-'} | ${s.flipRate.map(e).join(', ')} | ${s.oscillation.map(e).join(', ')} | ${pct(s.initFlip)}% | ${s.secondsPerEpoch.toFixed(1)} |`),
];
fs.mkdirSync('results', { recursive: true });
fs.writeFileSync('results/mnist-methods.json', JSON.stringify({ budget: opts, summary }, null, 2) + '\n');
fs.writeFileSync('results/mnist-methods.md', lines.join('\n') + '\n');
console.log(lines.join('\n'));
for (const s of summary) console.log(`RESULT mnist_${s.method}_test_acc=${pct(s.finalAcc.mean)}`);
