import { fail, fmtShape } from '../core/errors.js';
import { shapesEqual } from '../core/shape.js';
import { backend, Tensor, wrap } from '../core/tensor.js';
import { fresh, handOn, record } from '../autograd/tape.js';

export interface BatchNormState {
  runningMean: Tensor;
  runningVar: Tensor;
}

/**
 * Batch normalization over axis 1 of x: [N, C, ...]. In training mode it normalizes with the batch
 * statistics (biased variance) and updates `running` in place with `momentum` (PyTorch convention:
 * running = (1 - momentum)·running + momentum·batch, unbiased variance); in eval mode it uses
 * the running statistics. Gradients flow to x, gamma and beta. With `residual` (x's shape) it
 * returns BN(x) + residual in one pass (the residual block's add, fused; gradient to it as well).
 */
export function batchNorm(
  x: Tensor, gamma: Tensor, beta: Tensor, running: BatchNormState | null, training: boolean, momentum = 0.1, eps = 1e-5,
  residual: Tensor | null = null,
): Tensor {
  if (x.rank < 2) fail('batchNorm', 'input of rank >= 2 [N, C, ...]', `shape ${fmtShape(x.shape)}`);
  if (residual && !shapesEqual(residual.shape, x.shape)) {
    fail('batchNorm residual', `the input's shape ${fmtShape(x.shape)}`, `shape ${fmtShape(residual.shape)}`);
  }
  const C = x.shape[1]!;
  for (const [n, t] of [['gamma', gamma], ['beta', beta]] as const) {
    if (t.rank !== 1 || t.shape[0] !== C) fail('batchNorm', `${n} of shape [${C}]`, fmtShape(t.shape));
  }
  const b = backend();
  const xv = x.f32('batchNorm');
  let mean: Float32Array, variance: Float32Array;
  if (training || !running) {
    const count = x.size / C;
    if (training && count < 2) {
      fail('batchNorm', 'more than one value per channel in training mode', `shape ${fmtShape(x.shape)}`, 'Use a batch size > 1 or eval mode.');
    }
    ({ mean, variance } = b.batchNormStats(xv, x.shape));
    if (training && running) {
      const rm = running.runningMean.storage as Float32Array, rv = running.runningVar.storage as Float32Array;
      const unbias = count / Math.max(count - 1, 1);
      for (let c = 0; c < C; c++) {
        rm[c] = (1 - momentum) * rm[c]! + momentum * mean[c]!;
        rv[c] = (1 - momentum) * rv[c]! + momentum * variance[c]! * unbias;
      }
    }
  } else {
    mean = running.runningMean.f32();
    variance = running.runningVar.f32();
  }
  const invStd = new Float32Array(C);
  for (let c = 0; c < C; c++) invStd[c] = 1 / Math.sqrt(variance[c]! + eps);
  let yv: Float32Array;
  if (!residual) yv = b.batchNormApply(xv, x.shape, mean, invStd, gamma.f32(), beta.f32());
  else if (b.batchNormApplyAdd) yv = b.batchNormApplyAdd(xv, x.shape, mean, invStd, gamma.f32(), beta.f32(), residual.f32('batchNorm residual'));
  else yv = b.binary('add', b.batchNormApply(xv, x.shape, mean, invStd, gamma.f32(), beta.f32()), x.shape, residual.f32('batchNorm residual'), x.shape, x.shape);
  const y = wrap(yv, x.shape);
  const useBatch = training || !running;
  // With a residual, y = BN(x) + r: r's gradient is the incoming one (as `add` passes it on).
  const inputs = residual ? [x, gamma, beta, residual] : [x, gamma, beta];
  return record(y, residual ? 'batchNormAdd' : 'batchNorm', inputs, (g) => {
    const gv = g.f32();
    const gr = residual ? [handOn(g)] : [];
    if (useBatch) {
      const r = b.batchNormBackward(gv, xv, x.shape, mean, invStd, gamma.f32());
      return [fresh(wrap(r.dx, x.shape)), fresh(wrap(r.dgamma, [C])), fresh(wrap(r.dbeta, [C])), ...gr];
    }
    // Eval mode: an affine map per channel.
    const zeros = new Float32Array(C);
    const scale = new Float32Array(C);
    const gam = gamma.f32();
    for (let c = 0; c < C; c++) scale[c] = gam[c]! * invStd[c]!;
    const dx = b.batchNormApply(gv, x.shape, zeros, scale, new Float32Array(C).fill(1), zeros);
    const r = b.batchNormBackward(gv, xv, x.shape, mean, invStd, gam); // for dgamma/dbeta sums only
    return [wrap(dx, x.shape), wrap(r.dgamma, [C]), wrap(r.dbeta, [C]), ...gr];
  });
}
