/**
 * The Web Worker entry of the threaded WebAssembly kernels (browser-safe; bundle it as its own
 * module file and spawn it with `new Worker(url, { type: 'module' })` for
 * `instantiateWasmKernelsThreaded`). It waits for the init message, then serves kernel jobs on the
 * shared memory until the pool stops (pool.ts).
 */
import { runKernelWorker, type KernelWorkerInit } from './pool.js';

const scope = globalThis as unknown as { onmessage: ((ev: { data: unknown }) => void) | null; postMessage(message: unknown): void };
scope.onmessage = (ev) => {
  const d = ev.data as KernelWorkerInit | undefined;
  if (d?.type !== 'onebit-kernels-init') return;
  scope.onmessage = null;
  void runKernelWorker(d, (m) => scope.postMessage(m));
};
