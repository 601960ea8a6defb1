/**
 * The page script of `npm run bench:web` (bundled by bench/web.ts with esbuild; TF.js inside, the
 * onebit browser bundle imported at run time from /dist/web/onebit.js exactly as an app would).
 * `window.runBench(opts)` times onebit's WebAssembly 1-bit engine and TF.js's WebAssembly backend
 * on the same architecture in float, batch 1, alternating rounds, and returns the samples.
 */
import * as tf from '@tensorflow/tfjs-core';
import { setThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import type * as OnebitWeb from '../../src/web/index.js';
import { compileTfjs } from './tfjs_graph.js';

interface BenchOpts {
  /** The 1-bit model and the float model (both .onebit; the float one is what TF.js runs). */
  binaryUrl: string;
  floatUrl: string;
  iters: number;
  rounds: number;
  /** onebit backend ('wasm-simd', 'wasm', 'js'). */
  backend: 'wasm-simd' | 'wasm' | 'js';
  /** onebit threads (1 = single-threaded; more needs the page cross-origin isolated). */
  threads: number;
  /** TF.js WebAssembly threads (1 = single-threaded). */
  tfThreads: number;
}

const median = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;

async function runBench(o: BenchOpts) {
  const onebit = (await import(/* @vite-ignore */ '/dist/web/onebit.js' as string)) as typeof OnebitWeb;
  const [binBytes, floatBytes] = await Promise.all([o.binaryUrl, o.floatUrl].map(async (u) => new Uint8Array(await (await fetch(u)).arrayBuffer())));
  const bin = await onebit.loadModel(binBytes!, { backend: o.backend, threads: o.threads });
  const floatGraph = onebit.decodeOnebit(floatBytes!, o.floatUrl);
  // The float graph on onebit's TypeScript engine: the reference TF.js's outputs are checked against.
  const floatRef = await onebit.loadModel(floatBytes!, { backend: 'js' });

  setWasmPaths('/tfjs-wasm/');
  if ((globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated) setThreadsCount(o.tfThreads);
  await tf.setBackend('wasm');
  await tf.ready();
  const run = compileTfjs(tf, floatGraph);
  const [C, H, W] = bin.inputShape as [number, number, number];
  const x = Float32Array.from({ length: C * H * W }, (_, i) => Math.sin(0.37 * i) * 1.5);
  const nhwc = new Float32Array(x.length);
  for (let c = 0; c < C; c++) for (let i = 0; i < H * W; i++) nhwc[i * C + c] = x[c * H * W + i]!;
  const xt = tf.tensor4d(nhwc, [1, H, W, C]);

  // Check: TF.js's float logits equal onebit's TypeScript engine on the same float graph.
  const tfLogits = run(xt).dataSync() as Float32Array;
  const refLogits = floatRef.predict(x, [1, C, H, W]);
  let maxDiff = 0, scale = 0;
  for (let i = 0; i < refLogits.length; i++) { maxDiff = Math.max(maxDiff, Math.abs(refLogits[i]! - tfLogits[i]!)); scale = Math.max(scale, Math.abs(refLogits[i]!)); }

  // Timed in blocks of `iters` calls (performance.now() is coarsened to 0.1 ms on pages that are not
  // cross-origin isolated, too coarse for one call): per-call mean of each block, median over blocks.
  const onebitTimes: number[] = [], tfTimes: number[] = [];
  const block = (f: () => void) => { const t0 = performance.now(); for (let i = 0; i < o.iters; i++) f(); return (performance.now() - t0) / o.iters; };
  const stepOnebit = () => { bin.predict(x, [1, C, H, W]); };
  const stepTf = () => { const y = run(xt); y.dataSync(); y.dispose(); };
  for (let i = 0; i < 5; i++) { stepOnebit(); stepTf(); } // warm-up (JIT, XNNPACK set-up)
  for (let r = 0; r < o.rounds; r++) {
    onebitTimes.push(block(stepOnebit));
    tfTimes.push(block(stepTf));
  }
  return {
    onebit: { backend: bin.backend.name, threads: bin.backend.threads, medianMs: median(onebitTimes), fileBytes: bin.size.fileBytes, floatBytes: bin.size.floatBytes },
    tfjs: { backend: tf.getBackend(), threads: o.tfThreads, medianMs: median(tfTimes), version: tf.version_core },
    check: { maxAbsLogitDiff: maxDiff, maxAbsLogit: scale, sameTop1: refLogits.indexOf(Math.max(...refLogits)) === tfLogits.indexOf(Math.max(...tfLogits)) },
    crossOriginIsolated: (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true,
    userAgent: navigator.userAgent,
  };
}

(globalThis as unknown as { runBench: typeof runBench }).runBench = runBench;
