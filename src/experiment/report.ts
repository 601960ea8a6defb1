/**
 * The experiment report, computed from the run folders (so it can be re-rendered at any time with
 * `onebit experiment --report-only`): per method best-epoch and last-epoch test accuracy (mean ±
 * sample std over seeds), images/s, epochs and training time; plots of test accuracy, training loss,
 * model flip rate and per-layer flip rate vs epoch. Writes into the experiment folder:
 *
 *   results.json  every number (per-method summary with per-epoch series, per-cell status)
 *   results.md    Markdown tables + the command line + the plots (PNG when available, else SVG)
 *   report.html   self-contained page: tables, command, date and the SVG plots inline
 *   plots/        accuracy, loss, flip-rate, flip-layers-<method> as .svg and .png
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fail } from '../core/errors.js';
import { writeFileAtomic } from '../train/checkpoint.js';
import type { TrainConfig } from '../train/config.js';
import { linePlot, type PlotSeries } from '../report/plot.js';
import { svgToPng } from '../report/png.js';
import { renderHtml, renderMarkdown } from './render.js';
import { cellDir, readManifest, type CellStatus } from './runner.js';
import { isComplete, readMetrics, readRunConfig, summarizeMethod, type MethodSummary, type RunData } from './summary.js';

/** A cell as found on disk. `status` is 'done' only when metrics.jsonl has every epoch. */
export interface CellReport {
  method: string;
  seed: number;
  dir: string;
  status: CellStatus | 'partial' | 'missing';
  epochsDone: number;
  epochs: number | null;
  error?: string;
}

export interface ExperimentReport {
  kind: 'onebit-experiment-results';
  version: 1;
  /** When this report was generated (ISO 8601). */
  date: string;
  command: string;
  out: string;
  /** Configuration of the finished runs (method and seed vary); `differs` lists keys that are not the same in all of them. */
  config: Partial<TrainConfig> | null;
  differs: string[];
  methods: string[];
  seeds: number[];
  jobs: number | null;
  cells: CellReport[];
  summary: MethodSummary[];
  /** Plot files, relative to `out` (SVG, and PNG when resvg is available). */
  plots: string[];
}

export interface ReportOptions {
  /** Experiment folder (run folders `<method>-s<seed>`, optional experiment.json). */
  out: string;
  /** Restrict to these methods / seeds (default: the manifest's, else every run folder found). */
  methods?: string[];
  seeds?: number[];
  /** Methods that get a per-layer flip-rate plot (default: the first method with finished runs and binary layers). */
  layerPlot?: string[];
  /** Count only runs of exactly this many epochs (default: each run is finished when it has all its own epochs). */
  epochs?: number;
  /** Command line to print (default: the manifest's latest). */
  command?: string;
  /** Write PNG next to every SVG (default true). */
  png?: boolean;
}

/** Run folders `<method>-s<seed>` directly under `out`. */
function discoverCells(out: string): { method: string; seed: number }[] {
  if (!fs.existsSync(out)) return [];
  return fs.readdirSync(out, { withFileTypes: true }).flatMap((d) => {
    const m = d.isDirectory() ? /^(.+)-s(\d+)$/.exec(d.name) : null;
    return m && fs.existsSync(path.join(out, d.name, 'metrics.jsonl')) ? [{ method: m[1]!, seed: Number(m[2]) }] : [];
  });
}

