import { manualSeed } from '../src/index.js';
import { Rng } from '../src/core/rng.js';
import { buildModel } from '../src/models/index.js';
import type { Module } from '../src/nn/module.js';
import type { TrainConfig } from '../src/train/config.js';

/** Random but realistic BN statistics (a freshly built model has mean 0 / variance 1 everywhere). */
export function randomizeStats(model: Module, seed: number): void {
  const r = new Rng(seed);
  for (const [name, t] of model.stateDict()) {
    const d = t.f32();
    if (/running_?var|runningVar/i.test(name)) for (let i = 0; i < d.length; i++) d[i] = 0.5 + r.next();
    else if (/running_?mean|runningMean/i.test(name)) for (let i = 0; i < d.length; i++) d[i] = 0.2 * r.normal();
  }
}

/** A CIFAR-10 model of `arch` with the `method` preset ('float' for the float network), seeded, in eval mode: what the benchmarks time. */
export function benchModel(arch: TrainConfig['arch'], method: string): Module {
  manualSeed(0);
  const m = buildModel({ dataset: 'cifar10', arch, method, hidden: 0 } as TrainConfig);
  randomizeStats(m, 1);
  m.eval();
  return m;
}
