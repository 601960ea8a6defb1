import type { Shape } from '../../core/backend.js';
import { sizeOf } from '../../core/shape.js';

/**
 * Reference batch-norm kernels over x: [N, C, ...spatial] with channel axis 1. Statistics are
 * accumulated in float64 (two passes: mean, then centred squares) for accuracy.
 */

function dims(xShape: Shape): [number, number, number] {
  return [xShape[0]!, xShape[1]!, sizeOf(xShape.slice(2))];
}

export function batchNormStats(x: Float32Array, xShape: Shape): { mean: Float32Array; variance: Float32Array } {
  const [N, C, S] = dims(xShape);
  const mean = new Float32Array(C);
  const variance = new Float32Array(C);
  const count = N * S;
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let n = 0; n < N; n++) {
      const base = (n * C + c) * S;
      for (let i = 0; i < S; i++) s += x[base + i]!;
    }
    const m = s / count;
    let q = 0;
    for (let n = 0; n < N; n++) {
      const base = (n * C + c) * S;
      for (let i = 0; i < S; i++) {
        const d = x[base + i]! - m;
        q += d * d;
      }
    }
    mean[c] = m;
    variance[c] = q / count;
  }
  return { mean, variance };
}

export function batchNormApply(
  x: Float32Array, xShape: Shape, mean: Float32Array, invStd: Float32Array, gamma: Float32Array, beta: Float32Array,
): Float32Array {
  const [N, C, S] = dims(xShape);
  const y = new Float32Array(x.length);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const scale = invStd[c]! * gamma[c]!;
      const shift = beta[c]! - mean[c]! * scale;
      const base = (n * C + c) * S;
      for (let i = 0; i < S; i++) y[base + i] = x[base + i]! * scale + shift;
    }
  }
  return y;
}

/**
 * With xhat = (x - mean)·invStd and m = N·S elements per channel:
 *   dbeta = Σ dy,  dgamma = Σ dy·xhat,
 *   dx = gamma·invStd/m · (m·dy - dbeta - xhat·dgamma).
 */
export function batchNormBackward(
  dy: Float32Array, x: Float32Array, xShape: Shape, mean: Float32Array, invStd: Float32Array, gamma: Float32Array,
): { dx: Float32Array; dgamma: Float32Array; dbeta: Float32Array } {
  const [N, C, S] = dims(xShape);
  const m = N * S;
  const dx = new Float32Array(x.length);
  const dgamma = new Float32Array(C);
  const dbeta = new Float32Array(C);
  for (let c = 0; c < C; c++) {
    const mu = mean[c]!, is = invStd[c]!;
    let sb = 0, sg = 0;
    for (let n = 0; n < N; n++) {
      const base = (n * C + c) * S;
      for (let i = 0; i < S; i++) {
        const g = dy[base + i]!;
        sb += g;
        sg += g * (x[base + i]! - mu) * is;
      }
    }
    dbeta[c] = sb;
    dgamma[c] = sg;
    const k = (gamma[c]! * is) / m;
    for (let n = 0; n < N; n++) {
      const base = (n * C + c) * S;
      for (let i = 0; i < S; i++) {
        const xhat = (x[base + i]! - mu) * is;
        dx[base + i] = k * (m * dy[base + i]! - sb - xhat * sg);
      }
    }
  }
  return { dx, dgamma, dbeta };
}
