import '../src/index.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { formatSummary, summary } from '../src/metrics/summary.js';
import { methodPreset, mnistModel, resnet18 } from '../src/models/index.js';
import { BinaryLinear } from '../src/nn/binary.js';
import { BatchNorm1d } from '../src/nn/layers.js';
import { Sequential } from '../src/nn/module.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const cli = path.join(here, '..', 'src', 'cli', 'main.js');
// Compiled to dist/test/; the snapshot lives in the source tree.
const snapshot = path.join(here, '..', '..', 'test', 'snapshots', 'summary_mlp_ste.txt');

test('summary: MNIST mlp (H = 256, ste) — hand-counted parameters, memory and MACs', () => {
  const s = summary(mnistModel('mlp', methodPreset('ste')), [1, 1, 28, 28]);
  // Flatten → Linear(784,256) → BN → BinaryLinear(256,256) → BN → BinaryLinear(256,256) → BN → Linear(256,10)
  // 1-bit:  2 binary dense kernels (no bias) = 2·256·256                       = 131072
  // 32-bit: Linear 784·256 + 256 = 200960; 3 BN × 4·256 = 3072 (γ, β, mean, var);
  //         Linear 256·10 + 10 = 2570                      → 200960 + 3072 + 2570 = 206602
  assert.deepEqual(s.paramsByBits, { 1: 131072, 32: 206602 });
  assert.equal(s.totalParams, 337674);
  assert.equal(s.nonTrainableParams, 3 * 2 * 256); // BN running mean + var = 1536
  assert.equal(s.trainableParams, 337674 - 1536);
  // Packed: 131072/8 + 206602·4 = 16384 + 826408 = 842792 B; float-32: 337674·4 = 1350696 B.
  assert.equal(s.modelSizeBytes, 842792);
  assert.equal(s.float32SizeBytes, 1350696);
  assert.ok(Math.abs(s.compressionRatio - 1350696 / 842792) < 1e-12);
  // MACs: 1-bit 2·256·256 = 131072; 32-bit 784·256 + 256·10 = 200704 + 2560 = 203264.
  assert.deepEqual(s.macsByBits, { 1: 131072, 32: 203264 });
  assert.equal(s.totalMacs, 334336);
  assert.ok(Math.abs(s.binarizedMacRatio - 131072 / 334336) < 1e-12);
  // Rows: one per leaf layer, in call order; input precision 1 / 32 / '-'.
  assert.deepEqual(s.layers.map((l) => l.type), ['Flatten', 'Linear', 'BatchNorm1d', 'BinaryLinear', 'BatchNorm1d', 'BinaryLinear', 'BatchNorm1d', 'Linear']);
  assert.deepEqual(s.layers.map((l) => l.inputPrecision), ['-', 32, 32, 1, 32, 1, 32, 32]);
  assert.deepEqual(s.layers[3]!.outputShape, [1, 256]);
  assert.equal(s.layers[3]!.memoryBytes, 8192);
  assert.equal(s.other, null);
});

