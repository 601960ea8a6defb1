import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Conv2dParams } from '../src/core/backend.js';
import { OnebitError } from '../src/core/errors.js';
import { Rng } from '../src/core/rng.js';
import { manualSeed } from '../src/index.js';
import { exportModel } from '../src/deploy/export.js';
import { decodeOnebit } from '../src/deploy/format.js';
import { InferenceModel } from '../src/infer/model.js';
import { wasmInferBackend } from '../src/infer/web_backend.js';
import { instantiateWasmKernelsThreaded, wasmThreadsSupported, type KernelWorker, type WasmKernels } from '../src/infer/wasm/index.js';
import { loadWasmKernelsNode, loadWasmKernelsNodeThreaded, wasmKernelsPath } from '../src/infer/wasm/node.js';
import { buildModel } from '../src/models/index.js';
import type { TrainConfig } from '../src/train/config.js';

/*
 * The threaded WebAssembly kernels (build/wasm/onebit-simd-threads.wasm on a shared memory, 3
 * threads: this one and 2 worker_threads, splitting every call: minWork 0) give results
 * bit-identical to the single-threaded SIMD build: prepared binary convs (pad values, thresholds,
 * scale/bias, residual, batch 1 and 3, groups), prepared float convs (residual), the unsplit
 * kernels, after the shared memory grows, a whole ResNet-20 forward through the engine; and the
 * pool's lifecycle (threads = 1, dispose, a worker that fails to start).
 */

let why: string | null = null;
try {
  wasmKernelsPath('wasm-simd-threads');
  if (!wasmThreadsSupported()) why = 'this Node has no shared WebAssembly memory';
} catch (e) {
  if (process.env.ONEBIT_REQUIRE_WASM === '1') throw e;
  why = 'onebit-simd-threads.wasm is not built (node native/build-wasm.cjs needs clang + lld)';
}

let single: WasmKernels, threaded: WasmKernels;
before(async () => {
  if (why) return;
  single = loadWasmKernelsNode('wasm-simd');
  threaded = await loadWasmKernelsNodeThreaded(3, { minWork: 0 });
});
after(() => threaded?.dispose());

function t(name: string, body: () => void | Promise<void>): void {
  test(name, async (ctx) => {
    if (why) return ctx.skip(why);
    await body();
  });
}

function values(n: number, seed: number): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, (_, i) => (i % 11 === 3 ? 0 : i % 13 === 5 ? -0 : r.uniform(-1, 1)));
}

function assertBits(got: Float32Array, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  const g = new Uint32Array(got.buffer, got.byteOffset, got.length), w = new Uint32Array(want.buffer, want.byteOffset, want.length);
  for (let i = 0; i < g.length; i++) {
    if (g[i] !== w[i] && !(Number.isNaN(got[i]) && Number.isNaN(want[i]))) assert.fail(`${what}[${i}]: ${got[i]} vs ${want[i]}`);
  }
}

interface Case { C: number; H: number; W: number; Cout: number; kh: number; kw: number; p: Conv2dParams }
const cp = (stride: [number, number], padding: [number, number], dilation: [number, number] = [1, 1], groups = 1): Conv2dParams => ({ stride, padding, dilation, groups });
const CASES: Case[] = [
  { C: 1, H: 5, W: 7, Cout: 1, kh: 3, kw: 3, p: cp([1, 1], [1, 1]) },
  { C: 31, H: 7, W: 6, Cout: 7, kh: 3, kw: 3, p: cp([2, 2], [1, 0]) },
  { C: 33, H: 6, W: 5, Cout: 9, kh: 3, kw: 3, p: cp([1, 1], [2, 2], [2, 2]) },
  { C: 34, H: 6, W: 7, Cout: 6, kh: 3, kw: 3, p: cp([1, 1], [1, 1], [1, 1], 2) },
  { C: 16, H: 32, W: 32, Cout: 16, kh: 3, kw: 3, p: cp([1, 1], [1, 1]) },
  { C: 16, H: 17, W: 19, Cout: 32, kh: 3, kw: 3, p: cp([2, 2], [1, 1]) },
  { C: 64, H: 8, W: 8, Cout: 64, kh: 3, kw: 3, p: cp([1, 1], [1, 1]) },
  { C: 64, H: 8, W: 8, Cout: 30, kh: 3, kw: 3, p: cp([1, 1], [1, 1], [1, 1], 2) },
  { C: 3, H: 9, W: 11, Cout: 5, kh: 5, kw: 3, p: cp([1, 1], [2, 1]) },
];
const wShapeOf = (c: Case): number[] => [c.Cout, c.C / c.p.groups, c.kh, c.kw];
const wLen = (c: Case): number => wShapeOf(c).reduce((a, b) => a * b, 1);
const tag = (c: Case): string => `C${c.C} ${c.H}x${c.W} → ${c.Cout} k${c.kh}x${c.kw} s${c.p.stride} p${c.p.padding} d${c.p.dilation} g${c.p.groups}`;

