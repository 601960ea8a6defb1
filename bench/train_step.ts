/**
 * The training step both bench:train and bench:train-profile time: a CIFAR ResNet-20 BNN of a
 * method preset (seed 0), SGD (lr 0.1, momentum 0.9), one fixed random batch [batch, 3, 32, 32]
 * with random labels; `step()` runs forward + backward + update and returns the loss, recycling its
 * large arrays as the trainer does (ONEBIT_RECYCLE=0 turns that off, read at each step).
 */
import { manualSeed, Tensor, backward } from '../src/index.js';
import { resnet20 } from '../src/models/resnet20.js';
import { methodPreset } from '../src/models/methods.js';
import { crossEntropy } from '../src/nn/losses.js';
import { SGD } from '../src/optim/sgd.js';
import { Rng } from '../src/core/rng.js';
import { loadAddon } from '../src/backends/native/addon.js';
import { recycling } from '../src/core/recycle.js';
import { persistentTensors } from '../src/train/trainer.js';
import type { Command, OptionValues } from 'commander';

/** The step options the profile and A/B benchmarks share: --method, --batch, --threads. */
export function stepOptions(c: Command): Command {
  return c.option('--method <name>', 'method preset', 'ste').option('--batch <n>', 'batch size', '128').option('--threads <n>', 'threads', '2');
}

/** The training step for parsed stepOptions (threads applied to the addon). */
export function stepFromOptions(o: OptionValues, what: string): { step: () => number; batch: number } {
  loadAddon()?.setThreads(Number(o.threads));
  const batch = Number(o.batch);
  return { step: resnet20TrainStep(o.method, batch, what), batch };
}

export function resnet20TrainStep(method: string, batch: number, what: string): () => number {
  manualSeed(0);
  const model = resnet20(methodPreset(method));
  const opt = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
  const r = new Rng(1);
  const x = new Tensor(Float32Array.from({ length: batch * 3 * 32 * 32 }, () => r.normal()), [batch, 3, 32, 32]);
  const y = Int32Array.from({ length: batch }, () => r.int(10));
  // As the trainer runs a step: the step's large arrays are reused by the next (core/recycle.ts).
  const keep = () => persistentTensors(model);
  return () => {
    const v = recycling(keep, () => {
      const loss = crossEntropy(model.forward(x), y);
      backward(loss);
      opt.step();
      opt.zeroGrad();
      return loss.item();
    });
    if (!Number.isFinite(v)) throw new Error(`${what}: non-finite loss`);
    return v;
  };
}
