/**
 * `npm run bench:web`: in headless Chromium (Debian's /usr/bin/chromium through playwright-core),
 * onebit's WebAssembly 1-bit engine (the `onebit/web` bundle, as an app loads it) vs TensorFlow.js's
 * WebAssembly backend running the same architecture in float (the float preset's weights exported
 * from onebit, run op by op with TF.js ops: bench/web/tfjs_graph.ts), batch 1, one page, alternating
 * rounds. TF.js's float logits are checked against onebit's own engine on the same float graph
 * first (a wrong baseline would make a wrong ratio). Prints latencies and ends with
 *   RESULT web_speedup_vs_tfjs_wasm_r20_b1=<TF.js ms ÷ onebit ms>
 *
 * (both single-threaded: the default; with --threads / --tf-threads > 1 the key gets a _<n>t_tf<m>t suffix)
 *
 *   npm run bench:web [-- --arch resnet20 --method bireal --iters 20 --rounds 15 --backend wasm-simd --threads 1 --tf-threads 1]
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import * as esbuild from 'esbuild';
import { chromium } from 'playwright-core';
import { exportModel } from '../src/deploy/export.js';
import type { TrainConfig } from '../src/train/config.js';
import { benchModel } from './models.js';
import { serveStatic } from './web/serve.js';

const o = new Command('bench-web')
  .option('--arch <name>', 'resnet20 | resnet18 | vgg-small (CIFAR input 3x32x32)', 'resnet20')
  .option('--method <name>', 'binary method preset of the 1-bit model', 'bireal')
  .option('--iters <n>', 'calls per timed block', '20')
  .option('--rounds <n>', 'alternating blocks per engine (median of the per-call means)', '15')
  .option('--backend <name>', 'onebit backend: wasm-simd | wasm | js', 'wasm-simd')
  .option('--threads <n>', 'onebit threads (>1 serves the page cross-origin isolated)', '1')
  .option('--tf-threads <n>', 'TF.js WebAssembly threads (>1 serves the page cross-origin isolated)', '1')
  .option('--chromium <path>', 'browser executable', '/usr/bin/chromium')
  .parse()
  .opts();

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const arch = o.arch as TrainConfig['arch'];
const key = { resnet20: 'r20', resnet18: 'r18', 'vgg-small': 'vggs' }[arch as string] ?? arch;
if (!fs.existsSync(path.join(root, 'dist', 'web', 'onebit.js'))) {
  throw new Error(`bench:web: expected the browser bundle dist/web/onebit.js, but got none. Run npm run build (needs clang + lld for the WebAssembly kernels).`);
}
if (!fs.existsSync(o.chromium)) throw new Error(`bench:web: expected a Chromium at ${o.chromium}, but got none. Install it (Debian: apt-get install chromium) or pass --chromium PATH.`);

const inputShape = [3, 32, 32];
const binary = exportModel(benchModel(arch, o.method), { inputShape, classes: 10 });
const float = exportModel(benchModel(arch, 'float'), { inputShape, classes: 10 });
const page = await esbuild.build({
  absWorkingDir: root, entryPoints: ['bench/web/page.ts'], bundle: true, format: 'esm', platform: 'browser', target: 'es2022',
  write: false, external: ['/dist/web/onebit.js'], logLevel: 'error', minify: true,
});
const html = '<!doctype html><meta charset="utf-8"><title>onebit bench:web</title><script type="module" src="/page.js"></script><p>bench:web</p>';
const tfThreads = Number(o.tfThreads), threads = Number(o.threads);
const server = await serveStatic({
  mounts: { '/dist/web/': path.join(root, 'dist', 'web'), '/tfjs-wasm/': path.join(root, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist') },
  files: { '/': { body: html, type: 'text/html; charset=utf-8' }, '/page.js': { body: page.outputFiles[0]!.contents }, '/binary.onebit': { body: binary }, '/float.onebit': { body: float } },
  isolated: tfThreads > 1 || threads > 1,
});
const browser = await chromium.launch({ executablePath: o.chromium, args: ['--no-sandbox'] });
try {
  const tab = await browser.newPage();
  tab.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') console.error(`[page ${m.type()}] ${m.text()}`); });
  await tab.goto(`${server.url}/`);
  await tab.waitForFunction(() => typeof (globalThis as { runBench?: unknown }).runBench === 'function', null, { timeout: 60_000 });
  const opts = { binaryUrl: '/binary.onebit', floatUrl: '/float.onebit', iters: Number(o.iters), rounds: Number(o.rounds), backend: o.backend, threads, tfThreads };
  const r = await tab.evaluate((a) => (globalThis as unknown as { runBench(x: typeof a): Promise<any> }).runBench(a), opts);
  const ratio = r.tfjs.medianMs / r.onebit.medianMs;
  console.log(`bench:web  ${arch}  batch 1  ${new Date().toISOString().slice(0, 10)}  ${r.userAgent}`);
  console.log(`check: TF.js float logits vs onebit's engine on the same float graph: max |Δ| ${r.check.maxAbsLogitDiff.toExponential(2)} (logits up to ${r.check.maxAbsLogit.toFixed(2)}), same top-1: ${r.check.sameTop1}`);
  if (!r.check.sameTop1 || r.check.maxAbsLogitDiff > 1e-3 * Math.max(1, r.check.maxAbsLogit)) throw new Error('bench:web: the TF.js baseline does not compute the float network (see the check line); not reporting a ratio.');
  console.log('| engine | backend | threads | median ms | model bytes |');
  console.log('|---|---|---:|---:|---:|');
  console.log(`| onebit 1-bit (${o.method}) | ${r.onebit.backend} | ${r.onebit.threads} | ${r.onebit.medianMs.toFixed(3)} | ${r.onebit.fileBytes} |`);
  console.log(`| TF.js ${r.tfjs.version} float | ${r.tfjs.backend} | ${r.tfjs.threads} | ${r.tfjs.medianMs.toFixed(3)} | ${r.onebit.floatBytes} (float32) |`);
  console.log(`speedup: ${ratio.toFixed(2)}x (TF.js ms ÷ onebit ms), page cross-origin isolated: ${r.crossOriginIsolated}`);
  const suffix = threads > 1 || tfThreads > 1 ? `_${threads}t_tf${tfThreads}t` : '';
  console.log(`RESULT web_speedup_vs_tfjs_wasm_${key}_b1${suffix}=${ratio.toFixed(3)}`);
} finally {
  await browser.close();
  await server.close();
}
