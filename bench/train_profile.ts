/**
 * `npm run bench:train-profile`: where a ResNet-20 BNN training step (batch 128, forward +
 * backward + SGD, the same step as bench:train) spends its time, per backend kernel: every kernel
 * of the active backend is wrapped with a timer, then `--steps` steps run after 2 warm-ups.
 * Prints ms per step and calls per step for each kernel (mean over the steps), the fastest step
 * and the images/s it gives. Kernel times include what they allocate (and any GC it triggers).
 *
 *   npm run bench:train-profile [-- --method bireal --steps 8 --threads 2]
 */
import { Command } from 'commander';
import { backend } from '../src/index.js';
import { stepFromOptions, stepOptions } from './train_step.js';

const o = stepOptions(new Command('bench-train-profile'))
  .option('--steps <n>', 'timed steps', '8')
  .parse()
  .opts();
const steps = Number(o.steps);
const { step, batch } = stepFromOptions(o, 'bench:train-profile');

const b = backend() as unknown as Record<string, unknown>;
const times = new Map<string, { ms: number; calls: number }>();
let on = false;
for (const k of Object.keys(b)) {
  const f = b[k];
  if (typeof f !== 'function') continue;
  b[k] = function (this: unknown, ...a: unknown[]) {
    if (!on) return (f as (...v: unknown[]) => unknown).apply(this, a);
    const t0 = performance.now();
    const res = (f as (...v: unknown[]) => unknown).apply(this, a);
    const e = times.get(k) ?? { ms: 0, calls: 0 };
    e.ms += performance.now() - t0;
    e.calls++;
    times.set(k, e);
    return res;
  };
}
step();
step();
on = true;
let best = Infinity, total = 0;
for (let i = 0; i < steps; i++) {
  const t0 = performance.now();
  step();
  const d = performance.now() - t0;
  best = Math.min(best, d);
  total += d;
}
console.log(`backend ${backend().name}, method ${o.method}, batch ${batch}, ${steps} steps`);
let sum = 0;
for (const [k, { ms, calls }] of [...times].sort((p, q) => q[1].ms - p[1].ms)) {
  sum += ms / steps;
  console.log(`${k.padEnd(26)} ${(ms / steps).toFixed(1).padStart(7)} ms/step ${String(calls / steps).padStart(5)} calls/step`);
}
console.log(`kernels ${sum.toFixed(1)} ms/step of ${(total / steps).toFixed(1)} ms/step (the rest: TypeScript, autograd, GC outside kernels)`);
console.log(`fastest step ${best.toFixed(1)} ms = ${((batch / best) * 1000).toFixed(0)} img/s`);
console.log(`RESULT train_step_ms_best=${best.toFixed(1)}`);
