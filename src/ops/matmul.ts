import { fail, fmtShape } from '../core/errors.js';
import { backend, Tensor, wrap } from '../core/tensor.js';
import { needsGrad, record } from '../autograd/tape.js';

/** 2-D matrix product with gradient; transposes are kernel flags, never copies at this level. */
export function matmul(a: Tensor, b: Tensor, transA = false, transB = false): Tensor {
  if (a.rank !== 2 || b.rank !== 2) fail('matmul', 'two rank-2 tensors', `${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
  const [m, ka] = transA ? [a.shape[1]!, a.shape[0]!] : [a.shape[0]!, a.shape[1]!];
  const [kb, n] = transB ? [b.shape[1]!, b.shape[0]!] : [b.shape[0]!, b.shape[1]!];
  if (ka !== kb) {
    fail('matmul', 'inner dimensions to agree', `${fmtShape(a.shape)}${transA ? 'ᵀ' : ''} · ${fmtShape(b.shape)}${transB ? 'ᵀ' : ''}`);
  }
  const y = wrap(backend().matmul(a.f32('matmul'), b.f32('matmul'), m, ka, n, transA, transB), [m, n]);
  return record(y, 'matmul', [a, b], (g) => {
    const gv = g.f32();
    // C = A·B: dA = G·Bᵀ, dB = Aᵀ·G (with the flags folded in).
    // Only the gradients some input needs: the first layer's input (the data) needs none.
    const da = !needsGrad(a) ? null : transA
      ? backend().matmul(b.f32(), gv, ka, n, m, transB, true) // dAᵀ... = op(B)·Gᵀ -> [K, M]
      : backend().matmul(gv, b.f32(), m, n, ka, false, !transB);
    const db = !needsGrad(b) ? null : transB
      ? backend().matmul(gv, a.f32(), n, m, ka, true, transA) // Gᵀ·op(A) -> [N, K]
      : backend().matmul(a.f32(), gv, ka, m, n, !transA, false);
    return [da && wrap(da, a.shape), db && wrap(db, b.shape)];
  });
}
