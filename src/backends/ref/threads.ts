import * as os from 'node:os';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { setParallelMatmulNT } from './matmul.js';

/**
 * A small thread pool for the reference backend's GEMM, so the pure-TypeScript path uses every core.
 * The call stays synchronous: operands are copied into one SharedArrayBuffer, each worker is woken
 * through Atomics.notify with a row range, the calling thread computes its own range, then blocks on
 * Atomics.wait until every worker has signalled. Rows are split in multiples of 4 and every output
 * element is computed the same way whatever the split, so results are bit-identical for any thread
 * count (tested). Written here because no npm package offers a synchronous shared-memory GEMM pool.
 *
 * ONEBIT_THREADS sets the thread count (default: the number of CPUs); 1 disables the pool. Products
 * under MIN_WORK multiply-adds stay on the calling thread (waking a worker costs tens of µs).
 */
const MIN_WORK = 1 << 20;

// ctrl layout (Int32 slots) per worker
const SEQ = 0, DONE = 1, M_ = 2, K_ = 3, N_ = 4, I0 = 5, I1 = 6, AOFF = 7, BOFF = 8, COFF = 9, GEN = 10, ERR = 11;
const CTRL_SLOTS = 12;

interface PoolWorker {
  worker: Worker;
  ctrl: Int32Array;
  port: MessagePort;
}

interface Pool {
  workers: PoolWorker[];
  shared: Float32Array;
  gen: number;
}

let pool: Pool | null | undefined;
let parallelCalls = 0;

/** Pool size (1 = no pool) and how many GEMMs ran split over threads so far. */
export function threadStats(): { threads: number; parallelCalls: number } {
  return { threads: pool ? pool.workers.length + 1 : 1, parallelCalls };
}

/** Threads the reference backend uses: ONEBIT_THREADS, else the CPU count. */
export function threadCount(): number {
  const env = process.env.ONEBIT_THREADS;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (Number.isInteger(n) && n >= 1) return n;
    process.emitWarning(`ONEBIT_THREADS: expected a positive integer, but got "${env}". Using 1 thread.`);
    return 1;
  }
  return Math.max(1, typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length);
}

function getPool(): Pool | null {
  if (pool !== undefined) return pool;
  const n = threadCount();
  if (n <= 1) return (pool = null);
  try {
    const workers: PoolWorker[] = [];
    for (let i = 0; i < n - 1; i++) {
      const ctrl = new Int32Array(new SharedArrayBuffer(CTRL_SLOTS * 4));
      const { port1, port2 } = new MessageChannel();
      const worker = new Worker(new URL('./threads_worker.js', import.meta.url), {
        workerData: { ctrl: ctrl.buffer, port: port2 },
        transferList: [port2],
      });
      worker.unref();
      port1.unref();
      workers.push({ worker, ctrl, port: port1 });
    }
    pool = { workers, shared: new Float32Array(0), gen: 0 };
  } catch {
    pool = null; // no worker support: stay single-threaded
  }
  return pool;
}

function ensureCapacity(p: Pool, floats: number): void {
  if (p.shared.length >= floats) return;
  p.shared = new Float32Array(new SharedArrayBuffer(Math.ceil(floats * 1.25) * 4));
  p.gen++;
  for (const w of p.workers) w.port.postMessage({ shared: p.shared.buffer, gen: p.gen });
}

/**
 * C = A·Bᵀ (see matmulNTRows) over the pool, or null when the product is too small or there is
 * no pool (the caller then computes it on this thread).
 */
export function parallelMatmulNT(
  A: Float32Array, B: Float32Array, M: number, K: number, N: number,
  rows: (A: Float32Array, B: Float32Array, M: number, K: number, N: number, i0: number, i1: number, C: Float32Array) => Float32Array,
): Float32Array | null {
  if (M * N * K < MIN_WORK || M < 8) return null;
  const p = getPool();
  if (!p) return null;
  parallelCalls++;
  const aOff = 0, bOff = M * K, cOff = bOff + N * K;
  ensureCapacity(p, cOff + M * N);
  const sh = p.shared;
  sh.set(A, aOff);
  sh.set(B, bOff);
  const As = sh.subarray(aOff, bOff), Bs = sh.subarray(bOff, cOff), Cs = sh.subarray(cOff, cOff + M * N);
  const parts = p.workers.length + 1;
  const chunk = Math.ceil(M / parts / 4) * 4;
  const jobs: { w: PoolWorker; i0: number; i1: number; seq: number }[] = [];
  p.workers.forEach((w, t) => {
    const i0 = (t + 1) * chunk, i1 = Math.min(M, i0 + chunk);
    if (i0 >= i1) return;
    const c = w.ctrl;
    c[M_] = M; c[K_] = K; c[N_] = N; c[I0] = i0; c[I1] = i1; c[AOFF] = aOff; c[BOFF] = bOff; c[COFF] = cOff; c[GEN] = p.gen;
    const seq = Atomics.add(c, SEQ, 1) + 1;
    Atomics.notify(c, SEQ);
    jobs.push({ w, i0, i1, seq });
  });
  rows(As, Bs, M, K, N, 0, Math.min(M, chunk), Cs);
  for (const j of jobs) {
    const c = j.w.ctrl;
    let waited = 0;
    for (let done = Atomics.load(c, DONE); done !== j.seq; done = Atomics.load(c, DONE)) {
      if (Atomics.wait(c, DONE, done, 1000) === 'timed-out' && ++waited >= 30) {
        throw new Error('onebit: a GEMM worker thread stopped responding (30 s). Set ONEBIT_THREADS=1 to disable threads.');
      }
    }
    if (c[ERR]) rows(As, Bs, M, K, N, j.i0, j.i1, Cs); // the worker failed: do its rows here
  }
  return Float32Array.from(Cs);
}

setParallelMatmulNT(parallelMatmulNT);
