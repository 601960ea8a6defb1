/**
 * WebAssembly kernel microbenchmark (native/wasm, both builds) on the ResNet-20 CIFAR layers at
 * batch 1: the prepared binary conv (3x3, pad 1, thresholds, scale/bias epilogue; padValue 0 and
 * −1; the stride-2 transitions) and the float stem conv (3→16 @32x32, bias). Validates first
 * (binary conv == TypeScript reference exactly, float conv within 1e-4), then times: each figure
 * is the best call over ≥ 200 ms (the host is shared: the best call is the least disturbed one).
 * Ends with `RESULT wasm_bconv_r20_us=<Σ over 16→16@32, 32→32@16, 64→64@8, padValue 0, SIMD build>`.
 * Then, SIMD build, each binary layer with a residual (ResNet's `add` after the conv): the conv then
 * the engine's float32 add loop (infer/kernels.ts `add`) vs the residual fused into the conv's
 * epilogue; and with `--threads N` the threaded build (N threads, worker_threads) beside it.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/wasm_kernels.js [--extra file.wasm ...] [--threads N]
 *
 * `--extra` times more SIMD builds of native/wasm (e.g. compiled with -DOB_BGEMM_SIMD=0, the
 * i64.popcnt GEMM) beside the two standard ones.
 */
import { readFileSync } from 'node:fs';
import type { Conv2dParams } from '../src/core/backend.js';
import { Rng } from '../src/core/rng.js';
import { bestMs } from './timing.js';
import { binaryConv2d } from '../src/backends/ref/binary.js';
import { conv2d } from '../src/backends/ref/conv2d.js';
import { add } from '../src/infer/kernels.js';
import { instantiateWasmKernelsSync, type WasmKernels } from '../src/infer/wasm/index.js';
import { loadWasmKernelsNode, loadWasmKernelsNodeThreaded } from '../src/infer/wasm/node.js';

interface Layer { name: string; cin: number; cout: number; h: number; s: number; pad: number; float?: boolean }
const layers: Layer[] = [
  { name: 'bconv 16→16 @32x32', cin: 16, cout: 16, h: 32, s: 1, pad: 0 },
  { name: 'bconv 32→32 @16x16', cin: 32, cout: 32, h: 16, s: 1, pad: 0 },
  { name: 'bconv 64→64 @8x8', cin: 64, cout: 64, h: 8, s: 1, pad: 0 },
  { name: 'bconv 16→16 @32x32 pad −1', cin: 16, cout: 16, h: 32, s: 1, pad: -1 },
  { name: 'bconv 32→32 @16x16 pad −1', cin: 32, cout: 32, h: 16, s: 1, pad: -1 },
  { name: 'bconv 64→64 @8x8 pad −1', cin: 64, cout: 64, h: 8, s: 1, pad: -1 },
  { name: 'bconv 16→32 @32x32 s2', cin: 16, cout: 32, h: 32, s: 2, pad: 0 },
  { name: 'bconv 32→64 @16x16 s2', cin: 32, cout: 64, h: 16, s: 2, pad: 0 },
  { name: 'float stem 3→16 @32x32', cin: 3, cout: 16, h: 32, s: 1, pad: 0, float: true },
];
const SUMMED = layers.slice(0, 3);

function values(n: number, seed: number): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => r.uniform(-1, 1));
}

/** Best time in µs of `fn` over at least 20 calls and 200 ms (after 5 warm-up calls). */
const best = (fn: () => void): number => 1000 * bestMs(fn, 200, 20, 5);

/** The layer's kernel prepared on k, validated against the reference, as a timed closure. */
function setup(k: WasmKernels, l: Layer, label: string): () => void {
  const p: Conv2dParams = { stride: [l.s, l.s], padding: [1, 1], dilation: [1, 1], groups: 1 };
  const wShape = [l.cout, l.cin, 3, 3], xShape = [1, l.cin, l.h, l.h];
  const w = values(l.cout * l.cin * 9, 1), x = values(l.cin * l.h * l.h, 2);
  const bias = values(l.cout, 3);
  if (l.float) {
    const prep = k.prepareConv2d(w, wShape, [l.cin, l.h, l.h], p, bias);
    const ref = conv2d(x, xShape, w, wShape, p), P = ref.length / l.cout;
    const y = prep.run(x, 1);
    y.forEach((v, i) => {
      if (Math.abs(v - (ref[i]! + bias[Math.floor(i / P)]!)) > 1e-4) throw new Error(`${label} ${l.name}: wrong at ${i}`);
    });
    const out = new Float32Array(y.length);
    return () => prep.run(x, 1, out);
  }
  const thr = values(l.cin, 4).map((v) => v * 0.1), scale = values(l.cout, 5);
  const prep = k.prepareBinaryConv2d(w, wShape, [l.cin, l.h, l.h], p, l.pad)!;
  const t = x.map((v, i) => (v < thr[Math.floor(i / (l.h * l.h))]! ? -1 : 1));
  const ref = binaryConv2d(t, xShape, w, wShape, p, l.pad), P = ref.length / l.cout;
  const y = prep.run(x, 1, scale, bias, thr);
  y.forEach((v, i) => {
    const co = Math.floor(i / P);
    if (v !== Math.fround(Math.fround(ref[i]! * scale[co]!) + bias[co]!)) throw new Error(`${label} ${l.name}: wrong at ${i}`);
  });
  const out = new Float32Array(y.length);
  return () => prep.run(x, 1, scale, bias, thr, out);
}

