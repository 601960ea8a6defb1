/**
 * `npm run bench:precise-bn`: does re-estimating a trained model's batch-norm statistics over the
 * whole training set ("precise BN") change its test accuracy? Loads a training checkpoint, reports
 * the test accuracy with the stored running averages, then runs one pass over the training set in
 * train mode without gradients, the running-average momentum set to 1/(k+1) at batch k (so the
 * running mean/var become the plain average over all batches), and reports the test accuracy again.
 * The checkpoint file is not modified. An accuracy experiment, not a speed benchmark.
 *
 *   npm run bench:precise-bn -- --ckpt runs/cifar10-r20-reactnet-ws55/best.ckpt [--augment] [--batch-size 128]
 */
import { Command } from 'commander';
import '../src/index.js';
import { noGrad } from '../src/autograd/tape.js';
import { fail } from '../src/core/errors.js';
import { clearRecyclePool, recycling } from '../src/core/recycle.js';
import { DataLoader } from '../src/data/loader.js';
import { BatchNorm1d, BatchNorm2d } from '../src/nn/layers.js';
import { datasetNorm, evaluate, loadData, loadTrainedModel, persistentTensors } from '../src/train/trainer.js';

const o = new Command('bench-precise-bn')
  .requiredOption('--ckpt <file>', 'training checkpoint (best.ckpt / last.ckpt of a run folder)')
  .option('--augment', 'use the training augmentation (crop + flip) for the statistics pass', false)
  .option('--batch-size <n>', 'batch size of the statistics pass', '128')
  .parse()
  .opts<{ ckpt: string; augment: boolean; batchSize: string }>();
const batchSize = Number(o.batchSize);
if (!Number.isInteger(batchSize) || batchSize < 2) fail('--batch-size', 'an integer ≥ 2', o.batchSize);

const { config, model } = loadTrainedModel(o.ckpt);
const data = loadData(config);
const normalize = datasetNorm(config.dataset);
const test = new DataLoader(data.test, { batchSize: 500, shuffle: false, normalize });
const stored = evaluate(model, test);
console.log(`${o.ckpt}: test accuracy with the stored running statistics ${(stored * 100).toFixed(2)} %`);

const bns = model.namedModules().map(([, m]) => m).filter((m) => m instanceof BatchNorm1d || m instanceof BatchNorm2d);
if (bns.length === 0) fail(o.ckpt, 'a model with batch-norm layers', 'none');
const augment = o.augment ? { pad: 4, flip: true } : undefined;
const loader = new DataLoader(data.train, { batchSize, shuffle: true, normalize, augment });
model.train();
let k = 0;
noGrad(() => {
  for (const { x } of loader.batches()) {
    // The module's momentum option is read at every forward; setting it to 1/(k+1) turns the
    // exponential running average into the mean over batches 0..k.
    for (const m of bns) (m.opts as { momentum?: number }).momentum = 1 / (k + 1);
    recycling(() => persistentTensors(model), () => {
      model.forward(x);
      return 0;
    });
    k++;
  }
});
clearRecyclePool();
const precise = evaluate(model, test);
console.log(`after one statistics pass (${k} batches of ${batchSize}, ${o.augment ? 'augmented' : 'unaugmented'}): ${(precise * 100).toFixed(2)} %`);
console.log(`RESULT stored_bn_test_acc=${(stored * 100).toFixed(2)}`);
console.log(`RESULT precise_bn_test_acc=${(precise * 100).toFixed(2)}`);
