/**
 * End to end in a real browser: the demo page (demo/) served by bench/demo_server.ts, the
 * `onebit/web` bundle (dist/web/), the demo models (demo/models/), driven by Chromium through
 * playwright-core.
 *
 * - MNIST: digits drawn on the canvas with mouse strokes; the page's input tensor is run through
 *   the Node engine, whose logits must agree with the page's (LOGIT_TOL) with the same top-1.
 * - CIFAR-10: a PNG of a CIFAR-10 test image (a fixed synthetic pattern when the data set is not on
 *   disk) uploaded through the file input; the page's input tensor must equal `pngToInput` of the
 *   same file, and the logits must agree as above.
 * - The page runs on wasm-simd, cross-origin isolated, and shows latency, sizes and the backend.
 *
 * Screenshot: test-artifacts/web-demo.png (web-demo-failure.png when a check fails). Skipped only
 * when Chromium is missing (/usr/bin/chromium, or $ONEBIT_CHROMIUM) and ONEBIT_REQUIRE_BROWSER is not 1.
 */
import '../src/index.js';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { checkCifar10File, CIFAR10_CLASSES, CIFAR10_RECORD_BYTES } from '../src/data/cifar.js';
import { defaultCifar10Dir } from '../src/data/download.js';
import { loadModel, type InferenceModel } from '../src/infer/index.js';
import { topK } from '../src/infer/preprocess.js';
import { pngToInput } from '../src/cli/deploy.js';
import { repoRoot, startDemoServer, type DemoServer } from '../bench/demo_server.js';

const ROOT = repoRoot(path.dirname(fileURLToPath(import.meta.url)));
const CHROMIUM = process.env.ONEBIT_CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = path.join(ROOT, 'test-artifacts');
const MNIST = path.join(ROOT, 'demo', 'models', 'mnist.onebit');
const CIFAR = path.join(ROOT, 'demo', 'models', 'cifar10-resnet20.onebit');
/**
 * Page (WebAssembly) vs Node engine (native addon or TypeScript kernels) on the same input: the
 * binary parts are integer-exact, the float parts differ only in summation order, so logits agree
 * to |Δ| ≤ LOGIT_TOL · max(1, max |logit|). Against Node's own WebAssembly kernels (same code)
 * they must agree to WASM_TOL.
 */
const LOGIT_TOL = 1e-3;
const WASM_TOL = 1e-5;
/** Page input vs `pngToInput` of the same PNG (same function, same decoded bytes). */
const INPUT_TOL = 1e-6;

/** The CIFAR-10 folder holding test_batch.bin: $ONEBIT_CIFAR10_DIR, the cache folder, the shared copy; null if none. */
function cifarDir(): string | null {
  const candidates = [process.env.ONEBIT_CIFAR10_DIR, defaultCifar10Dir(), '/work/shared/datasets/cifar-10-batches-bin'];
  for (const d of candidates) {
    if (!d) continue;
    try {
      checkCifar10File('web_e2e', path.join(d, 'test_batch.bin'), 'test_batch.bin');
      return d;
    } catch {
      /* next */
    }
  }
  return null;
}

/** A 32×32 RGBA PNG of CIFAR-10 test image `index` (or a fixed synthetic pattern), with its label. */
function cifarPng(index: number): { bytes: Buffer; label: string } {
  const png = new PNG({ width: 32, height: 32 });
  const dir = cifarDir();
  let label = 'synthetic';
  if (dir) {
    const fd = fs.openSync(path.join(dir, 'test_batch.bin'), 'r');
    const rec = Buffer.alloc(CIFAR10_RECORD_BYTES);
    try {
      fs.readSync(fd, rec, 0, CIFAR10_RECORD_BYTES, index * CIFAR10_RECORD_BYTES);
    } finally {
      fs.closeSync(fd);
    }
    label = CIFAR10_CLASSES[rec[0]!]!;
    for (let p = 0; p < 1024; p++) for (let c = 0; c < 3; c++) png.data[p * 4 + c] = rec[1 + c * 1024 + p]!;
  } else {
    for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) {
      const p = y * 32 + x;
      png.data[p * 4] = (x * 8 + index * 40) & 255;
      png.data[p * 4 + 1] = (y * 8) & 255;
      png.data[p * 4 + 2] = ((x ^ y) & 4) ? 220 : 30;
    }
  }
  for (let p = 0; p < 1024; p++) png.data[p * 4 + 3] = 255;
  return { bytes: PNG.sync.write(png), label };
}