t('threaded instance: 3 threads', () => {
  assert.equal(threaded.threads, 3);
  assert.equal(threaded.name, 'wasm-simd');
});

t('prepared binary conv: threaded bit-identical to single-threaded (pads, thr, scale/bias, residual, n = 1, 3)', () => {
  let seed = 1;
  for (const c of CASES) {
    const w = values(wLen(c), seed++), wShape = wShapeOf(c), inShape = [c.C, c.H, c.W] as const;
    for (const pad of [0, -1, 1]) {
      const a = single.prepareBinaryConv2d(w, wShape, inShape, c.p, pad)!, b = threaded.prepareBinaryConv2d(w, wShape, inShape, c.p, pad)!;
      for (const n of [1, 3]) {
        for (const variant of [0, 1, 2, 3]) {
          const x = values(n * c.C * c.H * c.W, seed++);
          const thr = variant & 1 ? values(c.C, seed++).map((v) => v * 0.5) : null;
          const scale = variant >= 2 ? values(c.Cout, seed++).map((v) => v * 3 + 0.1) : null;
          const bias = variant & 1 ? values(c.Cout, seed++) : null;
          const r = variant >= 1 ? values(a.outShape(n).reduce((p, q) => p * q, 1), seed++).map((v) => v * 50) : null;
          const what = `${tag(c)} pad ${pad} n ${n} variant ${variant}`;
          const want = a.run(x, n, scale, bias, thr, undefined, r);
          assertBits(b.run(x, n, scale, bias, thr, undefined, r), want, what);
          const out = new Float32Array(want.length);
          assert.equal(b.run(x, n, scale, bias, thr, out, r), out);
          assertBits(out, want, `${what} (out)`);
        }
      }
      a.dispose();
      b.dispose();
    }
  }
});

t('prepared float conv: threaded bit-identical to single-threaded (bias, residual, n = 1, 3)', () => {
  let seed = 100;
  for (const c of CASES) {
    const w = values(wLen(c), seed++), wShape = wShapeOf(c), inShape = [c.C, c.H, c.W] as const, bias = values(c.Cout, seed++);
    const a = single.prepareConv2d(w, wShape, inShape, c.p, bias), b = threaded.prepareConv2d(w, wShape, inShape, c.p, bias);
    for (const n of [1, 3]) {
      const x = values(n * c.C * c.H * c.W, seed++);
      const want = a.run(x, n);
      assertBits(b.run(x, n), want, `${tag(c)} n ${n}`);
      const r = values(want.length, seed++);
      assertBits(b.run(x, n, undefined, r), a.run(x, n, undefined, r), `${tag(c)} n ${n} residual`);
      const xs = [n, c.C, c.H, c.W];
      assertBits(threaded.conv2d(x, xs, w, wShape, c.p), single.conv2d(x, xs, w, wShape, c.p), `${tag(c)} n ${n} unprepared`);
    }
    a.dispose();
    b.dispose();
  }
});

t('the other kernels on the threaded instance equal the single-threaded ones', () => {
  const x = values(3 * 70, 7), a = values(9 * 33, 8), b = values(33 * 5, 9);
  assert.deepEqual(threaded.bitpack(x, 3, 70), single.bitpack(x, 3, 70));
  const pa = single.bitpack(values(5 * 100, 10), 5, 100), pb = single.bitpack(values(4 * 100, 11), 4, 100);
  assertBits(threaded.binaryMatmul(pa, pb, 5, 4, 100), single.binaryMatmul(pa, pb, 5, 4, 100), 'binaryMatmul');
  assertBits(threaded.matmul(a, b, 9, 33, 5, false, false), single.matmul(a, b, 9, 33, 5, false, false), 'matmul');
  const neg = values(6, 12), r = values(6 * 40, 13), xs = values(6 * 40, 14);
  assertBits(threaded.channelAct(xs, r, 1, 6, 40, null, null, neg, null), single.channelAct(xs, r, 1, 6, 40, null, null, neg, null), 'channelAct');
  const w = values(9 * 8 * 100, 15), bits = threaded.bitpack(w, 1, w.length);
  assert.equal(bits.length, Math.ceil(w.length / 32));
});

