/**
 * Text forms of an experiment report: the Markdown of results.md and the self-contained HTML page
 * (tables, command line, date, inline SVG plots). Accuracies are shown in percent as mean ± sample
 * std over the seeds of the finished runs; "—" where a method has no finished run.
 */
import { escapeXml } from '../report/plot.js';
import type { ExperimentReport } from './report.js';
import type { MethodSummary } from './summary.js';

const pct = (x: number) => (100 * x).toFixed(2);
const acc = (s: { mean: number; std: number | null; n: number }) => (s.n === 0 ? '—' : s.std === null ? pct(s.mean) : `${pct(s.mean)} ± ${pct(s.std)}`);
const sci = (x: number) => (Number.isFinite(x) ? x.toExponential(2).replace('e+0', 'e-0') : '—');

/** Seconds as "12.3 s", "4.5 min" or "1.25 h". */
export function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return '—';
  return s < 120 ? `${s.toFixed(1)} s` : s < 7200 ? `${(s / 60).toFixed(1)} min` : `${(s / 3600).toFixed(2)} h`;
}

/** The epochs shown in per-epoch columns: all up to 8, else 1, ¼, ½, ¾ and the last. */
function shownEpochs(n: number): number[] {
  if (n <= 8) return Array.from({ length: n }, (_, i) => i + 1);
  return [...new Set([1, Math.ceil(n / 4), Math.ceil(n / 2), Math.ceil((3 * n) / 4), n])];
}

function perEpoch(values: number[]): string {
  const shown = shownEpochs(values.length);
  if (!shown.length) return '—';
  return shown.length === values.length ? values.map(sci).join(', ') : shown.map((e) => `e${e} ${sci(values[e - 1]!)}`).join(', ');
}

/** One-line description of the shared training setup. */
export function describeSetup(r: ExperimentReport): string {
  const c = r.config;
  const seeds = r.seeds.length === 1 ? `seed ${r.seeds[0]}` : `${r.seeds.length} seeds (${r.seeds.join(', ')})`;
  if (!c) return `No finished runs yet; ${r.methods.length} method(s), ${seeds}.`;
  const subset = (n: number | undefined) => (n ? String(n) : 'all');
  const parts = [
    `${c.dataset}, ${c.arch}${c.arch === 'mlp' && c.hidden ? ` (hidden ${c.hidden})` : ''}`,
    `${c.epochs} epoch${c.epochs === 1 ? '' : 's'}`,
    `batch ${c.batchSize}`,
    `${c.optimizer} lr ${c.lr} ${c.schedule}` + (c.warmupEpochs ? ` (warm-up ${c.warmupEpochs} epochs)` : '') +
      (c.weightDecay ? `, weight decay ${c.weightDecay}` : '') + (c.optimizer === 'sgd' ? `, momentum ${c.momentum}` : ''),
    ...(c.labelSmoothing ? [`label smoothing ${c.labelSmoothing}`] : []),
    ...(c.recipe && c.recipe !== 'default' ? [`recipe ${c.recipe}`] : []),
    ...(c.binarize && c.binarize !== 'both' ? [`binarize ${c.binarize} only`] : []),
    ...(c.teacher ? [`distilled from ${c.teacher} (KD weight ${c.kdWeight}, T ${c.kdTemperature})`] : []),
    ...(c.initFrom ? [`initialised from ${c.initFrom}`] : []),
    `train examples ${subset(c.trainSubset)}, test examples ${subset(c.testSubset)}`,
    ...(c.dataset === 'cifar10' ? [c.augment === false ? 'no augmentation' : 'crop + flip augmentation'] : []),
    seeds,
    ...(r.jobs ? [`${r.jobs} run${r.jobs === 1 ? '' : 's'} at a time`] : []),
  ];
  return parts.join(', ') + '.' + (r.differs.length ? ` Note: the finished runs differ in ${r.differs.join(', ')}.` : '');
}

interface Table {
  head: string[];
  rows: string[][];
}

function mainTable(r: ExperimentReport): Table {
  const ref = r.summary.find((s) => s.seeds.length > 0);
  const delta = r.summary.length > 1 && ref;
  return {
    head: ['method', 'seeds', 'epochs', 'best-epoch test acc (%)', 'last-epoch test acc (%)', ...(delta ? [`Δ last vs ${ref.method}`] : []), 'images/s', 'train time / run', 'wall time / run'],
    rows: r.summary.map((s) => [
      s.method,
      String(s.seeds.length),
      s.seeds.length ? String(s.epochs) : '—',
      acc(s.bestAcc),
      acc(s.lastAcc),
      ...(delta ? [s.seeds.length ? (100 * (s.lastAcc.mean - ref.lastAcc.mean)).toFixed(2) : '—'] : []),
      Number.isFinite(s.imagesPerSec) ? String(Math.round(s.imagesPerSec)) : '—',
      formatDuration(s.trainSeconds),
      s.wallSeconds === null ? '—' : formatDuration(s.wallSeconds),
    ]),
  };
}

