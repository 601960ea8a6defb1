/**
 * MNIST method comparison: a thin call of the experiment runner (src/experiment/, the same as
 * `onebit experiment --dataset mnist`) with this script's historical defaults, then a copy of the
 * report into results/: mnist-methods.md, mnist-methods.json and mnist-methods-plots/ (PNG + SVG),
 * plus RESULT lines. Resumable like the runner: finished cells in --out are skipped.
 *
 *   npm run experiment:mnist -- --methods ste,xnor,... --seeds 3 --epochs 3 --train-subset 20000 --jobs 2
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { parseMethods, parseSeeds } from '../src/experiment/command.js';
import { writeReport } from '../src/experiment/report.js';
import { runExperiment, shellQuote } from '../src/experiment/runner.js';
import { methodNames } from '../src/models/methods.js';
import { writeFileAtomic } from '../src/train/checkpoint.js';

const opts = new Command('compare_methods')
  .option('--methods <list>', 'comma-separated method presets', methodNames().join(','))
  .option('--seeds <n>', 'number of seeds (0..n-1)', '3')
  .option('--epochs <n>', 'epochs per run', '3')
  .option('--train-subset <n>', 'training examples per run (0 = all)', '20000')
  .option('--jobs <n>', 'runs in parallel', '2')
  .option('--out <dir>', 'folder of the run folders', 'runs/compare-mnist')
  .parse()
  .opts();

const epochs = Number(opts.epochs);
const result = await runExperiment({
  methods: parseMethods(String(opts.methods)),
  seeds: parseSeeds({ seeds: Number(opts.seeds) }),
  train: { dataset: 'mnist', arch: 'mlp', epochs, trainSubset: Number(opts.trainSubset) },
  out: String(opts.out),
  jobs: Number(opts.jobs),
  command: ['npm', 'run', 'experiment:mnist', '--', ...process.argv.slice(2)].map(shellQuote).join(' '),
});
if (result.interrupted) process.exit(130);

const report = writeReport({ out: String(opts.out), epochs });
const plotDir = path.join('results', 'mnist-methods-plots');
for (const p of report.plots) writeFileAtomic(path.join(plotDir, path.basename(p)), fs.readFileSync(path.join(String(opts.out), p)));
const md = fs.readFileSync(path.join(String(opts.out), 'results.md'), 'utf8').replace(/\]\(plots\//g, '](mnist-methods-plots/');
writeFileAtomic(path.join('results', 'mnist-methods.md'), md);
writeFileAtomic(path.join('results', 'mnist-methods.json'), fs.readFileSync(path.join(String(opts.out), 'results.json')));
console.log(md);
for (const s of report.summary) if (s.seeds.length) console.log(`RESULT mnist_${s.method}_test_acc=${(100 * s.lastAcc.mean).toFixed(2)}`);
if (result.failed.length) process.exitCode = 1;
