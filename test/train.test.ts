import '../src/index.js';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { train, loadTrainedModel } from '../src/train/trainer.js';
import { loadCheckpoint } from '../src/train/checkpoint.js';
import type { TrainConfig } from '../src/train/config.js';

// A small, fast config: 600 MNIST images, a narrow binary MLP.
const small: Partial<TrainConfig> = { epochs: 3, batchSize: 50, hidden: 32, trainSubset: 600, testSubset: 500, seed: 5, lr: 0.01 };
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'onebit-train-'));

test('train: learns something, logs flip rates, writes checkpoints and metrics', () => {
  const out = tmp();
  const r = train(small, { outDir: out });
  assert.equal(r.history.length, 3);
  const [first, , last] = r.history;
  assert.ok(last!.loss < first!.loss, `loss ${first!.loss} -> ${last!.loss}`);
  assert.ok(last!.testAcc > 0.5, `test acc ${last!.testAcc}`);
  for (const h of r.history) {
    assert.ok(h.flipRate > 0 && h.flipRate < 0.5, `flip rate ${h.flipRate}`);
    assert.deepEqual(Object.keys(h.flipRateLayers), ['3', '5']);
  }
  assert.ok(fs.existsSync(path.join(out, 'last.ckpt')) && fs.existsSync(path.join(out, 'best.ckpt')));
  const lines = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n');
  assert.equal(lines.length, 3);
  assert.equal(JSON.parse(lines[2]!).epoch, 3);
  const { model, meta } = loadTrainedModel(path.join(out, 'last.ckpt'));
  assert.equal(meta.epoch, 3);
  assert.deepEqual(Array.from(model.parameters()[0]!.f32()), Array.from(r.model.parameters()[0]!.f32()));
  fs.rmSync(out, { recursive: true, force: true });
});

test('train: same seed → bit-identical runs; resume after an interruption equals the uninterrupted run', () => {
  const a = train(small, {});
  const b = train(small, {});
  assert.deepEqual(a.history.map((h) => h.loss), b.history.map((h) => h.loss));

  const out = tmp();
  const part = train(small, { outDir: out, stopAfterEpochs: 1 });
  assert.equal(part.history.length, 1);
  assert.equal((loadCheckpoint(path.join(out, 'last.ckpt')).meta as { epoch: number }).epoch, 1);
  const rest = train({}, { outDir: out, resume: path.join(out, 'last.ckpt') });
  assert.deepEqual(rest.history.map((h) => h.loss), a.history.map((h) => h.loss)); // bit-identical floats
  assert.deepEqual(rest.history.map((h) => h.flipRate), a.history.map((h) => h.flipRate));
  assert.deepEqual(rest.history.map((h) => h.oscillationRate), a.history.map((h) => h.oscillationRate));
  assert.deepEqual(rest.history.map((h) => h.initFlip), a.history.map((h) => h.initFlip));
  const flipLines = fs.readFileSync(path.join(out, 'flips.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(flipLines.map((l) => l.epoch), [1, 2, 3]);
  assert.equal(flipLines[2].frSteps.length, 12); // 600 images / batch 50
  assert.deepEqual(Object.keys(flipLines[2].layers), ['3', '5']);
  assert.equal(flipLines[2].layers['3'].hist.counts.reduce((x: number, y: number) => x + y, 0), 32 * 32);
  assert.deepEqual(Array.from(rest.model.parameters()[2]!.f32()), Array.from(a.model.parameters()[2]!.f32()));
  fs.rmSync(out, { recursive: true, force: true });
});

test('train: a different seed gives a different run; bad config values give one clear error', () => {
  const a = train({ ...small, epochs: 1 }, {});
  const c = train({ ...small, epochs: 1, seed: 6 }, {});
  assert.notEqual(a.history[0]!.loss, c.history[0]!.loss);
  assert.throws(() => train({ ...small, epochs: 0 }), /--epochs: expected a positive integer, but got 0/);
  assert.throws(() => train({ ...small, method: 'magic' }), /--method: expected one of ste, xnor/);
  assert.throws(() => train({ ...small, lr: -1 }), /--lr: expected a positive number/);
});

test('train: the cnn architecture (real conv stem, binary conv, binary dense) trains and resumes', () => {
  const cfg: Partial<TrainConfig> = { arch: 'cnn', epochs: 2, batchSize: 20, trainSubset: 60, testSubset: 20, seed: 1, lr: 0.01 };
  const a = train(cfg, {});
  assert.equal(a.history.length, 2);
  assert.ok(a.history.every((h) => Number.isFinite(h.loss) && h.flipRate > 0));
  assert.deepEqual(Object.keys(a.history[0]!.flipRateLayers), ['3', '7']);
  const out = tmp();
  train(cfg, { outDir: out, stopAfterEpochs: 1 });
  const b = train({}, { outDir: out, resume: path.join(out, 'last.ckpt') });
  assert.deepEqual(b.history.map((h) => h.loss), a.history.map((h) => h.loss));
  fs.rmSync(out, { recursive: true, force: true });
});
