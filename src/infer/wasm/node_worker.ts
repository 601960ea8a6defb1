/** The worker_threads entry of the threaded WebAssembly kernels in Node (node.ts spawns it; see worker.ts). */
import { parentPort } from 'node:worker_threads';
import { runKernelWorker, type KernelWorkerInit } from './pool.js';

const port = parentPort;
port?.once('message', (d: KernelWorkerInit) => {
  if (d?.type === 'onebit-kernels-init') void runKernelWorker(d, (m) => port.postMessage(m));
});
