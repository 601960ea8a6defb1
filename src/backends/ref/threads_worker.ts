/**
 * GEMM worker of the reference backend's pool (see threads.ts): waits on its control words, computes
 * the row range it is given into the shared buffer, signals completion. Never exits on its own.
 */
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { matmulNTRows } from './matmul.js';

const { ctrl: ctrlBuf, port } = workerData as { ctrl: SharedArrayBuffer; port: MessagePort };
const ctrl = new Int32Array(ctrlBuf);
let shared: Float32Array = new Float32Array(0);
let gen = 0;
let seq = 0;
for (;;) {
  Atomics.wait(ctrl, 0, seq);
  seq = Atomics.load(ctrl, 0);
  try {
    while (gen !== ctrl[10]) {
      const m = receiveMessageOnPort(port);
      if (!m) throw new Error('shared buffer message missing');
      shared = new Float32Array((m.message as { shared: SharedArrayBuffer }).shared);
      gen = (m.message as { gen: number }).gen;
    }
    const [M, K, N, i0, i1, aOff, bOff, cOff] = [ctrl[2]!, ctrl[3]!, ctrl[4]!, ctrl[5]!, ctrl[6]!, ctrl[7]!, ctrl[8]!, ctrl[9]!];
    matmulNTRows(shared.subarray(aOff, aOff + M * K), shared.subarray(bOff, bOff + N * K), M, K, N, i0, i1, shared.subarray(cOff, cOff + M * N));
    ctrl[11] = 0;
  } catch {
    ctrl[11] = 1;
  }
  Atomics.store(ctrl, 1, seq);
  Atomics.notify(ctrl, 1);
}
