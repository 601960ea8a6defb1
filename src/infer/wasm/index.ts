/**
 * onebit's WebAssembly kernels (browser-safe: no Node built-ins; Node's loader is ./node.ts).
 * Two builds of the same C (native/wasm/, built by `node native/build-wasm.cjs`):
 * build/wasm/onebit-simd.wasm ('wasm-simd', 128-bit SIMD) and build/wasm/onebit.wasm ('wasm',
 * scalar). Both give identical results: the binary kernels are exact, the float kernels sum in the
 * same order with no fused multiply-add.
 *
 *   const k = await instantiateWasmKernels(await (await fetch(url)).arrayBuffer(), 'wasm-simd');
 *   const conv = k.prepareBinaryConv2d(w, [64, 64, 3, 3], [64, 8, 8], p, 0)!;   // once
 *   const y = conv.run(x, 1, scale, bias, thr);                                    // per call
 *
 * Contracts: the Backend kernels of core/backend.ts; prepareBinaryConv2d as the native addon's
 * (backends/native/binary.ts), bit-identical to it; channelAct as infer/kernels.ts.
 *
 * Threads: a third build, build/wasm/onebit-simd-threads.wasm, runs on a shared memory with
 * workers (pool.ts); `instantiateWasmKernelsThreaded` needs SharedArrayBuffer, i.e. a page that is
 * cross-origin isolated (`wasmThreadsSupported()` says), and gives results bit-identical to the
 * single-threaded builds.
 */
import type { Conv2dParams, Shape } from '../../core/backend.js';
import { OnebitError } from '../../core/errors.js';
import { makeWasmKernels } from './kernels.js';
import { WasmMemory } from './memory.js';
import { CONTROL_BYTES, MainPool, SHARED_MEMORY_PAGES, WORKER_STACK_BYTES, type KernelWorker, type KernelWorkerInit } from './pool.js';

export type { KernelWorker, KernelWorkerInit } from './pool.js';
export { runKernelWorker } from './pool.js';

/**
 * A binary conv whose ±1 weights were packed once: y = binaryConv2d(sign(x − thr[c]), w)·scale[co]
 * + bias[co] for x [n, C, H, W] (C, H, W as prepared); no thr: the bits are sign(x) (bit set where
 * x < thr); one float32 multiply when scale is given, then one add when bias is given. Writes into `out` when it
 * has the right length, else returns a new array. Same as backends/native/binary.ts's.
 */
export interface PreparedBinaryConv2dWasm {
  /**
   * `residual` (optional, [n, Cout, Ho, Wo] like the output) is added last: y = (D·scale + bias) +
   * residual, each step one float32 operation (bit-identical to the conv then a float32 add).
   */
  run(x: Float32Array, n: number, scale: Float32Array | null, bias: Float32Array | null, thr?: Float32Array | null, out?: Float32Array, residual?: Float32Array | null): Float32Array;
  /** `run` takes a residual. */
  readonly residual: true;
  readonly outShape: (n: number) => [number, number, number, number];
  /** Give the packed weights' WebAssembly memory back (run then throws). Optional to call. */
  dispose(): void;
}

/**
 * A float conv (zero padding) with its weights (and bias) copied into WebAssembly memory once;
 * `residual` (optional, like the output) is added after the bias: y = (conv + bias) + residual.
 */
export interface PreparedConv2dWasm {
  run(x: Float32Array, n: number, out?: Float32Array, residual?: Float32Array | null): Float32Array;
  /** `run` takes a residual. */
  readonly residual: true;
  readonly outShape: (n: number) => [number, number, number, number];
  dispose(): void;
}

