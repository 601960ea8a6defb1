import * as fs from 'node:fs';
import { OnebitError, fail } from '../core/errors.js';
import { noGrad } from '../autograd/tape.js';
import type { Tensor } from '../core/tensor.js';
import { add, mul } from '../ops/elementwise.js';
import { crossEntropy, distillationLoss } from '../nn/losses.js';
import type { Module } from '../nn/module.js';
import type { TrainConfig } from './config.js';

/** A frozen teacher for knowledge distillation. */
export interface Teacher {
  file: string;
  config: TrainConfig;
  model: Module;
  /** The checkpoint's own SHA-256 (its last 32 bytes, hex): a resumed run checks it is the same teacher. */
  sha256: string;
}

/**
 * Load a teacher from a training checkpoint (`loadTrainedModel` is passed in to avoid an import
 * cycle with the trainer). It must be trained on the same dataset as the student. The model is put
 * in eval mode; its parameters are never handed to the optimizer. Any problem with the file is one
 * error starting with `--teacher`.
 */
export function loadTeacher(
  file: string,
  dataset: TrainConfig['dataset'],
  load: (file: string) => { config: TrainConfig; model: Module },
): Teacher {
  let t: { config: TrainConfig; model: Module };
  try {
    t = load(file);
  } catch (e) {
    if (e instanceof OnebitError) throw new OnebitError(`--teacher: ${e.message}`);
    throw e;
  }
  if (t.config.dataset !== dataset) {
    fail('--teacher', `a checkpoint trained on ${dataset} (the student's dataset)`, `${file}, trained on ${t.config.dataset}`);
  }
  t.model.eval();
  return { file, config: t.config, model: t.model, sha256: checkpointDigest(file) };
}

/** The SHA-256 a checkpoint stores in its last 32 bytes (verified when it was loaded), as hex. */
export function checkpointDigest(file: string): string {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const buf = Buffer.alloc(32);
    fs.readSync(fd, buf, 0, 32, Math.max(0, size - 32));
    return buf.toString('hex');
  } finally {
    fs.closeSync(fd);
  }
}

/** The teacher's logits for a batch: eval mode, no tape. */
export function teacherLogits(teacher: Teacher, x: Tensor): Tensor {
  return noGrad(() => teacher.model.forward(x));
}

/**
 * The training loss: with teacher logits, `kdWeight·KD + (1 − kdWeight)·CE` where KD is the
 * distribution loss of methods.md §1.6, `T²·mean_batch(−Σ_c softmax(z_T/T)_c·log_softmax(z_S/T)_c)`
 * (`distillationLoss`); kdWeight 1 is pure KD (ReActNet, ReBNN), 0 pure CE. Without a teacher: CE.
 * Label smoothing applies to the CE part only.
 */
export function trainingLoss(
  logits: Tensor,
  labels: Int32Array,
  opts: { teacherLogits?: Tensor | null; kdWeight: number; kdTemperature: number; labelSmoothing: number },
): Tensor {
  const ce = () => crossEntropy(logits, labels, { labelSmoothing: opts.labelSmoothing });
  if (!opts.teacherLogits) return ce();
  const kd = distillationLoss(logits, opts.teacherLogits, { temperature: opts.kdTemperature });
  if (opts.kdWeight === 1) return kd;
  if (opts.kdWeight === 0) return ce();
  return add(mul(kd, opts.kdWeight), mul(ce(), 1 - opts.kdWeight));
}
