import '../src/index.js';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { methodNames, methodPreset } from '../src/models/methods.js';
import { buildModel } from '../src/models/index.js';
import { train } from '../src/train/trainer.js';
import type { TrainConfig } from '../src/train/config.js';
import { BinaryLinear } from '../src/nn/binary.js';

test('every method preset wires the quantizers and non-linearity it names', () => {
  for (const name of methodNames()) {
    const p = methodPreset(name);
    const model = buildModel({ dataset: 'mnist', arch: 'mlp', method: name, hidden: 16 });
    const bins = model.namedModules().map(([, m]) => m).filter((m): m is BinaryLinear => m instanceof BinaryLinear);
    assert.equal(bins.length, 2, name);
    for (const b of bins) {
      assert.equal(b.inputQuantizer?.alias, p.inputQuantizer.alias, name);
      assert.equal(b.kernelQuantizer?.alias, p.kernelQuantizer.alias, name);
    }
    // top-level layers of the Sequential that are the preset's non-linearity (one after each of the 3 BNs)
    const acts = model.namedModules().filter(([n, m]) => !n.includes('.') && ['RPReLU', 'Maxout', 'PReLU'].includes(m.constructor.name));
    const expected = { none: 0, prelu: 3, rprelu: 3, maxout: 3 }[p.activation];
    assert.equal(acts.length, expected, `${name}: ${acts.map(([n]) => n)}`);
  }
});

// Stateful quantizers (EDE t/k, RSign bias, SA-BNN τ±, AdaBin α/β, ReBNN scale + previous signs)
// must come back from a checkpoint exactly: a resumed run equals an uninterrupted one, bit for bit.
for (const method of methodNames()) {
  test(`${method}: trains (finite loss, flips) and resumes bit-identically`, () => {
    const cfg: Partial<TrainConfig> = { method, epochs: 2, batchSize: 50, hidden: 16, trainSubset: 300, testSubset: 100, seed: 2, lr: 0.01 };
    const a = train(cfg, {});
    assert.ok(a.history.every((h) => Number.isFinite(h.loss) && h.flipRate >= 0), JSON.stringify(a.history.map((h) => h.loss)));
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'onebit-method-'));
    train(cfg, { outDir: out, stopAfterEpochs: 1 });
    const b = train({}, { outDir: out, resume: path.join(out, 'last.ckpt') });
    assert.deepEqual(b.history.map((h) => h.loss), a.history.map((h) => h.loss));
    assert.deepEqual(b.history.map((h) => h.flipRate), a.history.map((h) => h.flipRate));
    fs.rmSync(out, { recursive: true, force: true });
  });
}

test('rebnn: the reconstruction term is part of the logged loss', () => {
  const r = train({ method: 'rebnn', epochs: 1, batchSize: 50, hidden: 16, trainSubset: 200, testSubset: 50, seed: 1, lr: 0.01 }, {});
  assert.ok(r.history[0]!.auxLoss > 0, `aux ${r.history[0]!.auxLoss}`);
  const s = train({ method: 'ste', epochs: 1, batchSize: 50, hidden: 16, trainSubset: 200, testSubset: 50, seed: 1, lr: 0.01 }, {});
  assert.equal(s.history[0]!.auxLoss, 0);
});
