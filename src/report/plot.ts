/**
 * A small dependency-free SVG line-plot writer: axes with "nice" ticks, a light grid, one line per
 * series (markers when there are few points), an optional light band (e.g. the min–max over seeds)
 * behind each line, a legend on the right, and a log-scale y option for rates.
 *
 * Points that cannot be drawn — non-finite values, or values ≤ 0 on a log axis — leave a gap in the
 * line (the path restarts after them); they never produce NaN coordinates.
 */
import { fail } from '../core/errors.js';

/** One line of a plot: `y` over `x`, with an optional band `lo`..`hi` drawn lightly behind it. */
export interface PlotSeries {
  label: string;
  x: readonly number[];
  y: readonly number[];
  lo?: readonly number[];
  hi?: readonly number[];
}

export interface PlotOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  /** Logarithmic y axis (decade ticks); values ≤ 0 are left out as gaps. */
  logY?: boolean;
  /** Only whole-number x ticks (epochs). Default true. */
  xInteger?: boolean;
  /** Size of the SVG in px. Default 720 × 400. */
  width?: number;
  height?: number;
}

/** An axis range and its tick positions. */
export interface Axis {
  min: number;
  max: number;
  ticks: number[];
}

/** Tableau 10: distinguishable, print-friendly line colours (cycled past ten series). */
export const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

const FONT = 'DejaVu Sans, Helvetica, Arial, sans-serif';
const CHAR_W = 0.6; // mean glyph width / font size, for layout estimates

/** Step of 1, 2 or 5 × 10^k giving about `target` intervals over `span`. */
function niceStep(span: number, target: number): number {
  const raw = span / target;
  const p = 10 ** Math.floor(Math.log10(raw));
  const f = raw / p;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * p;
}

/** A linear axis covering [min, max] with round tick values (about `target` intervals). */
export function linearAxis(min: number, max: number, opts: { target?: number; integer?: boolean } = {}): Axis {
  if (!Number.isFinite(min) || !Number.isFinite(max) || min > max) fail('linearAxis', 'finite min ≤ max', `[${min}, ${max}]`);
  if (max === min) {
    const d = opts.integer ? 1 : min === 0 ? 1 : Math.abs(min) * 0.1;
    min -= d;
    max += d;
  }
  let step = niceStep(max - min, opts.target ?? 5);
  if (opts.integer) step = Math.max(1, Math.round(step));
  const lo = Math.floor(min / step + 1e-9) * step;
  const hi = Math.ceil(max / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let i = 0; lo + i * step <= hi + step * 1e-9; i++) ticks.push(Number((lo + i * step).toPrecision(12)));
  return { min: lo, max: hi, ticks };
}

/** A log10 axis from the decade at or below `min` to the decade at or above `max` (both > 0). */
export function logAxis(min: number, max: number): Axis {
  if (!(min > 0) || !(max >= min) || !Number.isFinite(max)) fail('logAxis', 'finite 0 < min ≤ max', `[${min}, ${max}]`);
  const k0 = Math.floor(Math.log10(min) + 1e-9);
  let k1 = Math.ceil(Math.log10(max) - 1e-9);
  if (k1 === k0) k1++;
  const every = Math.ceil((k1 - k0) / 8);
  k1 = k0 + Math.ceil((k1 - k0) / every) * every; // end on a labelled decade
  // Two decades or fewer: also 2·10^k and 5·10^k, so short ranges still get several labels.
  const mantissas = k1 - k0 <= 2 ? [1, 2, 5] : [1];
  const ticks: number[] = [];
  for (let k = k0; k <= k1; k += every) {
    for (const m of mantissas) if (k < k1 || m === 1) ticks.push(Number(`${m}e${k}`));
  }
  return { min: Number(`1e${k0}`), max: Number(`1e${k1}`), ticks };
}

/** XML-escape text for element content and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function linearLabel(v: number, step: number): string {
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return v.toFixed(Math.min(decimals, 10));
}

function logLabel(v: number): string {
  const k = Math.floor(Math.log10(v) + 1e-9);
  return `${Math.round(v / 10 ** k)}e${k}`;
}
const r2 = (v: number) => Math.round(v * 100) / 100;

/**
 * Render a line plot as a standalone SVG document. Every series becomes exactly one
 * `<path class="line">` (plus one `<path class="band">` when it has `lo`/`hi`); axis ranges cover
 * every drawable value of lines and bands.
 */
