import { fail, fmtShape } from '../core/errors.js';
import { Tensor, wrap } from '../core/tensor.js';
import { logSoftmax, softmax } from '../ops/activation.js';
import { div, mul } from '../ops/elementwise.js';
import { sum } from '../ops/reduce.js';
import { noGrad } from '../autograd/tape.js';

/**
 * Cross-entropy of logits [N, C] against integer labels, averaged over the batch. With label
 * smoothing ε the target is (1−ε)·onehot + ε/C (PyTorch's definition).
 */
export function crossEntropy(logits: Tensor, labels: Int32Array | Uint8Array, opts: { labelSmoothing?: number } = {}): Tensor {
  if (logits.rank !== 2) fail('crossEntropy', 'logits of shape [batch, classes]', `shape ${fmtShape(logits.shape)}`);
  const [n, c] = logits.shape as [number, number];
  if (labels.length !== n) fail('crossEntropy', `${n} labels (one per row of the logits)`, `${labels.length}`);
  const eps = opts.labelSmoothing ?? 0;
  if (!(eps >= 0 && eps < 1)) fail('crossEntropy labelSmoothing', 'a value in [0, 1)', String(eps));
  const target = new Float32Array(n * c).fill(eps / c);
  for (let i = 0; i < n; i++) {
    const y = labels[i]!;
    if (!Number.isInteger(y) || y < 0 || y >= c) fail('crossEntropy', `labels in [0, ${c - 1}]`, `${y} at row ${i}`);
    target[i * c + y]! += 1 - eps;
  }
  return div(sum(mul(logSoftmax(logits), wrap(target, [n, c]))), -n);
}

/**
 * Distillation loss against a teacher's logits (Hinton et al. 2015; ReActNet's distribution loss,
 * methods.md §1.6): L = T² · mean_batch( −Σ_c softmax(z_T/T)_c · log_softmax(z_S/T)_c ).
 * With T = 1 this is exactly ReActNet's loss. The teacher gets no gradient.
 */
export function distillationLoss(student: Tensor, teacherLogits: Tensor, opts: { temperature?: number } = {}): Tensor {
  const T = opts.temperature ?? 1;
  if (!(T > 0)) fail('distillationLoss temperature', 'a positive number', String(T));
  if (student.rank !== 2 || teacherLogits.rank !== 2 || student.shape[0] !== teacherLogits.shape[0] || student.shape[1] !== teacherLogits.shape[1]) {
    fail('distillationLoss', 'student and teacher logits of the same shape [batch, classes]', `${fmtShape(student.shape)} and ${fmtShape(teacherLogits.shape)}`);
  }
  const n = student.shape[0]!;
  const soft = noGrad(() => softmax(div(teacherLogits.detach(), T)));
  return mul(div(sum(mul(logSoftmax(div(student, T)), soft)), -n), T * T);
}
