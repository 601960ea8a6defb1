import { OnebitError } from '../../core/errors.js';

/**
 * Multi-threading of the WebAssembly kernels (browser-safe: no Node built-ins). The threaded build
 * (build/wasm/onebit-simd-threads.wasm) imports one shared WebAssembly.Memory; the main thread and
 * N − 1 workers (Web Workers, or worker_threads in Node) each instantiate the module on it, every
 * instance with its own stack. A parallel kernel call is a job: the main thread writes the export
 * to call and its arguments into a control block in the shared memory and bumps a generation
 * counter; then every thread (the main one included) claims chunks of the job's work items
 * [0, total) with an atomic compare-exchange and calls the export on [begin, end). The main thread
 * never sleeps: it works until no chunk is left, then spins only for the chunks other threads are
 * running. Workers spin on the generation for `spinMs` after a job (the next layer's job comes
 * within microseconds), then sleep in Atomics.wait until notified. Work items write disjoint
 * outputs with the same arithmetic as the single-threaded kernel, so results are bit-identical.
 */

/** The exports a job can call (index = the job's fn); each takes [begin, end) as its last two arguments. */
export const POOL_FNS = ['ob_bconv_gemm', 'ob_conv_run', 'ob_bconv_pack'] as const;
export const POOL_BGEMM = 0, POOL_CONV = 1, POOL_BPACK = 2;

/** The control block: int32 slots. */
const GEN = 0, CLAIM = 1, DONE = 2, SLEEPERS = 3, FN = 4, CLAIMS = 5, CHUNK = 6, TOTAL = 7, SCRATCH_ARG = 8, SCRATCH_STRIDE = 9,
  NARGS = 10, STOP = 11, ERROR = 12, ARGS = 16, MAX_ARGS = 16;
/** Bytes of the control block. */
export const CONTROL_BYTES = 4 * (ARGS + MAX_ARGS);
/** Stack bytes per worker instance. */
export const WORKER_STACK_BYTES = 65536;
/** Pages of the shared memory: initial (≥ the build's --initial-memory) and maximum (= its --max-memory). */
export const SHARED_MEMORY_PAGES = { initial: 32, maximum: 16384 } as const;

/** What a parallel kernel call needs from the pool (kernels.ts). */
export interface KernelPool {
  /** Threads including the main one. */
  readonly threads: number;
  /** Smallest work (kernel-specific units: output values × packed words, or MACs) worth splitting. */
  readonly minWork: number;
  /**
   * Run POOL_FNS[fn](...args, begin, end) over the items [0, total) in chunks of `chunk`; the
   * thread t (0 = main) adds t·scratchStride to args[scratchArg] (scratchArg −1: none).
   */
  run(fn: number, args: readonly number[], scratchArg: number, scratchStride: number, total: number, chunk: number): void;
  /** Stop the workers (the pool then runs every job on the main thread). */
  dispose(): void;
}

/** A worker as the pool uses it: a browser Worker (module type) fits, Node's is wrapped (node.ts). */
export interface KernelWorker {
  postMessage(message: unknown): void;
  addEventListener(type: 'message' | 'error', listener: (ev: { data?: unknown; message?: string }) => void): void;
  terminate(): void;
}

/** The first message to a worker (the worker entry hands it to `runKernelWorker`). */
export interface KernelWorkerInit {
  type: 'onebit-kernels-init';
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  /** Byte offset of the control block. */
  control: number;
  /** This worker's stack top (byte offset) and thread index (≥ 1). */
  stackTop: number;
  index: number;
  spinMs: number;
}

type Fn = (...a: number[]) => void;

/** Claim and run chunks of the current job `gen` as thread `tid` until none is left. */
function work(c: Int32Array, fns: readonly Fn[], gen: number, tid: number, args: number[]): void {
  const claims = c[CLAIMS]!, chunk = c[CHUNK]!, total = c[TOTAL]!, fn = fns[c[FN]!]!, sa = c[SCRATCH_ARG]!;
  const nargs = c[NARGS]!;
  args.length = nargs + 2;
  for (let i = 0; i < nargs; i++) args[i] = c[ARGS + i]!;
  if (sa >= 0) args[sa]! += tid * c[SCRATCH_STRIDE]!;
  for (;;) {
    const w = Atomics.load(c, CLAIM);
    if (w >>> 16 !== gen) return;
    const i = w & 0xffff;
    if (i >= claims) return;
    if (Atomics.compareExchange(c, CLAIM, w, w + 1) !== w) continue;
    args[nargs] = i * chunk;
    args[nargs + 1] = Math.min(total, (i + 1) * chunk);
    try {
      fn(...args);
    } catch {
      Atomics.store(c, ERROR, 1);
    }
    Atomics.add(c, DONE, 1);
  }
}