const builds: [string, WasmKernels][] = [['wasm-simd', loadWasmKernelsNode('wasm-simd')], ['wasm', loadWasmKernelsNode('wasm')]];
const argv = process.argv.slice(2);
let threads = 0;
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--threads' && argv[i + 1]) threads = Number(argv[++i]);
  if (argv[i] === '--extra' && argv[i + 1]) {
    const file = argv[++i]!;
    builds.push([file.replace(/^.*\//, ''), instantiateWasmKernelsSync(readFileSync(file), 'wasm-simd')]);
  }
}

const runs = builds.map(([label, k]) => layers.map((l) => setup(k, l, label)));
console.log('validated: every build equals the reference on every layer');
console.log(`| layer (batch 1) | ${builds.map(([b]) => `${b} µs`).join(' | ')} |`);
console.log(`|---|${builds.map(() => '---:').join('|')}|`);
const us = layers.map(() => builds.map(() => Infinity));
for (let round = 0; round < 2; round++) {  // interleaved rounds: a disturbance hits no build alone
  layers.forEach((_, li) => builds.forEach((__, bi) => (us[li]![bi] = Math.min(us[li]![bi]!, best(runs[bi]![li]!)))));
}
layers.forEach((l, li) => console.log(`| ${l.name} | ${us[li]!.map((v) => v.toFixed(1)).join(' | ')} |`));
const sums = builds.map((_, bi) => SUMMED.reduce((s, l) => s + us[layers.indexOf(l)]![bi]!, 0));
console.log(`| Σ 3 stages, pad 0 | ${sums.map((v) => v.toFixed(1)).join(' | ')} |`);
console.log(`RESULT wasm_bconv_r20_us=${sums[0]!.toFixed(1)}`);

/** Layer l on k with a residual: the conv then the separate add (`false`), or fused (`true`). */
function residualRun(k: WasmKernels, l: Layer, fused: boolean): () => void {
  const p: Conv2dParams = { stride: [l.s, l.s], padding: [1, 1], dilation: [1, 1], groups: 1 };
  const w = values(l.cout * l.cin * 9, 1), x = values(l.cin * l.h * l.h, 2), bias = values(l.cout, 3);
  const thr = values(l.cin, 4).map((v) => v * 0.1), scale = values(l.cout, 5);
  const prep = k.prepareBinaryConv2d(w, [l.cout, l.cin, 3, 3], [l.cin, l.h, l.h], p, l.pad)!;
  const len = prep.outShape(1).reduce((a, b) => a * b, 1), r = values(len, 6), t = new Float32Array(len), out = new Float32Array(len);
  const sep = add(prep.run(x, 1, scale, bias, thr, t), r), fus = prep.run(x, 1, scale, bias, thr, out, r);
  if (!sep.every((v, i) => Object.is(v, fus[i]))) throw new Error(`${l.name}: fused residual differs from conv + add`);
  return fused ? () => prep.run(x, 1, scale, bias, thr, out, r) : () => add(prep.run(x, 1, scale, bias, thr, t), r, () => out);
}

const bin = layers.filter((l) => !l.float);
const simd = builds[0]![1];
const variants: [string, WasmKernels, boolean][] = [['conv + add', simd, false], ['fused residual', simd, true]];
if (threads > 1) {
  const kt = await loadWasmKernelsNodeThreaded(threads);
  variants.push([`fused, ${kt.threads} threads`, kt, true]);
}
const rruns = variants.map(([, k, fused]) => bin.map((l) => residualRun(k, l, fused)));
const rus = bin.map(() => variants.map(() => Infinity));
for (let round = 0; round < 2; round++) {
  bin.forEach((_, li) => variants.forEach((__, vi) => (rus[li]![vi] = Math.min(rus[li]![vi]!, best(rruns[vi]![li]!)))));
}
console.log(`\n| layer + residual (batch 1, wasm-simd) | ${variants.map(([v]) => `${v} µs`).join(' | ')} |`);
console.log(`|---|${variants.map(() => '---:').join('|')}|`);
bin.forEach((l, li) => console.log(`| ${l.name} | ${rus[li]!.map((v) => v.toFixed(1)).join(' | ')} |`));
for (const [, k] of variants) k.dispose();