/** Read every cell of the experiment in `out` and compute the per-method statistics (no files written). */
export function buildReport(opts: ReportOptions): ExperimentReport {
  const manifest = readManifest(opts.out);
  const found = discoverCells(opts.out);
  const methods = opts.methods ?? manifest?.methods ?? [...new Set(found.map((c) => c.method))].sort();
  const seeds = opts.seeds ?? manifest?.seeds ?? [...new Set(found.map((c) => c.seed))].sort((a, b) => a - b);
  if (!methods.length) fail(`${opts.out}`, 'an experiment folder with run folders <method>-s<seed>/metrics.jsonl', 'none', 'Run `onebit experiment` first, or check --out.');

  const runs = new Map<string, RunData[]>(methods.map((m) => [m, []]));
  const cells: CellReport[] = [];
  for (const seed of seeds) {
    for (const method of methods) {
      const dir = cellDir(method, seed);
      const full = path.join(opts.out, dir);
      const config = readRunConfig(full);
      const epochs = opts.epochs ?? config?.epochs ?? null;
      const rec = manifest?.cells.find((c) => c.method === method && c.seed === seed);
      const run: RunData = { method, seed, dir: full, config, epochs: readMetrics(full), ...(rec?.wallSeconds ? { wallSeconds: rec.wallSeconds } : {}) };
      const done = config !== null && epochs !== null && config.epochs === epochs && isComplete(run, epochs);
      if (done) runs.get(method)!.push({ ...run, epochs: run.epochs.slice(0, epochs!) });
      const status: CellReport['status'] = done ? 'done' : rec && rec.status !== 'done' && rec.status !== 'pending' ? rec.status : run.epochs.length ? 'partial' : 'missing';
      cells.push({ method, seed, dir, status, epochsDone: run.epochs.length, epochs, ...(rec?.error && !done ? { error: rec.error } : {}) });
    }
  }

  const finished = [...runs.values()].flat();
  const config = finished[0]?.config ?? null;
  const differs = config
    ? Object.keys(config).filter((k) => k !== 'method' && k !== 'seed' && finished.some((r) => JSON.stringify(r.config?.[k as keyof TrainConfig]) !== JSON.stringify(config[k as keyof TrainConfig])))
    : [];
  return {
    kind: 'onebit-experiment-results',
    version: 1,
    date: new Date().toISOString(),
    command: opts.command ?? manifest?.command ?? '',
    out: opts.out,
    config: config ? { ...config, method: undefined, seed: undefined } : null,
    differs,
    methods,
    seeds,
    jobs: manifest?.jobs ?? null,
    cells,
    summary: methods.map((m) => summarizeMethod(m, runs.get(m)!)),
    plots: [],
  };
}

/** The plots of a report as SVG documents, keyed by file stem (accuracy, loss, flip-rate, flip-layers-<method>). */
export function reportPlots(report: ExperimentReport, layerPlot?: string[]): Map<string, string> {
  const withRuns = report.summary.filter((s) => s.seeds.length > 0);
  const epochsOf = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
  const series = (pick: (s: MethodSummary) => { mean: number[]; min: number[]; max: number[] }, scale = 1): PlotSeries[] =>
    withRuns.map((s) => {
      const b = pick(s);
      const x = epochsOf(b.mean.length);
      return { label: s.method, x, y: b.mean.map((v) => v * scale), lo: b.min.map((v) => v * scale), hi: b.max.map((v) => v * scale) };
    });
  const seedsNote = `mean over seeds, band = min–max`;
  const plots = new Map<string, string>();
  plots.set('accuracy', linePlot(series((s) => s.testAcc, 100), { title: `Test accuracy (${seedsNote})`, xLabel: 'epoch', yLabel: 'test accuracy (%)' }));
  plots.set('loss', linePlot(series((s) => s.loss), { title: `Training loss (${seedsNote})`, xLabel: 'epoch', yLabel: 'training loss' }));
  plots.set('flip-rate', linePlot(series((s) => s.flipRate), { title: `Weight flip rate per step (${seedsNote})`, xLabel: 'epoch', yLabel: 'flip rate (log)', logY: true }));
  const firstBinary = withRuns.find((s) => Object.keys(s.layers).length > 0);
  const layerMethods = layerPlot ?? (firstBinary ? [firstBinary.method] : []);
  for (const m of layerMethods) {
    const s = withRuns.find((w) => w.method === m);
    if (!s) continue;
    const layers: PlotSeries[] = Object.entries(s.layers).map(([name, y]) => ({ label: /^\d+$/.test(name) ? `layer ${name}` : name, x: epochsOf(y.length), y }));
    plots.set(`flip-layers-${m}`, linePlot(layers, { title: `Flip rate per binary layer: ${m} (mean over seeds)`, xLabel: 'epoch', yLabel: 'flip rate (log)', logY: true }));
  }
  return plots;
}

/** Compute the report and write results.json, results.md, report.html and plots/ into `opts.out`. */
export function writeReport(opts: ReportOptions): ExperimentReport {
  const report = buildReport(opts);
  const plots = reportPlots(report, opts.layerPlot);
  const plotDir = path.join(opts.out, 'plots');
  fs.mkdirSync(plotDir, { recursive: true });
  for (const [stem, svg] of plots) {
    writeFileAtomic(path.join(plotDir, `${stem}.svg`), svg);
    report.plots.push(`plots/${stem}.svg`);
    const png = opts.png === false ? null : svgToPng(svg, 2 * Number(/width="(\d+)"/.exec(svg)?.[1] ?? 720));
    if (png) {
      writeFileAtomic(path.join(plotDir, `${stem}.png`), png);
      report.plots.push(`plots/${stem}.png`);
    }
  }
  writeFileAtomic(path.join(opts.out, 'results.json'), JSON.stringify(report, null, 2) + '\n');
  writeFileAtomic(path.join(opts.out, 'results.md'), renderMarkdown(report));
  writeFileAtomic(path.join(opts.out, 'report.html'), renderHtml(report, plots));
  return report;
}