function flipTable(r: ExperimentReport): Table {
  return {
    head: ['method', 'flip rate per epoch', 'oscillation per epoch', 'signs ≠ init (last epoch)'],
    rows: r.summary.map((s: MethodSummary) => [
      s.method,
      perEpoch(s.flipRate.mean),
      perEpoch(s.oscillation.mean),
      Number.isFinite(s.initFlip) ? `${pct(s.initFlip)}%` : '—',
    ]),
  };
}

function incomplete(r: ExperimentReport): string[] {
  return r.cells
    .filter((c) => c.status !== 'done')
    .map((c) => {
      const what = c.status === 'partial' || c.status === 'interrupted' ? `${c.status}, ${c.epochsDone}/${c.epochs ?? '?'} epochs` : c.status;
      const err = c.error ? `: ${c.error.split('\n').filter(Boolean).pop()}` : '';
      return `${c.method} seed ${c.seed} (${c.dir}): ${what}${err}`;
    });
}

const mdRow = (cells: string[]) => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
const mdTable = (t: Table) => [mdRow(t.head), mdRow(t.head.map(() => '---')), ...t.rows.map(mdRow)].join('\n');

/** The main results table as Markdown (also printed by the CLI). */
export function renderTable(r: ExperimentReport): string {
  return mdTable(mainTable(r)) + '\n';
}

const NOTES =
  'Test accuracy: mean ± sample standard deviation (n − 1) over seeds; best-epoch = each run\'s highest test ' +
  'accuracy over its epochs, last-epoch = after the final epoch. images/s: training throughput of one process ' +
  '(evaluation excluded); train time: sum of the epochs\' training seconds; wall time: the run\'s ' +
  '`onebit train` processes from start to exit (start-up, evaluation and checkpoints included). Flip rate: mean per-step fraction of ' +
  'binary weights whose sign changed; oscillation: flips reverted at the next step.';

/** Preferred plot file per stem (PNG when written, else SVG). */
function plotFiles(r: ExperimentReport): [string, string][] {
  const stems = [...new Set(r.plots.map((p) => p.replace(/\.(svg|png)$/, '')))];
  return stems.map((s) => [s.replace(/^plots\//, ''), r.plots.includes(`${s}.png`) ? `${s}.png` : `${s}.svg`]);
}

/** results.md: setup, command, tables, incomplete cells and the plots. */
export function renderMarkdown(r: ExperimentReport): string {
  const inc = incomplete(r);
  return [
    `# onebit experiment: ${r.methods.join(', ')}`,
    '',
    describeSetup(r),
    '',
    '```sh',
    r.command || '(command not recorded)',
    '```',
    '',
    mdTable(mainTable(r)),
    '',
    mdTable(flipTable(r)),
    '',
    NOTES,
    ...(inc.length ? ['', 'Not included (unfinished cells):', '', ...inc.map((l) => `- ${l}`)] : []),
    '',
    ...plotFiles(r).flatMap(([stem, file]) => [`![${stem}](${file})`, '']),
    `Generated ${r.date}.`,
    '',
  ].join('\n');
}

const htmlTable = (t: Table) =>
  `<table>\n<thead><tr>${t.head.map((h) => `<th>${escapeXml(h)}</th>`).join('')}</tr></thead>\n<tbody>\n` +
  t.rows.map((row) => `<tr>${row.map((c, i) => (i ? `<td class="num">${escapeXml(c)}</td>` : `<td>${escapeXml(c)}</td>`)).join('')}</tr>`).join('\n') +
  '\n</tbody>\n</table>';

/** report.html: a self-contained page (no external files) with the tables, command, date and inline SVG plots. */
export function renderHtml(r: ExperimentReport, plots: Map<string, string>): string {
  const inc = incomplete(r);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>onebit experiment: ${escapeXml(r.methods.join(', '))}</title>
<style>
body { font-family: system-ui, -apple-system, "DejaVu Sans", Helvetica, Arial, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f4f4f4; }
pre { background: #f6f8fa; padding: 0.8em; overflow-x: auto; }
.plot { margin: 1.5em 0; }
.plot svg { max-width: 100%; height: auto; }
.note { color: #555; font-size: 13px; }
</style>
</head>
<body>
<h1>onebit experiment</h1>
<p>${escapeXml(describeSetup(r))}</p>
<pre><code>${escapeXml(r.command || '(command not recorded)')}</code></pre>
<h2>Results</h2>
${htmlTable(mainTable(r))}
<h2>Flip rates</h2>
${htmlTable(flipTable(r))}
<p class="note">${escapeXml(NOTES)}</p>
${inc.length ? `<h2>Unfinished cells</h2>\n<ul>\n${inc.map((l) => `<li>${escapeXml(l)}</li>`).join('\n')}\n</ul>` : ''}
<h2>Plots</h2>
${[...plots].map(([stem, svg]) => `<div class="plot" id="${escapeXml(stem)}">\n${svg.trim()}\n</div>`).join('\n')}
<p class="note">Generated ${escapeXml(r.date)} from ${escapeXml(r.out)}.</p>
</body>
</html>
`;
}