t('after the shared memory grows: prepared convs still right, big batches split over the workers', () => {
  const c = CASES[4]!, w = values(wLen(c), 20), wShape = wShapeOf(c), inShape = [c.C, c.H, c.W] as const;
  const a = single.prepareBinaryConv2d(w, wShape, inShape, c.p, -1)!, b = threaded.prepareBinaryConv2d(w, wShape, inShape, c.p, -1)!;
  const fa = single.prepareConv2d(w, wShape, inShape, c.p, null), fb = threaded.prepareConv2d(w, wShape, inShape, c.p, null);
  const before = threaded.memoryBytes();
  const big = 8_000_000, neg = Float32Array.of(0.5);
  threaded.channelAct(values(big, 21), null, 1, 1, big, null, null, neg, null);
  assert.ok(threaded.memoryBytes() > before, 'the memory grew');
  for (const n of [1, 40]) {
    const x = values(n * c.C * c.H * c.W, 22 + n), r = values(n * c.Cout * c.H * c.W, 23 + n);
    assertBits(b.run(x, n, null, null, null, undefined, r), a.run(x, n, null, null, null, undefined, r), `binary n ${n}`);
    assertBits(fb.run(x, n), fa.run(x, n), `float n ${n}`);
  }
  for (const p of [a, b, fa, fb]) p.dispose();
});

/** A CIFAR-10 ResNet-20 (Bi-Real preset, random weights and BN statistics) as a validated graph. */
function resnet20Graph() {
  manualSeed(0);
  const m = buildModel({ dataset: 'cifar10', arch: 'resnet20', method: 'bireal', hidden: 0 } as TrainConfig);
  const r = new Rng(1);
  for (const [name, tensor] of m.stateDict()) {
    const d = tensor.f32();
    if (/running_?var|runningVar/i.test(name)) for (let i = 0; i < d.length; i++) d[i] = 0.5 + r.next();
    else if (/running_?mean|runningMean/i.test(name)) for (let i = 0; i < d.length; i++) d[i] = 0.2 * r.normal();
  }
  m.eval();
  return decodeOnebit(exportModel(m, { inputShape: [3, 32, 32], classes: 10 }));
}

t('a ResNet-20 forward on the threaded kernels equals the single-threaded one bit for bit (batch 1 and 3)', () => {
  const g = resnet20Graph();
  const a = new InferenceModel(g, 'r20', wasmInferBackend(single)), b = new InferenceModel(g, 'r20', wasmInferBackend(threaded));
  assert.equal(b.backend.threads, 3);
  for (const n of [1, 3]) {
    const x = values(n * 3 * 32 * 32, 30 + n);
    for (let i = 0; i < 2; i++) assertBits(b.predict(x, [n, 3, 32, 32]), a.predict(x, [n, 3, 32, 32]), `batch ${n} call ${i}`);
  }
});

t('threads = 1 starts no worker; dispose stops the workers and the kernels keep working', async () => {
  const one = await loadWasmKernelsNodeThreaded(1);
  assert.equal(one.threads, 1);
  const two = await loadWasmKernelsNodeThreaded(2, { minWork: 0, spinMs: 0 });
  const c = CASES[6]!, w = values(wLen(c), 40), x = values(c.C * c.H * c.W, 41), inShape = [c.C, c.H, c.W] as const;
  const want = single.prepareBinaryConv2d(w, wShapeOf(c), inShape, c.p, 0)!.run(x, 1, null, null);
  for (const k of [one, two]) {
    const p = k.prepareBinaryConv2d(w, wShapeOf(c), inShape, c.p, 0)!;
    assertBits(p.run(x, 1, null, null), want, `threads ${k.threads}`);
    await new Promise((res) => setTimeout(res, 20)); // the worker went to sleep (spinMs 0): a notify wakes it
    assertBits(p.run(x, 1, null, null), want, `threads ${k.threads} after a pause`);
    k.dispose();
    assertBits(p.run(x, 1, null, null), want, `threads ${k.threads} after dispose`);
    k.dispose();
  }
});

t('a worker that fails to start rejects with an OnebitError', async () => {
  const { readFileSync } = await import('node:fs');
  let terminated = 0;
  const spawn = (): KernelWorker => {
    const listeners: ((ev: { data?: unknown }) => void)[] = [];
    return {
      postMessage: () => setTimeout(() => listeners.forEach((l) => l({ data: { type: 'onebit-kernels-error', message: 'no luck' } })), 1),
      addEventListener: (type, l) => { if (type === 'message') listeners.push(l); },
      terminate: () => { terminated++; },
    };
  };
  await assert.rejects(instantiateWasmKernelsThreaded(readFileSync(wasmKernelsPath('wasm-simd-threads')), spawn, 3), (e: unknown) => e instanceof OnebitError && /no luck/.test((e as Error).message));
  assert.equal(terminated, 2);
  await assert.rejects(instantiateWasmKernelsThreaded(readFileSync(wasmKernelsPath('wasm-simd')), spawn, 2), OnebitError);
});