export interface WasmKernels {
  readonly name: 'wasm-simd' | 'wasm';
  /** 1, or the threads (main included) of a threaded instance. */
  readonly threads: number;
  /** Stop a threaded instance's workers (the kernels keep working, single-threaded). No-op otherwise. */
  dispose(): void;
  /** Bytes of WebAssembly memory the instance holds now (it grows on demand, never shrinks). */
  memoryBytes(): number;
  /** Backend.conv2d: zero padding, stride, dilation, groups (float32 sums, no FMA). */
  conv2d(x: Float32Array, xShape: Shape, w: Float32Array, wShape: Shape, p: Conv2dParams): Float32Array;
  /** Backend.matmul. */
  matmul(a: Float32Array, b: Float32Array, m: number, k: number, n: number, transA: boolean, transB: boolean): Float32Array;
  /** Backend.bitpack (exact). */
  bitpack(x: Float32Array, rows: number, k: number): Uint32Array;
  /** Backend.binaryMatmul (exact). */
  binaryMatmul(a: Uint32Array, b: Uint32Array, m: number, n: number, k: number): Float32Array;
  /** Backend.binaryConv2d (exact): prepareBinaryConv2d + run + dispose. */
  binaryConv2d(x: Float32Array, xShape: Shape, w: Float32Array, wShape: Shape, p: Conv2dParams, padValue: number): Float32Array;
  /** Null when padValue is not 0, +1 or −1. */
  prepareBinaryConv2d(w: Float32Array, wShape: Shape, inShape: readonly [number, number, number], p: Conv2dParams, padValue: number): PreparedBinaryConv2dWasm | null;
  /** Bias (optional, per output channel) is added after the conv, in float32. */
  prepareConv2d(w: Float32Array, wShape: Shape, inShape: readonly [number, number, number], p: Conv2dParams, bias: Float32Array | null): PreparedConv2dWasm;
  /** u = (x + r) + b0[c]; v = u >= 0 ? pos[c]·u : neg[c]·u; y = v + b1[c] over [n, C, m]: bit-identical to infer/kernels.ts channelAct. */
  channelAct(x: Float32Array, residual: Float32Array | null, n: number, C: number, m: number, b0: Float32Array | null, pos: Float32Array | null, neg: Float32Array, b1: Float32Array | null, out?: Float32Array): Float32Array;
}

/** A minimal module using v128 and i8x16.popcnt (the last SIMD instruction engines added). */
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);

/** Whether this JavaScript engine runs WebAssembly SIMD (the 'wasm-simd' build). */
export function wasmSimdSupported(): boolean {
  try {
    return typeof WebAssembly === 'object' && WebAssembly.validate(SIMD_PROBE);
  } catch {
    return false;
  }
}

/** The kernels of a compiled module or its bytes (`name` must match the build: 'wasm-simd' for onebit-simd.wasm). */
export async function instantiateWasmKernels(src: BufferSource | WebAssembly.Module, name: 'wasm-simd' | 'wasm'): Promise<WasmKernels> {
  const instance = src instanceof WebAssembly.Module
    ? await WebAssembly.instantiate(src, {})
    : (await WebAssembly.instantiate(src, {})).instance;
  return makeWasmKernels(instance, name);
}

/** `instantiateWasmKernels` compiling synchronously (fine in Node; browsers limit sync compiles to small modules on the main thread). */
export function instantiateWasmKernelsSync(src: BufferSource | WebAssembly.Module, name: 'wasm-simd' | 'wasm'): WasmKernels {
  const module = src instanceof WebAssembly.Module ? src : new WebAssembly.Module(src);
  return makeWasmKernels(new WebAssembly.Instance(module, {}), name);
}

/** Whether this context can run the threaded build: SharedArrayBuffer (a cross-origin isolated page), shared WebAssembly memory, SIMD. */
export function wasmThreadsSupported(): boolean {
  try {
    if (typeof SharedArrayBuffer === 'undefined' || (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === false) return false;
    if (!wasmSimdSupported()) return false;
    return new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true }).buffer instanceof SharedArrayBuffer;
  } catch {
    return false;
  }
}

