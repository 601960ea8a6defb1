import { fail, fmtShape } from '../core/errors.js';
import { backend, Tensor, wrap } from '../core/tensor.js';
import { record } from '../autograd/tape.js';

/** log-softmax over the last axis of a rank-2 [rows, classes] tensor. Gradient: g - softmax·Σg. */
export function logSoftmax(x: Tensor): Tensor {
  if (x.rank !== 2) fail('logSoftmax', 'a rank-2 tensor [batch, classes]', `shape ${fmtShape(x.shape)}`);
  const [rows, cols] = x.shape as [number, number];
  const y = backend().logSoftmax(x.f32('logSoftmax'), rows, cols);
  return record(wrap(y, x.shape), 'logSoftmax', [x], (g) => {
    const gv = g.f32();
    const dx = new Float32Array(gv.length);
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let c = 0; c < cols; c++) s += gv[r * cols + c]!;
      for (let c = 0; c < cols; c++) dx[r * cols + c] = gv[r * cols + c]! - Math.exp(y[r * cols + c]!) * s;
    }
    return [wrap(dx, x.shape)];
  });
}

/** softmax over the last axis of [rows, classes] (no gradient needed by the toolkit; computed via logSoftmax). */
export function softmax(x: Tensor): Tensor {
  const ls = logSoftmax(x);
  const out = new Float32Array(ls.size);
  const v = ls.f32();
  for (let i = 0; i < out.length; i++) out[i] = Math.exp(v[i]!);
  return record(wrap(out, x.shape), 'softmax', [ls], (g) => {
    // d softmax = s ⊙ g, routed through log-softmax's rule: d(ls) = s ⊙ g.
    const gv = g.f32();
    const d = new Float32Array(out.length);
    for (let i = 0; i < d.length; i++) d[i] = gv[i]! * out[i]!;
    return [wrap(d, x.shape)];
  });
}
