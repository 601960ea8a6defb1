import '../src/index.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { matmulNT, matmulNTRows } from '../src/backends/ref/matmul.js';
import { threadStats } from '../src/backends/ref/threads.js';
import { Rng } from '../src/core/rng.js';

// Force a two-thread pool for this process even on a one-CPU machine (read at first use).
process.env.ONEBIT_THREADS = '2';

function rand(n: number, seed: number): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => r.uniform(-1, 1));
}

test('threaded GEMM is bit-identical to the single-thread kernel on awkward sizes', () => {
  for (const [M, K, N] of [[64, 256, 128], [65, 255, 129], [33, 1000, 97], [131, 129, 63], [8, 4096, 40]] as const) {
    const A = rand(M * K, M), B = rand(N * K, N);
    const par = matmulNT(A, B, M, K, N);
    const one = matmulNTRows(A, B, M, K, N, 0, M, new Float32Array(M * N));
    assert.deepEqual(Buffer.from(par.buffer), Buffer.from(one.buffer), `${M}x${K}x${N}`);
  }
  assert.deepEqual(threadStats(), { threads: 2, parallelCalls: 5 });
  // a larger product after smaller ones grows the shared buffer
  const [M, K, N] = [200, 700, 300];
  const A = rand(M * K, 1), B = rand(N * K, 2);
  assert.deepEqual(Buffer.from(matmulNT(A, B, M, K, N).buffer), Buffer.from(matmulNTRows(A, B, M, K, N, 0, M, new Float32Array(M * N)).buffer));
});