test('summary: resnet18 (CIFAR, xnor, ste and reactnet) — totals from the architecture formula', () => {
  // Binary 3×3 convs: [4,4,4,4] blocks, widths 64..512, stride 2 at the first block of stages 2–4.
  let bin1 = 0, macs1 = 0, real32 = 0, macs32 = 0, buffers = 0, rsignBias = 0;
  let cin = 64, hw = 32;
  // Stem: Conv3x3(3, 64) without bias + BN(64).
  real32 += 3 * 64 * 9 + 4 * 64;
  macs32 += 64 * 32 * 32 * 3 * 9;
  buffers += 2 * 64;
  for (const [s, c] of [64, 128, 256, 512].entries()) {
    for (let b = 0; b < 4; b++) {
      const stride = b === 0 && s > 0 ? 2 : 1;
      const ho = hw / stride;
      if (stride === 2) {
        // Downsample: AvgPool 2 → Conv1x1(cin, c) without bias → BN(c).
        real32 += cin * c + 4 * c;
        macs32 += c * ho * ho * cin;
        buffers += 2 * c;
      }
      bin1 += cin * c * 9;
      rsignBias += cin; // reactnet: RSign's learnable per-channel threshold on the conv input
      macs1 += c * ho * ho * cin * 9;
      real32 += 4 * c + 3 * c; // BN(c) after the binary conv + RPReLU(c): bias, PReLU slope, bias
      buffers += 2 * c;
      cin = c;
      hw = ho;
    }
  }
  real32 += 512 * 10 + 10; // FC
  macs32 += 512 * 10;
  // Spelled out: 1-bit = 4·36864 + (73728 + 3·147456) + (294912 + 3·589824) + (1179648 + 3·2359296).
  assert.equal(bin1, 10985472);
  assert.equal(macs1, 13 * 64 * 64 * 9 * 32 * 32 + 3 * 64 * 64 * 9 * 16 * 16 * 2);
  for (const method of ['xnor', 'ste']) {
    const s = summary(resnet18(methodPreset(method)), [1, 3, 32, 32]);
    assert.deepEqual(s.paramsByBits, { 1: bin1, 32: real32 }, method);
    assert.equal(real32, 209610);
    assert.equal(s.totalParams, bin1 + real32);
    assert.equal(s.nonTrainableParams, buffers);
    assert.equal(buffers, 9600);
    assert.equal(s.modelSizeBytes, bin1 / 8 + real32 * 4);
    assert.equal(s.float32SizeBytes, (bin1 + real32) * 4);
    assert.ok(Math.abs(s.compressionRatio - ((bin1 + real32) * 4) / (bin1 / 8 + real32 * 4)) < 1e-12);
    assert.deepEqual(s.macsByBits, { 1: macs1, 32: macs32 }, method);
    assert.equal(macs32, 8066048);
    assert.ok(Math.abs(s.binarizedMacRatio - macs1 / (macs1 + macs32)) < 1e-12);
    assert.equal(s.layers.filter((l) => l.type === 'BinaryConv2d').length, 16);
    assert.deepEqual(s.layers.at(-1)!.outputShape, [1, 10]);
  }
  // reactnet = xnor weights + RSign (one 32-bit bias per input channel of each binary conv)
  assert.equal(rsignBias, 4 * 64 + (64 + 3 * 128) + (128 + 3 * 256) + (256 + 3 * 512)); // 3392
  const r = summary(resnet18(methodPreset('reactnet')), [1, 3, 32, 32]);
  assert.deepEqual(r.paramsByBits, { 1: bin1, 32: real32 + rsignBias });
  assert.equal(r.totalParams, 11198474);
  assert.deepEqual(r.macsByBits, { 1: macs1, 32: macs32 });
  assert.ok(Math.abs(r.compressionRatio - 20.13) < 0.005);
});

test('summary: float kernel → 32-bit params and MACs; model state and forward are restored', () => {
  const m = new Sequential(new BinaryLinear(4, 3, { kernelQuantizer: null }), new BatchNorm1d(3));
  m.train();
  const before = m.stateDict().get('1.runningMean')!.f32().slice();
  const s = summary(m, [1, 4]);
  assert.deepEqual(s.paramsByBits, { 1: 0, 32: 12 + 4 * 3 });
  assert.deepEqual(s.macsByBits, { 1: 0, 32: 12 });
  assert.equal(s.layers[0]!.inputPrecision, 1);
  assert.equal(m.training, true);
  assert.ok(m.namedModules().every(([, x]) => x.training && !Object.hasOwn(x, 'forward')));
  assert.deepEqual(m.stateDict().get('1.runningMean')!.f32(), before);
});

test('formatSummary: MNIST mlp (ste) matches the committed snapshot', () => {
  const text = formatSummary(summary(mnistModel('mlp', methodPreset('ste')), [1, 1, 28, 28]));
  if (process.env.UPDATE_SNAPSHOTS) fs.writeFileSync(snapshot, text);
  assert.equal(text, fs.readFileSync(snapshot, 'utf8'));
});

test('cli: onebit summary --arch resnet18 --method xnor prints the tables and totals', () => {
  const r = spawnSync(process.execPath, [cli, 'summary', '--arch', 'resnet18', '--method', 'xnor'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /stage4\.3\.conv \(BinaryConv2d\)/);
  assert.match(r.stdout, /Total params\s+11195082 /);
  assert.match(r.stdout, /Non-trainable params\s+9600 /);
  assert.match(r.stdout, /Number of MACs\s+555422720 /);
  assert.match(r.stdout, /Ratio of MACs that are binarized\s+0\.9855 /);
  const bad = spawnSync(process.execPath, [cli, 'summary', '--arch', 'vgg'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /error/i);
});
