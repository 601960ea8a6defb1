import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OnebitError } from '../src/core/errors.js';
import { checkCifar10Dir, CIFAR10_FILES, CIFAR10_RECORD_BYTES, loadCifar10 } from '../src/data/cifar.js';

const REAL = '/work/shared/datasets/cifar-10-batches-bin';
const ALL = [...CIFAR10_FILES.train, ...CIFAR10_FILES.test];

/** Record r of file f: label (f + 3r) % 10, pixel k = (f·31 + r·7 + k) & 255. */
function record(f: number, r: number): Uint8Array {
  const b = new Uint8Array(CIFAR10_RECORD_BYTES);
  b[0] = (f + 3 * r) % 10;
  for (let k = 0; k < 3072; k++) b[1 + k] = (f * 31 + r * 7 + k) & 255;
  return b;
}

function fileBytes(f: number, records: number): Uint8Array {
  const out = new Uint8Array(records * CIFAR10_RECORD_BYTES);
  for (let r = 0; r < records; r++) out.set(record(f, r), r * CIFAR10_RECORD_BYTES);
  return out;
}

/** A temp folder with all six batch files of `records` records each. */
function fakeDir(records: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'onebit-cifar-'));
  ALL.forEach((name, f) => writeFileSync(join(dir, name), fileBytes(f, records)));
  return dir;
}

function throwsOnebit(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof OnebitError, `expected OnebitError, got ${String(e)}`);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

test('loadCifar10: images [count,3,32,32] and labels in record order across files', (t) => {
  const dir = fakeDir(3);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const train = loadCifar10('train', dir, { recordsPerFile: 3 });
  assert.equal(train.count, 15);
  assert.deepEqual(train.shape, [3, 32, 32]);
  assert.equal(train.images.length, 15 * 3072);
  assert.equal(train.classNames?.length, 10);
  for (let f = 0; f < 5; f++) {
    for (let r = 0; r < 3; r++) {
      const i = f * 3 + r, rec = record(f, r);
      assert.equal(train.labels[i], rec[0]);
      assert.deepEqual(train.images.subarray(i * 3072, (i + 1) * 3072), rec.subarray(1));
    }
  }
  // The red plane comes first, then green, then blue: pixel (c, y, x) is byte 1 + c·1024 + y·32 + x.
  assert.equal(train.images[4 * 3072 + 2 * 1024 + 5 * 32 + 7], record(1, 1)[1 + 2 * 1024 + 5 * 32 + 7]);
  const testSplit = loadCifar10('test', dir, { recordsPerFile: 3 });
  assert.equal(testSplit.count, 3);
  assert.equal(testSplit.name, 'cifar10-test');
  assert.equal(testSplit.labels[2], record(5, 2)[0]);
  assert.equal(checkCifar10Dir(dir, { recordsPerFile: 3 }), dir);
});

test('loadCifar10: the default is strict 10,000 records per file', (t) => {
  const dir = fakeDir(2);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  throwsOnebit(() => loadCifar10('test', dir), /test_batch\.bin/, /expected 30730000 bytes \(10000 records of 3073\)/, /got 6146 bytes/, /truncated/);
  throwsOnebit(() => loadCifar10('test', dir, { recordsPerFile: 0 }), /recordsPerFile a positive integer/);
});

test('loadCifar10: truncated, oversized, foreign and missing files each give one clear error', (t) => {
  const dir = fakeDir(3);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const opts = { recordsPerFile: 3 };
  writeFileSync(join(dir, 'data_batch_3.bin'), fileBytes(2, 3).subarray(0, 3 * 3073 - 100));
  throwsOnebit(() => loadCifar10('train', dir, opts), /data_batch_3\.bin/, /expected 9219 bytes \(3 records of 3073\)/, /got 9119 bytes/, /truncated/);
  throwsOnebit(() => checkCifar10Dir(dir, opts), /data_batch_3\.bin/, /9219 bytes/);

  // CIFAR-100's records are 3,074 bytes (coarse + fine label): wrong size.
  writeFileSync(join(dir, 'data_batch_3.bin'), new Uint8Array(3 * 3074));
  throwsOnebit(() => loadCifar10('train', dir, opts), /data_batch_3\.bin/, /expected 9219 bytes/, /got 9222 bytes/, /binary version/);

  writeFileSync(join(dir, 'data_batch_3.bin'), fileBytes(2, 3));
  const foreign = fileBytes(5, 3);
  foreign[CIFAR10_RECORD_BYTES] = 12; // label of record 1
  writeFileSync(join(dir, 'test_batch.bin'), foreign);
  loadCifar10('train', dir, opts); // the train split is intact
  throwsOnebit(() => loadCifar10('test', dir, opts), /test_batch\.bin/, /label bytes in 0\.\.9/, /12 in record 1/);

  rmSync(join(dir, 'data_batch_5.bin'));
  throwsOnebit(() => loadCifar10('train', dir, opts), /data_batch_5\.bin/, /the CIFAR-10 file data_batch_5\.bin \(9219 bytes\)/, /no such file/, /--data-dir/);
  throwsOnebit(() => loadCifar10('train', join(dir, 'nope')), /data_batch_1\.bin \(30730000 bytes\)/, /no such file/);
  throwsOnebit(() => loadCifar10('valid' as 'train', dir), /split 'train' or 'test'/);
});

test('loadCifar10: the real dataset has 50,000 / 10,000 images, 5,000 / 1,000 per class', { skip: existsSync(REAL) ? false : `no dataset at ${REAL}` }, () => {
  for (const [split, count, perClass] of [['test', 10000, 1000], ['train', 50000, 5000]] as const) {
    const ds = loadCifar10(split, REAL);
    assert.equal(ds.count, count);
    assert.equal(ds.images.length, count * 3072);
    const hist = new Array<number>(10).fill(0);
    for (const l of ds.labels) hist[l]!++;
    assert.deepEqual(hist, new Array<number>(10).fill(perClass));
  }
});
