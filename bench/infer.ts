/**
 * `npm run bench:infer`: inference latency of one architecture, same input, in one script:
 *   - onebit's 1-bit engine (src/infer, the exported `.onebit` model on the active backend),
 *   - ONNX Runtime (onnxruntime-node, CPU) running the same network in float (the ONNX export of
 *     the float preset: real weights and ReLU-free float convs — what a user would deploy without
 *     a binary engine),
 *   - onebit's own float path (the training graph in eval mode, no tape),
 * at batch 1 and 64, with 1 and 2 threads, alternating rounds; prints median latencies, ratios and
 * model sizes (float32 weights vs `.onebit` bytes). RESULT lines at the end:
 *   RESULT infer_speedup_vs_ort_r18_b1_2t=<ORT ms ÷ onebit ms>      (ResNet-18 CIFAR, batch 1, 2 threads)
 *   RESULT size_ratio_float_over_packed_r18=<float32 weight bytes ÷ .onebit bytes>
 *
 *   npm run bench:infer [-- --arch resnet18 --method reactnet --iters 30 --batches 1,64 --threads 1,2]
 */
import { Command } from 'commander';
import * as ort from 'onnxruntime-node';
import { noGrad, Tensor } from '../src/index.js';
import { loadAddon } from '../src/backends/native/addon.js';
import { backend } from '../src/core/tensor.js';
import { Rng } from '../src/core/rng.js';
import { benchModel } from './models.js';
import type { Module } from '../src/nn/module.js';
import { exportModel } from '../src/deploy/export.js';
import { exportOnnx } from '../src/deploy/onnx.js';
import { loadModelSync } from '../src/infer/engine.js';
import type { TrainConfig } from '../src/train/config.js';

const o = new Command('bench-infer')
  .option('--arch <name>', 'resnet18 | resnet20 | vgg-small (CIFAR input 3x32x32)', 'resnet18')
  .option('--method <name>', 'binary method preset of the 1-bit model', 'reactnet')
  .option('--iters <n>', 'timed calls per measurement (batch 1; fewer for large batches)', '30')
  .option('--batches <list>', 'batch sizes', '1,64')
  .option('--threads <list>', 'thread counts', '1,2')
  .option('--rounds <n>', 'alternating rounds (median over all)', '3')
  .option('--pause-ms <n>', 'idle pause before each engine\'s timed block', '0')
  .parse()
  .opts();
const arch = o.arch as TrainConfig['arch'];
const batches = String(o.batches).split(',').map(Number);
const threadList = String(o.threads).split(',').map(Number);
const iters = Number(o.iters), rounds = Number(o.rounds);

const build = (method: string): Module => benchModel(arch, method);

const inShape = [3, 32, 32];
const binModel = build(o.method);
const floatModel = build('float');
const onebitBytes = exportModel(binModel, { inputShape: inShape, classes: 10 });
const engine = loadModelSync(onebitBytes);
const floatBytes = floatModel.parameters().reduce((n, p) => n + 4 * p.size, 0);
const onnx = exportOnnx(floatModel, { inputShape: [1, ...inShape] });

const median = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
function time(f: () => void, n: number): number[] {
  for (let i = 0; i < 5; i++) f(); // warm-up: caches, clocks and thread pools back after the other engine ran
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    f();
    out.push(performance.now() - t0);
  }
  return out;
}

/** With --pause-ms: sleep that long without spinning before each engine's block (the other runtimes' thread pools go idle). */
const pauseMs = Number(o.pauseMs);
const quiet = (): void => { if (pauseMs > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, pauseMs); };

console.log(`bench:infer  ${arch}  1-bit method=${o.method}  backend ${backend().name}  ${new Date().toISOString().slice(0, 10)}`);
console.log(`model sizes: float32 weights ${(floatBytes / 1e6).toFixed(2)} MB, .onebit ${(onebitBytes.length / 1e6).toFixed(3)} MB (${(floatBytes / onebitBytes.length).toFixed(1)}x smaller), ONNX float ${(onnx.length / 1e6).toFixed(2)} MB`);
const r = new Rng(7);
const results: Record<string, number> = {};
console.log('\n| batch | threads | onebit 1-bit ms | ORT float ms | onebit float ms | ORT ÷ 1-bit | float ÷ 1-bit |');
console.log('|---:|---:|---:|---:|---:|---:|---:|');
for (const t of threadList) {
  loadAddon()?.setThreads(t);
  const sess = await ort.InferenceSession.create(onnx, { intraOpNumThreads: t, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' });
  const inName = sess.inputNames[0]!;
  for (const b of batches) {
    const x = Float32Array.from({ length: b * 3 * 32 * 32 }, () => r.normal());
    const n = Math.max(3, Math.round(iters / Math.sqrt(b)));
    const feeds = { [inName]: new ort.Tensor('float32', x, [b, ...inShape]) };
    const ob: number[] = [], ox: number[] = [], of: number[] = [];
    for (let k = 0; k < rounds; k++) {
      // --pause-ms: each engine starts after a quiet pause (ONNX Runtime's and OpenMP's idle threads
      // spin for tens of ms after a run); off by default — a pause also lets caches and clocks cool.
      quiet();
      ob.push(...time(() => engine.predict(x, [b, ...inShape]), n));
      quiet();
      const t0 = performance.now();
      for (let i = 0; i < 5; i++) await sess.run(feeds); // warm-up, as time() does
      const ortTimes: number[] = [];
      for (let i = 0; i < n; i++) {
        const s = performance.now();
        await sess.run(feeds);
        ortTimes.push(performance.now() - s);
      }
      void t0;
      ox.push(...ortTimes);
      quiet();
      of.push(...time(() => noGrad(() => floatModel.forward(new Tensor(x, [b, ...inShape]))), Math.max(2, Math.round(n / 4))));
    }
    const mb = median(ob), mx = median(ox), mf = median(of);
    results[`b${b}_${t}t`] = mx / mb;
    console.log(`| ${b} | ${t} | ${mb.toFixed(2)} | ${mx.toFixed(2)} | ${mf.toFixed(2)} | ${(mx / mb).toFixed(2)} | ${(mf / mb).toFixed(2)} |`);
  }
  await sess.release();
}
const key = arch === 'resnet18' ? 'r18' : arch === 'resnet20' ? 'r20' : arch.replace(/[^a-z0-9]/g, '');
if (results['b1_2t'] !== undefined) console.log(`RESULT infer_speedup_vs_ort_${key}_b1_2t=${results['b1_2t'].toFixed(3)}`);
console.log(`RESULT size_ratio_float_over_packed_${key}=${(floatBytes / onebitBytes.length).toFixed(2)}`);