/** Build dist/web/ when it is missing or older than a source file. */
function ensureBundle(): void {
  const bundle = path.join(ROOT, 'dist', 'web', 'onebit.js');
  const script = path.join(ROOT, 'scripts', 'build-web.mjs');
  const newest = (dir: string): number => fs.readdirSync(dir, { withFileTypes: true }).reduce((t, e) => {
    const p = path.join(dir, e.name);
    return Math.max(t, e.isDirectory() ? newest(p) : fs.statSync(p).mtimeMs);
  }, 0);
  const wasmDir = path.join(ROOT, 'build', 'wasm');
  const stale = !fs.existsSync(bundle) ||
    fs.statSync(bundle).mtimeMs < Math.max(newest(path.join(ROOT, 'src')), fs.existsSync(wasmDir) ? newest(wasmDir) : 0);
  if (stale) {
    assert.ok(fs.existsSync(script), `expected ${script} to build dist/web/onebit.js, but it is missing`);
    execFileSync(process.execPath, [script], { cwd: ROOT, stdio: 'inherit', timeout: 180_000 });
  }
  assert.ok(fs.existsSync(bundle), 'expected dist/web/onebit.js after node scripts/build-web.mjs');
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Node's engine on ONEBIT_BACKEND=wasm-simd (the browser's kernels in Node), or null when this build has none. */
async function loadNodeWasm(file: string): Promise<InferenceModel | null> {
  const prev = process.env.ONEBIT_BACKEND;
  process.env.ONEBIT_BACKEND = 'wasm-simd';
  try {
    return await loadModel(file);
  } catch {
    return null;
  } finally {
    if (prev === undefined) delete process.env.ONEBIT_BACKEND;
    else process.env.ONEBIT_BACKEND = prev;
  }
}

interface PanelState { count: number; input: number[]; logits: number[]; top1: string; latencyMs: number }

async function panelState(page: Page, panel: 'mnist' | 'cifar'): Promise<PanelState> {
  return page.evaluate((p) => {
    const s = (window as unknown as { __onebit: Record<string, { count: number; lastInput: Float32Array; lastLogits: Float32Array; top: { label: string }[]; latencyMs: number }> }).__onebit[p]!;
    return { count: s.count, input: Array.from(s.lastInput), logits: Array.from(s.lastLogits), top1: s.top[0]!.label, latencyMs: s.latencyMs };
  }, panel);
}

async function countOf(page: Page, panel: 'mnist' | 'cifar'): Promise<number> {
  return page.evaluate((p) => (window as unknown as { __onebit: Record<string, { count: number }> }).__onebit[p]!.count, panel);
}

async function waitCount(page: Page, panel: 'mnist' | 'cifar', above: number): Promise<void> {
  await page.waitForFunction(([p, n]) => (window as unknown as { __onebit: Record<string, { count: number }> }).__onebit[p as string]!.count > (n as number), [panel, above] as const);
}

/**
 * Compare the page's logits for its input with the Node engine's (and with Node's WebAssembly
 * kernels when present); returns the Node top-1 label.
 */
