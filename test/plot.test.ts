import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import { OnebitError } from '../src/core/errors.js';
import { linearAxis, linePlot, logAxis } from '../src/report/plot.js';
import { loadResvg, resvgError, svgToPng } from '../src/report/png.js';

/** Check that every tag is closed in order (self-closing tags count as closed); returns the tag names seen. */
export function assertBalanced(xml: string): string[] {
  const stack: string[] = [];
  const seen: string[] = [];
  for (const m of xml.matchAll(/<(\/?)([a-zA-Z][\w:-]*)([^>]*?)(\/?)>/g)) {
    const [, close, name, , self] = m;
    if (close) assert.equal(stack.pop(), name, `closing </${name}> does not match`);
    else {
      seen.push(name!);
      if (!self) stack.push(name!);
    }
  }
  assert.deepEqual(stack, [], 'unclosed tags');
  // No stray markup characters outside tags: text content must be escaped.
  assert.doesNotMatch(xml.replace(/<[^>]*>/g, ''), /[<>]/);
  return seen;
}

/** The plot rectangle from the two axis lines, and every coordinate pair of every path. */
function geometry(svg: string) {
  const axes = svg.slice(svg.indexOf('<g class="axes"'));
  const [xAxis, yAxis] = [...axes.matchAll(/<line x1="([\d.]+)" y1="([\d.]+)" x2="([\d.]+)" y2="([\d.]+)"\/>/g)].slice(0, 2).map((m) => m.slice(1).map(Number));
  const rect = { left: yAxis![0]!, top: yAxis![1]!, right: xAxis![2]!, bottom: xAxis![1]! };
  const points = [...svg.matchAll(/<path class="(line|band)"[^>]* d="([^"]*)"/g)].flatMap((m) => [...m[2]!.matchAll(/[ML](-?[\d.]+),(-?[\d.]+)/g)].map((p) => [Number(p[1]), Number(p[2])]));
  return { rect, points };
}

const series = [
  { label: 'ste', x: [1, 2, 3, 4], y: [0.2, 0.5, 0.8, 0.93], lo: [0.15, 0.45, 0.78, 0.9], hi: [0.25, 0.55, 0.85, 0.95] },
  { label: 'a<b & "c"', x: [1, 2, 3, 4], y: [0.3, 0.4, 0.7, 0.97] },
];

