/**
 * `onebit experiment`: flags → grid → report. Runs the grid (src/experiment/runner.ts), then writes
 * the report (src/experiment/report.ts) and prints its main table on stdout; `--report-only` skips
 * the training. Exit status: 0 when every cell finished, 1 when some failed (the report still covers
 * the finished ones), 130 after Ctrl-C (re-run the same command to resume).
 */
import * as path from 'node:path';
import { fail } from '../core/errors.js';
import { methodNames } from '../models/methods.js';
import { DATASET_ARCHS, resolveConfig, type TrainConfig } from '../train/config.js';
import { writeReport } from './report.js';
import { renderTable } from './render.js';
import { runExperiment, shellQuote, type TrainSettings } from './runner.js';

/** Parsed flags of `onebit experiment` (commander's camelCase names). */
export interface ExperimentFlags extends Partial<Omit<TrainConfig, 'method' | 'seed'>> {
  methods?: string;
  seeds?: number;
  seedList?: string;
  jobs?: number;
  out?: string;
  extend?: boolean;
  layerPlot?: string;
  reportOnly?: boolean;
}

/** Comma-separated method names, checked against the presets (duplicates dropped). */
export function parseMethods(list: string): string[] {
  const methods = [...new Set(list.split(',').map((m) => m.trim()).filter(Boolean))];
  if (!methods.length) fail('--methods', `a comma-separated list of ${methodNames().join(', ')}`, JSON.stringify(list));
  for (const m of methods) if (!methodNames().includes(m)) fail('--methods', `names from ${methodNames().join(', ')}`, JSON.stringify(m));
  return methods;
}

/** `--seed-list 0,3,7` or `--seeds N` (0..N-1). */
export function parseSeeds(flags: { seeds?: number; seedList?: string }): number[] {
  if (flags.seedList !== undefined) {
    const seeds = [...new Set(flags.seedList.split(',').map((s) => s.trim()).filter(Boolean))].map((s) => {
      if (!/^\d+$/.test(s)) fail('--seed-list', 'comma-separated non-negative integers', JSON.stringify(flags.seedList));
      return Number(s);
    });
    if (!seeds.length) fail('--seed-list', 'at least one seed', JSON.stringify(flags.seedList));
    return seeds;
  }
  const n = flags.seeds ?? 3;
  if (!Number.isInteger(n) || n < 1) fail('--seeds', 'a positive integer', String(n));
  return Array.from({ length: n }, (_, i) => i);
}

const TRAIN_KEYS = [
  'recipe', 'binarize', 'epochs', 'batchSize', 'lr', 'optimizer', 'momentum', 'weightDecay', 'schedule', 'warmupEpochs',
  'labelSmoothing', 'hidden', 'dataDir', 'trainSubset', 'testSubset',
] as const;

/** Run `onebit experiment` with parsed flags; `extra` are further `onebit train` flags (after `--`). */
export async function runExperimentCommand(flags: ExperimentFlags, extra: string[] = []): Promise<void> {
  // Only given settings are passed on, so a --recipe can still fill in the rest; a CIFAR --arch implies cifar10.
  const train: TrainSettings = {};
  if (flags.arch !== undefined) train.arch = flags.arch;
  if (flags.dataset !== undefined) train.dataset = flags.dataset;
  else if (flags.arch && (DATASET_ARCHS.cifar10 as readonly string[]).includes(flags.arch)) train.dataset = 'cifar10';
  for (const k of TRAIN_KEYS) if (flags[k] !== undefined) (train as Record<string, unknown>)[k] = flags[k];
  if (flags.augment === false) train.augment = false;
  const resolved = resolveConfig({ ...train, method: methodNames()[0]!, seed: 0 });
  const out = flags.out ?? path.join('runs', `experiment-${resolved.dataset}-${resolved.arch}`);
  const layerPlot = flags.layerPlot === undefined ? undefined : flags.layerPlot === 'all' ? methodNames() : parseMethods(flags.layerPlot);

  if (flags.reportOnly) {
    const report = writeReport({
      out,
      methods: flags.methods !== undefined ? parseMethods(flags.methods) : undefined,
      seeds: flags.seeds !== undefined || flags.seedList !== undefined ? parseSeeds(flags) : undefined,
      layerPlot,
    });
    process.stdout.write(renderTable(report));
    process.stderr.write(`experiment: report written to ${path.join(out, 'report.html')}, results.md, results.json and ${report.plots.length} plot files\n`);
    return;
  }

  const methods = parseMethods(flags.methods ?? methodNames().join(','));
  const result = await runExperiment({
    methods,
    seeds: parseSeeds(flags),
    train,
    extraArgs: extra,
    out,
    jobs: flags.jobs ?? 1,
    extend: flags.extend ?? false,
    command: ['onebit', ...process.argv.slice(2)].map(shellQuote).join(' '),
  });
  if (result.interrupted) {
    process.exitCode = 130;
    return;
  }
  const report = writeReport({ out, layerPlot, epochs: resolved.epochs });
  process.stdout.write(renderTable(report));
  process.stderr.write(`experiment: report written to ${path.join(out, 'report.html')}, results.md, results.json and ${report.plots.length} plot files\n`);
  if (result.failed.length) process.exitCode = 1;
}
