/**
 * Per-method statistics of an experiment grid, computed from the run folders' metrics.jsonl
 * (one EpochStats line per epoch, written by `onebit train`). Only finished runs enter the numbers.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fail } from '../core/errors.js';
import type { TrainConfig } from '../train/config.js';
import type { EpochStats } from '../train/trainer.js';

/** Mean ± sample standard deviation (n − 1) of values; `std` is null when n < 2, `mean` NaN when n = 0. */
export interface Stat {
  mean: number;
  std: number | null;
  n: number;
}

/** Per-epoch mean and min–max over seeds (index i = epoch i + 1). */
export interface EpochBand {
  mean: number[];
  min: number[];
  max: number[];
}

/** One finished (or partial) run folder. */
export interface RunData {
  method: string;
  seed: number;
  dir: string;
  /** config.json of the run (null when missing). */
  config: Partial<TrainConfig> | null;
  epochs: EpochStats[];
  /** Wall time of the `onebit train` processes of this run (from experiment.json), when recorded. */
  wallSeconds?: number;
}

export interface MethodSummary {
  method: string;
  /** Seeds of the finished runs that enter the statistics. */
  seeds: number[];
  epochs: number;
  /** Test accuracy at each run's best epoch, over seeds. */
  bestAcc: Stat;
  /** Test accuracy after the last epoch, over seeds. */
  lastAcc: Stat;
  /** Best epoch (1-based) of each run, in `seeds` order. */
  bestEpoch: number[];
  /** Training throughput: mean over runs of each run's mean over epochs. */
  imagesPerSec: number;
  /** Training time of one run (sum of its epochs' seconds, evaluation excluded), mean over runs. */
  trainSeconds: number;
  /** Wall time of one run's processes (start-up, training, evaluation, checkpoints), mean over runs; null when not recorded. */
  wallSeconds: number | null;
  /** Fraction of binary weights whose sign differs from initialisation after the last epoch, mean over runs. */
  initFlip: number;
  testAcc: EpochBand;
  loss: EpochBand;
  flipRate: EpochBand;
  oscillation: EpochBand;
  /** Per binary layer: flip rate per epoch, mean over seeds. */
  layers: Record<string, number[]>;
}

/** Mean and sample standard deviation. */
export function meanStd(values: readonly number[]): Stat {
  const n = values.length;
  const mean = n ? values.reduce((a, b) => a + b, 0) / n : NaN;
  const std = n >= 2 ? Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1)) : null;
  return { mean, std, n };
}

/** The epochs in `dir/metrics.jsonl` ([] when the file is missing); a malformed line fails with its place. */
export function readMetrics(dir: string): EpochStats[] {
  const file = path.join(dir, 'metrics.jsonl');
  if (!fs.existsSync(file)) return [];
  const lines = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim());
  return lines.map((l, i) => {
    try {
      return JSON.parse(l) as EpochStats;
    } catch {
      return fail(`${file}:${i + 1}`, 'one JSON object per line', JSON.stringify(l.slice(0, 60)), 'Delete the run folder to retrain it.');
    }
  });
}

/** `dir/config.json`, or null when missing or unreadable. */
export function readRunConfig(dir: string): Partial<TrainConfig> | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as Partial<TrainConfig>;
  } catch {
    return null;
  }
}

/** Whether a run has all its epochs (1..epochs in order) in metrics.jsonl. */
export function isComplete(run: RunData, epochs?: number): boolean {
  const want = epochs ?? run.config?.epochs;
  return want !== undefined && run.epochs.length >= want && run.epochs.slice(0, want).every((e, i) => e.epoch === i + 1);
}

function band(runs: readonly EpochStats[][], pick: (e: EpochStats) => number): EpochBand {
  const len = Math.max(0, ...runs.map((r) => r.length));
  const out: EpochBand = { mean: [], min: [], max: [] };
  for (let i = 0; i < len; i++) {
    const v = runs.filter((r) => i < r.length).map((r) => pick(r[i]!));
    out.mean.push(meanStd(v).mean);
    out.min.push(Math.min(...v));
    out.max.push(Math.max(...v));
  }
  return out;
}

/** Statistics of one method over its finished runs (`runs` may be empty: then every number is NaN). */
export function summarizeMethod(method: string, runs: readonly RunData[]): MethodSummary {
  const eps = runs.map((r) => r.epochs);
  const best = eps.map((r) => r.reduce((b, e) => (e.testAcc > b.testAcc ? e : b)));
  const mean = (v: number[]) => meanStd(v).mean;
  const layerNames = [...new Set(eps.flatMap((r) => r.flatMap((e) => Object.keys(e.flipRateLayers ?? {}))))];
  const layers: Record<string, number[]> = {};
  for (const name of layerNames) layers[name] = band(eps, (e) => e.flipRateLayers?.[name] ?? NaN).mean;
  return {
    method,
    seeds: runs.map((r) => r.seed),
    epochs: Math.max(0, ...eps.map((r) => r.length)),
    bestAcc: meanStd(best.map((e) => e.testAcc)),
    lastAcc: meanStd(eps.map((r) => r[r.length - 1]!.testAcc)),
    bestEpoch: best.map((e) => e.epoch),
    imagesPerSec: mean(eps.map((r) => mean(r.map((e) => e.imagesPerSec)))),
    trainSeconds: mean(eps.map((r) => r.reduce((s, e) => s + e.seconds, 0))),
    wallSeconds: runs.length && runs.every((r) => r.wallSeconds !== undefined) ? mean(runs.map((r) => r.wallSeconds!)) : null,
    initFlip: mean(eps.map((r) => r[r.length - 1]!.initFlip)),
    testAcc: band(eps, (e) => e.testAcc),
    loss: band(eps, (e) => e.loss),
    flipRate: band(eps, (e) => e.flipRate),
    oscillation: band(eps, (e) => e.oscillationRate),
    layers,
  };
}