export interface ThreadedOptions {
  /** How long (ms) an idle worker spins before it sleeps (default 2): a longer spin wakes faster for the next call, a shorter one frees the core sooner. */
  spinMs?: number;
  /** Smallest kernel call worth splitting (default 32768; units: output values × packed words for the binary conv, MACs for the float conv). */
  minWork?: number;
  /** Milliseconds to wait for the workers to start (default 20000). */
  timeoutMs?: number;
}

/**
 * The kernels of the threaded build (build/wasm/onebit-simd-threads.wasm, 'wasm-simd') with
 * `threads` threads: this one and threads − 1 workers from `spawn`, e.g. in a browser
 * `() => new Worker(new URL('./onebit-kernels-worker.js', import.meta.url), { type: 'module' })`
 * (the entry src/infer/wasm/worker.ts), in Node node.ts's loader. Rejects (after stopping the
 * workers it started) when a worker fails to start; the caller then uses the single-threaded build.
 * `threads` 1 starts no worker. Call `dispose()` to stop the workers.
 */
export async function instantiateWasmKernelsThreaded(src: BufferSource | WebAssembly.Module, spawn: () => KernelWorker, threads: number, opts: ThreadedOptions = {}): Promise<WasmKernels> {
  if (!Number.isInteger(threads) || threads < 1 || threads > 64) throw new OnebitError(`instantiateWasmKernelsThreaded: expected threads, an integer in [1, 64], but got ${threads}`);
  const module = src instanceof WebAssembly.Module ? src : await WebAssembly.compile(src);
  const memory = new WebAssembly.Memory({ ...SHARED_MEMORY_PAGES, shared: true });
  const instance = await WebAssembly.instantiate(module, { env: { memory } });
  const ex = instance.exports as Record<string, unknown>;
  if (!(ex.__stack_pointer instanceof WebAssembly.Global)) throw new OnebitError('instantiateWasmKernelsThreaded: expected the threaded build (onebit-simd-threads.wasm), but got a module without __stack_pointer');
  const mem = new WasmMemory(memory, (ex.__heap_base as WebAssembly.Global).value as number);
  const control = mem.alloc(CONTROL_BYTES);
  mem.i32.fill(0, control >>> 2, (control + CONTROL_BYTES) >>> 2);
  const workers: KernelWorker[] = [];
  try {
    await Promise.all(Array.from({ length: threads - 1 }, (_, i) => {
      const stackTop = mem.alloc(WORKER_STACK_BYTES) + WORKER_STACK_BYTES;
      const w = spawn();
      workers.push(w);
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new OnebitError(`instantiateWasmKernelsThreaded: worker ${i + 1} did not start within ${opts.timeoutMs ?? 20000} ms`)), opts.timeoutMs ?? 20000);
        w.addEventListener('message', (ev) => {
          const d = ev.data as { type?: string; message?: string } | undefined;
          if (d?.type === 'onebit-kernels-ready') { clearTimeout(timer); resolve(); }
          if (d?.type === 'onebit-kernels-error') { clearTimeout(timer); reject(new OnebitError(`instantiateWasmKernelsThreaded: worker ${i + 1} failed: ${d.message}`)); }
        });
        w.addEventListener('error', (ev) => { clearTimeout(timer); reject(new OnebitError(`instantiateWasmKernelsThreaded: worker ${i + 1} failed: ${ev.message ?? 'error event'}`)); });
        const init: KernelWorkerInit = { type: 'onebit-kernels-init', module, memory, control, stackTop, index: i + 1, spinMs: opts.spinMs ?? 2 };
        w.postMessage(init);
      });
    }));
  } catch (e) {
    for (const w of workers) w.terminate();
    throw e;
  }
  const pool = new MainPool(memory, control, ex, threads, workers, opts.minWork ?? 32768);
  return makeWasmKernels(instance, 'wasm-simd', { memory, mem, pool: threads > 1 ? pool : undefined });
}
