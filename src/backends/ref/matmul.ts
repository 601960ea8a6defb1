/**
 * The row-parallel C = A·Bᵀ of the Node worker pool (threads.ts registers it when the reference
 * backend is imported in Node); this file stays free of Node built-ins so the browser build can use it.
 */
type ParallelNT = (
  A: Float32Array, B: Float32Array, M: number, K: number, N: number,
  rows: (A: Float32Array, B: Float32Array, M: number, K: number, N: number, i0: number, i1: number, C: Float32Array) => Float32Array,
) => Float32Array | null;
let parallelMatmulNT: ParallelNT = () => null;

/** Install the worker pool's parallel product (threads.ts does, on import). */
export function setParallelMatmulNT(f: ParallelNT): void {
  parallelMatmulNT = f;
}

/**
 * Reference matmul: C[M,N] = op(A)·op(B). Operands are first brought to the "NT" form
 * C[i,j] = Σ_k A[i,k]·B[j,k] (both rows contiguous along k, a transpose costs O(n²) against the
 * O(n³) product), then computed in 4x4 register tiles: 8 loads feed 16 multiply-adds per k, which
 * is what a scalar JIT can do best. Accumulation is in float64 (JS numbers), stored as float32;
 * the order is fixed, so results are deterministic.
 */
export function matmul(
  a: Float32Array, b: Float32Array, m: number, k: number, n: number, transA: boolean, transB: boolean,
): Float32Array {
  const A = transA ? transpose2d(a, k, m) : a; // now [M,K]
  const B = transB ? b : transpose2d(b, k, n); // now [N,K]
  return matmulNT(A, B, m, k, n);
}

/** out[c, r] = x[r, c] for x of shape [rows, cols]. */
export function transpose2d(x: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  const T = 32; // cache blocking
  for (let r0 = 0; r0 < rows; r0 += T) {
    const r1 = Math.min(rows, r0 + T);
    for (let c0 = 0; c0 < cols; c0 += T) {
      const c1 = Math.min(cols, c0 + T);
      for (let r = r0; r < r1; r++) {
        for (let c = c0; c < c1; c++) out[c * rows + r] = x[r * cols + c]!;
      }
    }
  }
  return out;
}

/** C[M,N] with C[i,j] = Σ_k A[i*K+k]·B[j*K+k]. Large products are split by rows over the thread pool. */
export function matmulNT(A: Float32Array, B: Float32Array, M: number, K: number, N: number): Float32Array {
  return parallelMatmulNT(A, B, M, K, N, matmulNTRows) ?? matmulNTRows(A, B, M, K, N, 0, M, new Float32Array(M * N));
}

/**
 * Rows [i0, i1) of C = A·Bᵀ, written into C (which holds all M rows). Each element's value does not
 * depend on the row range, so any split over threads gives bit-identical results.
 */
export function matmulNTRows(A: Float32Array, B: Float32Array, M: number, K: number, N: number, i0: number, i1: number, C: Float32Array): Float32Array {
  const M4 = i0 + (i1 - i0) - ((i1 - i0) % 4);
  const N4 = N - (N % 4);
  for (let i = i0; i < M4; i += 4) {
    const a0 = i * K, a1 = a0 + K, a2 = a1 + K, a3 = a2 + K;
    for (let j = 0; j < N4; j += 4) {
      const b0 = j * K, b1 = b0 + K, b2 = b1 + K, b3 = b2 + K;
      let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
      let c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
      for (let p = 0; p < K; p++) {
        const x0 = A[a0 + p]!, x1 = A[a1 + p]!, x2 = A[a2 + p]!, x3 = A[a3 + p]!;
        const y0 = B[b0 + p]!, y1 = B[b1 + p]!, y2 = B[b2 + p]!, y3 = B[b3 + p]!;
        c00 += x0 * y0; c01 += x0 * y1; c02 += x0 * y2; c03 += x0 * y3;
        c10 += x1 * y0; c11 += x1 * y1; c12 += x1 * y2; c13 += x1 * y3;
        c20 += x2 * y0; c21 += x2 * y1; c22 += x2 * y2; c23 += x2 * y3;
        c30 += x3 * y0; c31 += x3 * y1; c32 += x3 * y2; c33 += x3 * y3;
      }
      let o = i * N + j;
      C[o] = c00; C[o + 1] = c01; C[o + 2] = c02; C[o + 3] = c03; o += N;
      C[o] = c10; C[o + 1] = c11; C[o + 2] = c12; C[o + 3] = c13; o += N;
      C[o] = c20; C[o + 1] = c21; C[o + 2] = c22; C[o + 3] = c23; o += N;
      C[o] = c30; C[o + 1] = c31; C[o + 2] = c32; C[o + 3] = c33;
    }
    for (let j = N4; j < N; j++) {
      for (let r = 0; r < 4; r++) C[(i + r) * N + j] = dot(A, (i + r) * K, B, j * K, K);
    }
  }
  for (let i = M4; i < i1; i++) {
    for (let j = 0; j < N; j++) C[i * N + j] = dot(A, i * K, B, j * K, K);
  }
  return C;
}

function dot(A: Float32Array, ao: number, B: Float32Array, bo: number, K: number): number {
  let s = 0;
  for (let p = 0; p < K; p++) s += A[ao + p]! * B[bo + p]!;
  return s;
}
