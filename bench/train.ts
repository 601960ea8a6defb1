/**
 * `npm run bench:train`: images/s of one ResNet-20-shaped BNN training step (forward + backward +
 * SGD, batch 128, the `ste` preset: sign + clipped STE on weights and activations) in onebit on the
 * active backend, and the same model in PyTorch CPU with float-simulated binarization
 * (bench/pytorch_train.py; Debian's python3-torch), run from this script with the same thread
 * count, alternating. Prints both and the ratio; RESULT lines at the end.
 *
 *   npm run bench:train [-- --threads 2 --steps 5 --batch 128]
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { backend } from '../src/index.js';
import { loadAddon } from '../src/backends/native/addon.js';
import { resnet20TrainStep } from './train_step.js';

const o = new Command('bench-train')
  .option('--threads <n>', 'threads for both sides', '2')
  .option('--steps <n>', 'timed steps per round', '5')
  .option('--batch <n>', 'batch size', '128')
  .option('--rounds <n>', 'alternating rounds', '2')
  .parse()
  .opts();
const threads = Number(o.threads), steps = Number(o.steps), batch = Number(o.batch), rounds = Number(o.rounds);
loadAddon()?.setThreads(threads);

const step = resnet20TrainStep('ste', batch, 'bench:train');

function onebitRound(): number {
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) step();
  return (batch * steps) / ((performance.now() - t0) / 1000);
}

const script = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'pytorch_train.py');
// Debian's python3-torch lives in the system Python; a pyenv/venv `python3` on PATH may not see it.
const python = process.env.ONEBIT_PYTHON ?? (fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
function torchRound(): { img_per_s: number; torch: string } | null {
  const p = spawnSync(python, [script, String(batch), String(steps), String(threads)], {
    encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: String(threads) },
  });
  if (p.status !== 0) {
    console.log(`PyTorch side unavailable (${(p.stderr || p.error?.message || '').trim().split('\n').pop()}); install python3-torch.`);
    return null;
  }
  return JSON.parse(p.stdout.trim().split('\n').pop()!);
}

console.log(`backend: ${backend().name}, threads ${threads}, batch ${batch}, ${steps} steps per round, ${rounds} rounds`);
step(); // warm-up (primitive creation, allocations)
const ours: number[] = [], theirs: number[] = [];
let torchVersion = '';
for (let i = 0; i < rounds; i++) {
  ours.push(onebitRound());
  const t = torchRound();
  if (t) {
    theirs.push(t.img_per_s);
    torchVersion = t.torch;
  }
  console.log(`round ${i + 1}: onebit ${ours.at(-1)!.toFixed(1)} img/s` + (t ? `, PyTorch ${t.img_per_s.toFixed(1)} img/s` : ''));
}
const best = (a: number[]) => Math.max(...a);
console.log(`onebit ${best(ours).toFixed(1)} img/s (best round)` + (theirs.length ? `, PyTorch ${torchVersion} ${best(theirs).toFixed(1)} img/s, ratio ${(best(ours) / best(theirs)).toFixed(2)}` : ''));
console.log(`RESULT train_img_per_s_onebit=${best(ours).toFixed(1)}`);
if (theirs.length) {
  console.log(`RESULT train_img_per_s_pytorch=${best(theirs).toFixed(1)}`);
  console.log(`RESULT train_speedup_vs_pytorch=${(best(ours) / best(theirs)).toFixed(3)}`);
}