function checkAgainstNode(what: string, s: PanelState, m: InferenceModel, wasm: InferenceModel | null): string {
  const x = Float32Array.from(s.input);
  const node = m.predict(x, [1, ...m.inputShape]);
  const diff = maxDiff(s.logits, node), scale = Math.max(1, maxAbs(node));
  const nodeTop = topK(node, 1, m.labels)[0]!.label;
  const line = `${what}: page top-1 ${s.top1}, node (${m.backend.name}) top-1 ${nodeTop}, max |Δlogit| ${diff.toExponential(2)} (tol ${(LOGIT_TOL * scale).toExponential(2)}), latency ${s.latencyMs.toFixed(3)} ms`;
  console.log(line);
  assert.ok(diff <= LOGIT_TOL * scale, `${what}: logits differ from Node's by ${diff} > ${LOGIT_TOL * scale}\n page ${s.logits.join(', ')}\n node ${Array.from(node).join(', ')}`);
  assert.equal(s.top1, nodeTop, `${what}: page top-1 ${s.top1} vs Node top-1 ${nodeTop}`);
  if (wasm) {
    const w = wasm.predict(x, [1, ...wasm.inputShape]);
    const dw = maxDiff(s.logits, w);
    console.log(`${what}: vs Node ${wasm.backend.name}: max |Δlogit| ${dw.toExponential(2)} (tol ${(WASM_TOL * scale).toExponential(2)})`);
    assert.ok(dw <= WASM_TOL * scale, `${what}: logits differ from Node's ${wasm.backend.name} by ${dw}`);
  }
  return nodeTop;
}

type Stroke = [number, number][];

/** Draw strokes (points in 0..280 canvas coordinates) with the mouse; waits for the prediction. */
async function draw(page: Page, strokes: Stroke[]): Promise<void> {
  const before = await countOf(page, 'mnist');
  await page.click('#mnist-clear');
  const box = await page.locator('#mnist-canvas').boundingBox();
  assert.ok(box, 'the drawing canvas is not visible');
  const sx = box.width / 280, sy = box.height / 280;
  for (const s of strokes) {
    await page.mouse.move(box.x + s[0]![0] * sx, box.y + s[0]![1] * sy);
    await page.mouse.down();
    for (let i = 1; i < s.length; i++) await page.mouse.move(box.x + s[i]![0] * sx, box.y + s[i]![1] * sy, { steps: 4 });
    await page.mouse.up();
  }
  await waitCount(page, 'mnist', before + strokes.length - 1);
}

const DIGITS: Record<string, Stroke[]> = {
  '1': [[[150, 50], [146, 120], [142, 235]]],
  '7': [[[80, 60], [200, 60], [170, 120], [140, 180], [120, 235]]],
  '0': [Array.from({ length: 41 }, (_, i): [number, number] => [140 + 60 * Math.sin((2 * Math.PI * i) / 40), 140 - 90 * Math.cos((2 * Math.PI * i) / 40)])],
};

