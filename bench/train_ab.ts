/**
 * `npm run bench:train-ab -- --env NAME`: is a switch faster, measured on the host as it is? The
 * bench:train step (ResNet-20, batch 128) runs in one process with the environment variable NAME
 * alternating between `--off` and `--on` (default "0" / "1") from step to step, the order flipped
 * every pair so drift and neighbours' load hit both sides alike. Separate runs on this shared
 * 2-core host vary by ±10 %, which hides a 3 % change; alternating steps do not. The switch must be
 * read when the step runs (e.g. ONEBIT_FUSED_SIGN, ONEBIT_FUSED_SIGN_BACKWARD, a temporary one
 * added while trying a change). Prints min / median / mean ms per step for each side.
 *
 *   npm run bench:train-ab -- --env ONEBIT_FUSED_SIGN_BACKWARD [--method bireal --pairs 16 --block 1]
 *   npm run bench:train-ab -- --env ONEBIT_RECYCLE --block 4 --pairs 8   (GC work spills into the next step)
 */
import { Command } from 'commander';
import { stepFromOptions, stepOptions } from './train_step.js';

const cmd = stepOptions(new Command('bench-train-ab'))
  .requiredOption('--env <name>', 'environment variable to alternate')
  .option('--off <value>', 'its value on the "off" side', '0')
  .option('--on <value>', 'its value on the "on" side', '1')
  .option('--pairs <n>', 'timed step pairs', '16')
  .option('--block <n>', 'steps per side in a row (more than 1 when a side leaves work, e.g. garbage, to the next step)', '1')
  .parse();
const o = cmd.opts();
const pairs = Number(o.pairs);
if (!Number.isInteger(pairs) || pairs < 1) cmd.error(`--pairs: expected a positive integer, but got ${o.pairs}.`);
const block = Number(o.block);
if (!Number.isInteger(block) || block < 1) cmd.error(`--block: expected a positive integer, but got ${o.block}.`);
const { step, batch } = stepFromOptions(o, 'bench:train-ab');
const sides = { off: o.off as string, on: o.on as string };
const times: Record<'off' | 'on', number[]> = { off: [], on: [] };
for (const side of ['off', 'on', 'off', 'on'] as const) { // warm-up: both paths compiled and their buffers allocated
  process.env[o.env] = sides[side];
  step();
}
for (let i = 0; i < pairs; i++) {
  for (const side of i % 2 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
    process.env[o.env] = sides[side];
    for (let j = 0; j < block; j++) {
      const t0 = performance.now();
      step();
      times[side].push(performance.now() - t0);
    }
  }
}
const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;
const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
console.log(`${o.method}, batch ${batch}, ${pairs} alternating pairs of ${block} step(s), ${o.env} = ${sides.off} (off) / ${sides.on} (on)`);
for (const side of ['off', 'on'] as const) {
  const t = times[side];
  console.log(`${side.padEnd(3)}  min ${Math.min(...t).toFixed(1)}  median ${median(t).toFixed(1)}  mean ${mean(t).toFixed(1)} ms/step`);
}
console.log(`RESULT train_ab_median_ratio_on_over_off=${(median(times.on) / median(times.off)).toFixed(3)}`);