export function linePlot(series: readonly PlotSeries[], opts: PlotOptions): string {
  for (const s of series) {
    for (const [k, a] of [['y', s.y], ['lo', s.lo], ['hi', s.hi]] as const) {
      if (a && a.length !== s.x.length) fail(`linePlot(${s.label})`, `${k} of the same length as x (${s.x.length})`, `length ${a.length}`);
    }
  }
  const width = opts.width ?? 720;
  const height = opts.height ?? 400;
  const logY = opts.logY ?? false;
  const ok = (v: number | undefined): v is number => v !== undefined && Number.isFinite(v) && (!logY || v > 0);

  // Data ranges over everything drawable.
  const xs: number[] = [];
  const ys: number[] = [];
  for (const s of series) {
    s.x.forEach((x, i) => {
      if (!Number.isFinite(x)) return;
      const vals = [s.y[i], s.lo?.[i], s.hi?.[i]].filter(ok);
      if (vals.length) xs.push(x), ys.push(...vals);
    });
  }
  const xAxis = xs.length ? linearAxis(Math.min(...xs), Math.max(...xs), { integer: opts.xInteger ?? true, target: 6 }) : linearAxis(0, 1);
  const yAxis = ys.length
    ? logY ? logAxis(Math.min(...ys), Math.max(...ys)) : linearAxis(Math.min(...ys), Math.max(...ys))
    : logY ? logAxis(1e-3, 1) : linearAxis(0, 1);
  const yStep = yAxis.ticks.length > 1 ? yAxis.ticks[1]! - yAxis.ticks[0]! : 1;
  const yLabel = (v: number) => (logY ? logLabel(v) : linearLabel(v, yStep));
  const xStep = xAxis.ticks.length > 1 ? xAxis.ticks[1]! - xAxis.ticks[0]! : 1;

  // Layout: title on top, y labels on the left, legend on the right (one or more columns).
  const fs = 12;
  const legendFs = 11;
  const labelW = Math.max(...yAxis.ticks.map((t) => yLabel(t).length)) * fs * CHAR_W;
  const left = Math.ceil(labelW + 36);
  const top = 34;
  const bottom = 46;
  const rowH = 16;
  const rowsMax = Math.max(1, Math.floor((height - top - bottom) / rowH));
  const cols = Math.max(1, Math.ceil(series.length / rowsMax));
  const rows = Math.ceil(series.length / cols);
  const colW = series.length ? Math.ceil(32 + Math.max(...series.map((s) => s.label.length)) * legendFs * CHAR_W) : 0;
  const right = series.length ? cols * colW + 16 : 20;
  const pw = Math.max(40, width - left - right);
  const ph = height - top - bottom;
  const px = (x: number) => r2(left + ((x - xAxis.min) / (xAxis.max - xAxis.min)) * pw);
  const py = logY
    ? (y: number) => r2(top + ph - ((Math.log10(y) - Math.log10(yAxis.min)) / (Math.log10(yAxis.max) - Math.log10(yAxis.min))) * ph)
    : (y: number) => r2(top + ph - ((y - yAxis.min) / (yAxis.max - yAxis.min)) * ph);

  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}" font-size="${fs}">`);
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text class="title" x="${r2(left + pw / 2)}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${escapeXml(opts.title)}</text>`);

  out.push('<g class="grid" stroke="#e6e6e6" stroke-width="1">');
  for (const t of yAxis.ticks) out.push(`<line x1="${left}" y1="${py(t)}" x2="${left + pw}" y2="${py(t)}"/>`);
  for (const t of xAxis.ticks) out.push(`<line x1="${px(t)}" y1="${top}" x2="${px(t)}" y2="${top + ph}"/>`);
  out.push('</g>');

  out.push('<g class="axes" stroke="#333333" stroke-width="1" fill="#333333">');
  out.push(`<line x1="${left}" y1="${top + ph}" x2="${left + pw}" y2="${top + ph}"/>`);
  out.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${top + ph}"/>`);
  for (const t of xAxis.ticks) {
    out.push(`<line x1="${px(t)}" y1="${top + ph}" x2="${px(t)}" y2="${top + ph + 4}"/>`);
    out.push(`<text class="xtick" x="${px(t)}" y="${top + ph + 17}" text-anchor="middle" stroke="none">${escapeXml(linearLabel(t, xStep))}</text>`);
  }
  for (const t of yAxis.ticks) {
    out.push(`<line x1="${left - 4}" y1="${py(t)}" x2="${left}" y2="${py(t)}"/>`);
    out.push(`<text class="ytick" x="${left - 7}" y="${r2(py(t) + 4)}" text-anchor="end" stroke="none">${escapeXml(yLabel(t))}</text>`);
  }
  out.push(`<text class="xlabel" x="${r2(left + pw / 2)}" y="${height - 10}" text-anchor="middle" stroke="none">${escapeXml(opts.xLabel)}</text>`);
  out.push(`<text class="ylabel" transform="translate(14 ${r2(top + ph / 2)}) rotate(-90)" text-anchor="middle" stroke="none">${escapeXml(opts.yLabel)}</text>`);
  out.push('</g>');

  const color = (i: number) => PALETTE[i % PALETTE.length]!;
  // Past ten series the colours repeat; each further round of ten gets its own dash pattern.
  const DASHES = ['', '7 4', '2 3', '9 3 2 3'];
  const dash = (i: number) => {
    const d = DASHES[Math.floor(i / PALETTE.length) % DASHES.length]!;
    return d ? ` stroke-dasharray="${d}"` : '';
  };
  out.push('<g class="bands" stroke="none">');
  series.forEach((s, si) => {
    if (!s.lo || !s.hi) return;
    const runs: string[] = [];
    let run: number[] = [];
    const flush = () => {
      if (run.length) {
        const upper = run.map((i, k) => `${k ? 'L' : 'M'}${px(s.x[i]!)},${py(s.hi![i]!)}`);
        const lower = [...run].reverse().map((i) => `L${px(s.x[i]!)},${py(s.lo![i]!)}`);
        runs.push(upper.join('') + lower.join('') + 'Z');
      }
      run = [];
    };
    s.x.forEach((x, i) => (Number.isFinite(x) && ok(s.lo![i]) && ok(s.hi![i]) ? run.push(i) : flush()));
    flush();
    out.push(`<path class="band" d="${runs.join('')}" fill="${color(si)}" fill-opacity="0.15"/>`);
  });
  out.push('</g>');

  out.push('<g class="lines" fill="none" stroke-width="2" stroke-linejoin="round" stroke-linecap="round">');
  const markers: string[] = [];
  series.forEach((s, si) => {
    let d = '';
    let pen = false;
    s.x.forEach((x, i) => {
      const y = s.y[i];
      if (!Number.isFinite(x) || !ok(y)) return void (pen = false);
      d += `${pen ? 'L' : 'M'}${px(x)},${py(y)}`;
      pen = true;
      if (s.x.length <= 40) markers.push(`<circle cx="${px(x)}" cy="${py(y)}" r="2.5" fill="${color(si)}"/>`);
    });
    out.push(`<path class="line" data-label="${escapeXml(s.label)}" d="${d}" stroke="${color(si)}"${dash(si)}/>`);
  });
  out.push('</g>');
  out.push(`<g class="markers" stroke="none">${markers.join('')}</g>`);

  out.push(`<g class="legend" font-size="${legendFs}">`);
  series.forEach((s, si) => {
    const lx = left + pw + 16 + Math.floor(si / rows) * colW;
    const ly = top + (si % rows) * rowH + 8;
    out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 22}" y2="${ly}" stroke="${color(si)}" stroke-width="2.5"${dash(si)}/>`);
    out.push(`<text x="${lx + 28}" y="${ly + 4}">${escapeXml(s.label)}</text>`);
  });
  out.push('</g>');
  out.push('</svg>');
  return out.join('\n') + '\n';
}