test('web demo: drawn MNIST digits and an uploaded CIFAR-10 PNG match the Node engine, on wasm-simd', { timeout: 240_000 }, async (t) => {
  if (!fs.existsSync(CHROMIUM)) {
    if (process.env.ONEBIT_REQUIRE_BROWSER === '1') assert.fail(`ONEBIT_REQUIRE_BROWSER=1 but ${CHROMIUM} is missing`);
    t.skip(`no Chromium at ${CHROMIUM} (set ONEBIT_CHROMIUM, or ONEBIT_REQUIRE_BROWSER=1 to make this a failure)`);
    return;
  }
  for (const f of [MNIST, CIFAR]) assert.ok(fs.existsSync(f), `expected the demo model ${path.relative(ROOT, f)}; make it with npm run demo:models`);
  ensureBundle();
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'onebit-web-e2e-'));
  const mnist = await loadModel(MNIST), cifar = await loadModel(CIFAR);
  const mnistWasm = await loadNodeWasm(MNIST), cifarWasm = await loadNodeWasm(CIFAR);

  let server: DemoServer | null = null, browser: Browser | null = null, page: Page | null = null;
  const problems: string[] = [];
  try {
    server = await startDemoServer({ port: 0, root: ROOT });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], timeout: 60_000 });
    const context = await browser.newContext({ viewport: { width: 1100, height: 1000 } });
    page = await context.newPage();
    page.setDefaultTimeout(60_000);
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      // The optional sample list (models/samples/samples.json) may be absent: its 404 is not a problem.
      if (m.type() === 'error' && !m.location().url.endsWith('/models/samples/samples.json')) problems.push(`console error: ${m.text()} (${m.location().url})`);
    });
    // 127.0.0.1 rather than localhost: one address, still a secure context (cross-origin isolation works).
    await page.goto(server.url.replace('localhost', '127.0.0.1'));
    await page.waitForFunction(() => (window as unknown as { __onebit?: { ready: boolean } }).__onebit?.ready === true);
    const info = await page.evaluate(() => {
      const s = (window as unknown as { __onebit: { crossOriginIsolated: boolean; backend: { name: string; threads: number } | null; mnist: { error: string | null }; cifar: { error: string | null } } }).__onebit;
      return { isolated: s.crossOriginIsolated, backend: s.backend, errors: [s.mnist.error, s.cifar.error] };
    });
    assert.deepEqual(info.errors, [null, null], 'a model failed to load on the page');
    assert.equal(info.isolated, true, 'the page is not cross-origin isolated (COOP/COEP headers)');
    assert.equal(info.backend?.name, 'wasm-simd', `the page runs on ${info.backend?.name}, expected wasm-simd`);

    // Sizes and backend as displayed.
    for (const panel of ['mnist', 'cifar'] as const) {
      const m = panel === 'mnist' ? mnist : cifar;
      const size = await page.textContent(`#${panel}-stats [data-stat="size"]`);
      assert.match(size ?? '', /KiB \.onebit vs .*(KiB|MiB) float32 \(\d+(\.\d)?× smaller\)/, `${panel} size: ${size}`);
      assert.ok(m.size.fileBytes !== null && m.size.fileBytes < m.size.floatBytes);
      const backend = await page.textContent(`#${panel}-stats [data-stat="backend"]`);
      assert.match(backend ?? '', /^wasm-simd · \d+ threads? · cross-origin isolated$/, `${panel} backend: ${backend}`);
    }

    // (a) MNIST: draw, then compare with Node on the page's input tensor.
    const recognised: string[] = [];
    for (const [digit, strokes] of Object.entries(DIGITS)) {
      await draw(page, strokes);
      const s = await panelState(page, 'mnist');
      assert.equal(s.input.length, 28 * 28);
      assert.ok(maxAbs(s.input) > 0, 'the page sent an empty input');
      const top = checkAgainstNode(`mnist drawn ${digit}`, s, mnist, mnistWasm);
      if (top === digit) recognised.push(digit);
    }
    console.log(`mnist: recognised ${recognised.length}/${Object.keys(DIGITS).length} drawn digits (${recognised.join(', ') || 'none'})`);
    // The model's accuracy is not this test's subject, but a clean vertical stroke must read as 1.
    assert.ok(recognised.includes('1'), 'a drawn "1" was not recognised');
    // End on a correct prediction (the screenshot shows it).
    const lastDigit = Object.keys(DIGITS).at(-1)!;
    if (!recognised.includes(lastDigit)) {
      await draw(page, DIGITS['1']!);
      assert.equal(checkAgainstNode('mnist drawn 1 (again)', await panelState(page, 'mnist'), mnist, mnistWasm), '1');
    }
    const latency = await page.textContent('#mnist-stats [data-stat="latency"]');
    assert.match(latency ?? '', /^\d+(\.\d+)? ms per image \(median of \d+, batch 1\)$/, `mnist latency: ${latency}`);

    // (b) CIFAR-10: upload a PNG.
    for (const index of [0, 1]) {
      const { bytes, label } = cifarPng(index);
      const file = path.join(tmp, `cifar10-test-${index}-${label}.png`);
      fs.writeFileSync(file, bytes);
      const before = await countOf(page, 'cifar');
      await page.setInputFiles('#cifar-file', file);
      await waitCount(page, 'cifar', before);
      const s = await panelState(page, 'cifar');
      const want = pngToInput(bytes, file, cifar, false);
      const dIn = maxDiff(s.input, want);
      assert.ok(dIn <= INPUT_TOL, `cifar ${index}: page input differs from pngToInput by ${dIn}`);
      checkAgainstNode(`cifar test image ${index} (${label})`, s, cifar, cifarWasm);
      assert.equal(await page.isVisible('#cifar-preview'), true, 'the uploaded image is not shown');
    }
    // A sample button (demo/models/samples/, written by demo:models when CIFAR-10 was at hand).
    const samplesFile = path.join(ROOT, 'demo', 'models', 'samples', 'samples.json');
    if (fs.existsSync(samplesFile)) {
      // Sample buttons in order until one is classified correctly (the screenshot then shows a
      // correct prediction); each is checked against Node on the way.
      const samples = JSON.parse(fs.readFileSync(samplesFile, 'utf8')) as { file: string; label: string }[];
      let correct = '';
      for (let i = 0; i < samples.length && !correct; i++) {
        const before = await countOf(page, 'cifar');
        await page.locator('#cifar-samples .sample').nth(i).click();
        await waitCount(page, 'cifar', before);
        const s = await panelState(page, 'cifar');
        const file = path.join(ROOT, 'demo', 'models', samples[i]!.file);
        const dIn = maxDiff(s.input, pngToInput(fs.readFileSync(file), file, cifar, false));
        assert.ok(dIn <= INPUT_TOL, `sample ${samples[i]!.file}: page input differs from pngToInput by ${dIn}`);
        if (checkAgainstNode(`cifar sample ${samples[i]!.file}`, s, cifar, cifarWasm) === samples[i]!.label) correct = samples[i]!.label;
      }
      assert.ok(correct, 'no CIFAR-10 sample was classified correctly');
      console.log(`cifar: the screenshot shows a correctly classified ${correct}`);
    }
    const cl = await page.textContent('#cifar-stats [data-stat="latency"]');
    assert.match(cl ?? '', /^\d+(\.\d+)? ms per image/, `cifar latency: ${cl}`);
    const topRows = await page.locator('#cifar-topk li').count();
    assert.equal(topRows, 5, 'expected 5 rows of top classes');

    assert.deepEqual(problems, [], 'the page logged errors');
    await page.screenshot({ path: path.join(ARTIFACTS, 'web-demo.png'), fullPage: true });
  } catch (e) {
    if (page) await page.screenshot({ path: path.join(ARTIFACTS, 'web-demo-failure.png'), fullPage: true }).catch(() => undefined);
    if (problems.length) console.error(problems.join('\n'));
    throw e;
  } finally {
    await browser?.close().catch(() => undefined);
    await server?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('demo server: COOP/COEP, MIME types, no traversal', { timeout: 30_000 }, async () => {
  const { default: http } = await import('node:http');
  const server = await startDemoServer({ port: 0, root: ROOT });
  const get = (p: string, method = 'GET'): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> =>
    new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: server.port, path: p, method }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
      });
      req.on('error', reject);
      req.end();
    });
  try {
    const index = await get('/');
    assert.equal(index.status, 200);
    assert.equal(index.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(index.headers['cross-origin-opener-policy'], 'same-origin');
    assert.equal(index.headers['cross-origin-embedder-policy'], 'require-corp');
    assert.equal((await get('/app.js')).headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal((await get('/models/mnist.onebit', 'HEAD')).headers['content-type'], 'application/octet-stream');
    if (fs.existsSync(path.join(ROOT, 'dist', 'web', 'onebit-simd.wasm'))) {
      const w = await get('/dist/web/onebit-simd.wasm', 'HEAD');
      assert.equal(w.status, 200);
      assert.equal(w.headers['content-type'], 'application/wasm');
    }
    for (const p of ['/../package.json', '/models/../../package.json', '/%2e%2e/package.json', '/dist/web/..%2f..%2fpackage.json', '/a%5c..%5c..%5cpackage.json', '/%00']) {
      assert.equal((await get(p)).status, 400, p);
    }
    assert.equal((await get('/nope.txt')).status, 404);
    assert.equal((await get('/', 'POST')).status, 405);
  } finally {
    await server.close();
  }
});