/** The main thread's side: the control block at `control` of `memory`, and the main instance's exports. */
export class MainPool implements KernelPool {
  private readonly c: Int32Array;
  private readonly fns: Fn[];
  private gen = 0;
  private readonly args: number[] = [];
  private live = true;

  constructor(memory: WebAssembly.Memory, control: number, exports: Record<string, unknown>, readonly threads: number,
    private readonly workers: KernelWorker[], readonly minWork: number) {
    // A shared memory's buffer stays valid (at its old length) when it grows: this view is for good.
    this.c = new Int32Array(memory.buffer, control, CONTROL_BYTES / 4);
    this.fns = POOL_FNS.map((f) => exports[f] as Fn);
  }

  run(fn: number, args: readonly number[], scratchArg: number, scratchStride: number, total: number, chunk: number): void {
    const c = this.c;
    chunk = Math.max(chunk, Math.ceil(total / 0xffff), 1);
    const claims = Math.ceil(total / chunk);
    if (args.length > MAX_ARGS) throw new OnebitError(`kernel pool: at most ${MAX_ARGS} arguments`);
    c[FN] = fn;
    c[CLAIMS] = claims;
    c[CHUNK] = chunk;
    c[TOTAL] = total;
    c[SCRATCH_ARG] = scratchArg;
    c[SCRATCH_STRIDE] = scratchStride;
    c[NARGS] = args.length;
    for (let i = 0; i < args.length; i++) c[ARGS + i] = args[i]!;
    Atomics.store(c, DONE, 0);
    Atomics.store(c, ERROR, 0);
    const gen = (this.gen = this.live ? (this.gen % 0x7fff) + 1 : this.gen);
    Atomics.store(c, CLAIM, gen << 16);
    if (this.live) {
      Atomics.store(c, GEN, gen);
      if (Atomics.load(c, SLEEPERS) > 0) Atomics.notify(c, GEN);
    }
    work(c, this.fns, gen, 0, this.args);
    // Only chunks other threads are running are left: spin until they are done.
    let spins = 0, t0 = 0;
    while (Atomics.load(c, DONE) < claims) {
      if (++spins % 65536 === 0) {
        const now = performance.now();
        if (!t0) t0 = now;
        else if (now - t0 > 30_000) throw new OnebitError('kernel pool: a worker stopped in the middle of a job (30 s without progress)');
      }
    }
    // Close the job: a worker that read this generation late claims nothing (the next job's
    // arguments may be half written by then).
    Atomics.store(c, CLAIM, (gen << 16) | 0xffff);
    if (Atomics.load(c, ERROR)) throw new OnebitError('kernel pool: a WebAssembly kernel failed in a worker');
  }

  dispose(): void {
    if (!this.live) return;
    this.live = false;
    const c = this.c;
    Atomics.store(c, STOP, 1);
    Atomics.store(c, GEN, (this.gen % 0x7fff) + 1);
    Atomics.notify(c, GEN);
    for (const w of this.workers) w.terminate();
  }
}

/**
 * A worker's side: instantiate the module on the shared memory with its own stack, post
 * 'onebit-kernels-ready' (or 'onebit-kernels-error'), then serve jobs until the pool stops. Blocks
 * the worker's event loop for good (it only runs jobs), so call it from the init message handler.
 */
export async function runKernelWorker(init: KernelWorkerInit, post: (message: unknown) => void): Promise<void> {
  let c: Int32Array, fns: Fn[];
  try {
    const inst = await WebAssembly.instantiate(init.module, { env: { memory: init.memory } });
    const ex = inst.exports as Record<string, unknown>;
    (ex.__stack_pointer as WebAssembly.Global).value = init.stackTop;
    c = new Int32Array(init.memory.buffer, init.control, CONTROL_BYTES / 4);
    fns = POOL_FNS.map((f) => ex[f] as Fn);
  } catch (e) {
    post({ type: 'onebit-kernels-error', message: (e as Error).message });
    return;
  }
  post({ type: 'onebit-kernels-ready', index: init.index });
  const args: number[] = [];
  let seen = Atomics.load(c, GEN);
  for (;;) {
    let gen = Atomics.load(c, GEN);
    if (gen === seen) {
      const until = performance.now() + init.spinMs;
      for (let i = 1; gen === seen; i++) {
        if (i % 1024 === 0 && performance.now() > until) break;
        gen = Atomics.load(c, GEN);
      }
      if (gen === seen) {
        Atomics.add(c, SLEEPERS, 1);
        Atomics.wait(c, GEN, seen);
        Atomics.sub(c, SLEEPERS, 1);
        continue;
      }
    }
    seen = gen;
    if (Atomics.load(c, STOP)) return;
    work(c, fns, gen, init.index, args);
  }
}
