/**
 * Reference-backend GEMM: one thread vs the shared-memory thread pool, on the GEMM shapes of the
 * default MNIST MLP (batch 100, 784 → 256 → 256 → 256 → 10), forward and both backward products.
 * Validates first (pool result bit-identical to the single-thread kernel), then times both
 * alternately in one process. Prints GFLOP/s per shape and RESULT lines.
 *
 *   npm run bench:matmul            (ONEBIT_THREADS sets the pool size; default = CPU count)
 */
import '../src/index.js';
import { matmulNT, matmulNTRows } from '../src/backends/ref/matmul.js';
import { threadStats } from '../src/backends/ref/threads.js';
import { Rng } from '../src/core/rng.js';

const shapes: [string, number, number, number][] = [
  ['fc1 forward   [100x784]·[256x784]ᵀ', 100, 784, 256],
  ['fc1 dW        [256x100]·[784x100]ᵀ', 256, 100, 784],
  ['fc2 forward   [100x256]·[256x256]ᵀ', 100, 256, 256],
  ['fc2 dX        [100x256]·[256x256]ᵀ', 100, 256, 256],
];

function rand(n: number, r: Rng): Float32Array {
  return Float32Array.from({ length: n }, () => r.uniform(-1, 1));
}

function time(fn: () => void, minMs = 300): number {
  fn();
  let reps = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < minMs) {
    fn();
    reps++;
  }
  return (performance.now() - t0) / reps;
}

const r = new Rng(1);
let sumOne = 0, sumPool = 0, flopsAll = 0;
for (const [name, M, K, N] of shapes) {
  const A = rand(M * K, r), B = rand(N * K, r);
  const one = () => matmulNTRows(A, B, M, K, N, 0, M, new Float32Array(M * N));
  const pool = () => matmulNT(A, B, M, K, N);
  if (Buffer.compare(Buffer.from(one().buffer), Buffer.from(pool().buffer)) !== 0) throw new Error(`${name}: pool result differs`);
  let t1 = 0, tp = 0;
  for (let round = 0; round < 3; round++) {
    t1 += time(one);
    tp += time(pool);
  }
  t1 /= 3;
  tp /= 3;
  const flops = 2 * M * K * N;
  sumOne += t1;
  sumPool += tp;
  flopsAll += flops;
  console.log(`${name}  1 thread ${(flops / t1 / 1e6).toFixed(2)} GFLOP/s  pool(${threadStats().threads}) ${(flops / tp / 1e6).toFixed(2)} GFLOP/s  ×${(t1 / tp).toFixed(2)}`);
}
console.log(`RESULT ref_gemm_gflops_1t=${(flopsAll / sumOne / 1e6).toFixed(2)}`);
console.log(`RESULT ref_gemm_gflops_pool=${(flopsAll / sumPool / 1e6).toFixed(2)}`);
console.log(`RESULT ref_gemm_pool_speedup=${(sumOne / sumPool).toFixed(2)}`);