test('plot: axes give round ticks covering the range', () => {
  const a = linearAxis(0.15, 0.97);
  assert.ok(a.min <= 0.15 && a.max >= 0.97);
  assert.deepEqual(a.ticks, [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(linearAxis(1, 1, { integer: true }).ticks, [0, 1, 2]);
  assert.ok(linearAxis(1, 7, { integer: true }).ticks.every(Number.isInteger));
  const l = logAxis(3e-5, 2e-2);
  assert.equal(l.min, 1e-5);
  assert.equal(l.max, 1e-1);
  assert.deepEqual(logAxis(2e-3, 7e-3).ticks, [1e-3, 2e-3, 5e-3, 1e-2]);
  assert.throws(() => logAxis(0, 1), OnebitError);
});

test('plot: SVG is balanced, has one line path per series and a band where given, and escapes labels', () => {
  const svg = linePlot(series, { title: 'Test accuracy', xLabel: 'epoch', yLabel: 'acc' });
  const tags = assertBalanced(svg);
  assert.equal(tags[0], 'svg');
  assert.equal((svg.match(/<path class="line"/g) ?? []).length, 2);
  assert.equal((svg.match(/<path class="band"/g) ?? []).length, 1);
  assert.match(svg, /a&lt;b &amp; &quot;c&quot;/);
  assert.doesNotMatch(svg, /NaN|Infinity|undefined/);
});

test('plot: axis ranges cover every line and band point', () => {
  const svg = linePlot(series, { title: 't', xLabel: 'x', yLabel: 'y' });
  const { rect, points } = geometry(svg);
  assert.equal(points.length, 4 + 4 + 8);
  for (const [x, y] of points) {
    assert.ok(x! >= rect.left - 1e-6 && x! <= rect.right + 1e-6, `x ${x} outside [${rect.left}, ${rect.right}]`);
    assert.ok(y! >= rect.top - 1e-6 && y! <= rect.bottom + 1e-6, `y ${y} outside [${rect.top}, ${rect.bottom}]`);
  }
  // Tick labels span the data: lowest ≤ 0.15 (band), highest ≥ 0.97.
  const ticks = [...svg.matchAll(/class="ytick"[^>]*>([^<]+)</g)].map((m) => Number(m[1]));
  assert.ok(Math.min(...ticks) <= 0.15 && Math.max(...ticks) >= 0.97, ticks.join(' '));
  // The extreme points touch the plot: max y (0.97) is near the top when the axis ends at 1.
  assert.ok(Math.min(...points.map((p) => p[1]!)) < rect.top + 0.1 * (rect.bottom - rect.top));
});

test('plot: log-y leaves zeros as gaps, never NaN, and covers the positive values', () => {
  const svg = linePlot(
    [
      { label: 'flip', x: [1, 2, 3, 4, 5], y: [1e-2, 0, 3e-4, 2e-4, 0] },
      { label: 'all zero', x: [1, 2], y: [0, 0] },
      { label: 'wide', x: [1, 2, 3], y: [5e-6, 1e-3, 0.5], lo: [0, 1e-4, 0.1], hi: [1e-5, 1e-2, 0.9] },
    ],
    { title: 'flip rate', xLabel: 'epoch', yLabel: 'rate', logY: true },
  );
  assertBalanced(svg);
  assert.doesNotMatch(svg, /NaN|Infinity/);
  const lines = [...svg.matchAll(/<path class="line"[^>]* d="([^"]*)"/g)].map((m) => m[1]!);
  assert.equal(lines.length, 3);
  assert.equal((lines[0]!.match(/M/g) ?? []).length, 2, 'the zero at epoch 2 splits the line');
  assert.equal(lines[1], '', 'an all-zero series draws nothing on a log axis');
  const ticks = [...svg.matchAll(/class="ytick"[^>]*>([^<]+)</g)].map((m) => Number(m[1]));
  assert.ok(Math.min(...ticks) <= 5e-6 && Math.max(...ticks) >= 0.9, ticks.join(' '));
  const { rect, points } = geometry(svg);
  for (const [, y] of points) assert.ok(y! >= rect.top - 1e-6 && y! <= rect.bottom + 1e-6);
  // Only zeros anywhere: still a valid plot with a default decade range.
  assertBalanced(linePlot([{ label: 'z', x: [1], y: [0] }], { title: 'z', xLabel: 'x', yLabel: 'y', logY: true }));
});

test('plot: many series get a multi-column legend; mismatched lengths are an error', () => {
  const many = Array.from({ length: 40 }, (_, i) => ({ label: `layer${i}.conv`, x: [1, 2], y: [1e-3 * (i + 1), 1e-4 * (i + 1)] }));
  const svg = linePlot(many, { title: 'layers', xLabel: 'epoch', yLabel: 'rate', logY: true });
  assertBalanced(svg);
  assert.equal((svg.match(/<path class="line"/g) ?? []).length, 40);
  assert.throws(() => linePlot([{ label: 'bad', x: [1, 2], y: [1] }], { title: '', xLabel: '', yLabel: '' }), /same length as x/);
});

test('plot: PNG export renders a decodable PNG of the requested width', (t) => {
  if (!loadResvg()) return t.skip(`@resvg/resvg-js unavailable: ${resvgError()}`);
  const svg = linePlot(series, { title: 'Test accuracy', xLabel: 'epoch', yLabel: 'acc', width: 600, height: 300 });
  const png = svgToPng(svg, 1200);
  assert.ok(png);
  const img = PNG.sync.read(png);
  assert.equal(img.width, 1200);
  assert.equal(img.height, 600);
  // Not blank: the lines put non-white pixels in.
  let dark = 0;
  for (let i = 0; i < img.data.length; i += 4) if (img.data[i]! < 128) dark++;
  assert.ok(dark > 500, `only ${dark} dark pixels`);
});

test('plot: without resvg, svgToPng returns null and says so once', () => {
  const mod = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'report', 'png.js');
  const code = `import('${mod}').then((m) => { const a = m.svgToPng('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', 10); const b = m.svgToPng('<svg/>', 10); console.log(a === null && b === null); })`;
  const r = spawnSync(process.execPath, ['-e', code], { env: { ...process.env, ONEBIT_NO_RESVG: '1' }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'true');
  assert.equal((r.stderr.match(/PNG export skipped/g) ?? []).length, 1, r.stderr);
});
