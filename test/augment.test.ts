import '../src/index.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { OnebitError } from '../src/core/errors.js';
import { manualSeed, Rng, rng } from '../src/core/rng.js';
import { gatherAugmented, type AugmentOptions } from '../src/data/augment.js';
import type { Dataset } from '../src/data/dataset.js';
import { type Batch, DataLoader, type DataLoaderOptions } from '../src/data/loader.js';
import { PrefetchLoader, type PrefetchLoaderOptions } from '../src/data/prefetch.js';

function bytes(n: number, seed: number): Uint8Array {
  const r = new Rng(seed);
  return Uint8Array.from({ length: n }, () => r.nextU32() & 255);
}

/** A lut whose every entry differs (per channel), so a wrong channel or pixel shows. */
function lutFor(C: number): Float32Array {
  const lut = new Float32Array(256 * C);
  for (let i = 0; i < lut.length; i++) lut[i] = Math.fround(i * 0.37 - 100);
  return lut;
}

/**
 * Naive RandomCrop + flip: zero-pad the byte image by p, cut the H×W window whose top-left corner
 * is (dy + p, dx + p) in the padded image, mirror it if flip, then map bytes through the lut.
 */
function naive(img: Uint8Array, C: number, H: number, W: number, p: number, dy: number, dx: number, flip: boolean, lut: Float32Array): Float32Array {
  const PH = H + 2 * p, PW = W + 2 * p;
  const padded = new Uint8Array(C * PH * PW);
  for (let c = 0; c < C; c++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) padded[(c * PH + y + p) * PW + x + p] = img[(c * H + y) * W + x]!;
  const out = new Float32Array(C * H * W);
  for (let c = 0; c < C; c++) {
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const cx = flip ? W - 1 - x : x;
        out[(c * H + y) * W + x] = lut[c * 256 + padded[(c * PH + y + dy + p) * PW + cx + dx + p]!]!;
      }
    }
  }
  return out;
}

/** The documented draws: per example dy, dx (when pad > 0) then the flip bit (when flip). */
function draws(seed: number, n: number, aug: AugmentOptions): { dy: number; dx: number; flip: boolean }[] {
  const r = new Rng(seed), p = aug.pad, out = [];
  for (let i = 0; i < n; i++) {
    const dy = p ? r.int(2 * p + 1) - p : 0;
    const dx = p ? r.int(2 * p + 1) - p : 0;
    const flip = aug.flip ? r.nextU32() >>> 31 === 1 : false;
    out.push({ dy, dx, flip });
  }
  return out;
}

test('gatherAugmented matches a naive pad-crop-flip on every offset, flipped and not', () => {
  for (const [C, H, W, pad, flip, n] of [[3, 5, 7, 2, true, 600], [1, 4, 4, 3, true, 900], [2, 6, 5, 1, false, 200]] as const) {
    const N = 13, per = C * H * W;
    const images = bytes(N * per, C * 100 + H), lut = lutFor(C);
    const aug = { pad, flip };
    const indices = Int32Array.from({ length: n }, (_, i) => (i * 7 + 3) % N);
    const seed = 1234 + pad;
    const x = gatherAugmented(images, C, H, W, indices, lut, aug, seed);
    const params = draws(seed, n, aug);
    const seen = new Set<string>();
    params.forEach(({ dy, dx, flip: f }, i) => {
      seen.add(`${dy},${dx},${f}`);
      const want = naive(images.subarray(indices[i]! * per, (indices[i]! + 1) * per), C, H, W, pad, dy, dx, f, lut);
      assert.deepEqual(x.subarray(i * per, (i + 1) * per), want, `example ${i} (dy ${dy}, dx ${dx}, flip ${f}) of ${C}x${H}x${W} pad ${pad}`);
    });
    assert.equal(seen.size, (2 * pad + 1) ** 2 * (flip ? 2 : 1), 'every offset and flip state was exercised');
  }
});

test('gatherAugmented: pad 0 without flip is the plain lookup; same seed same batch; writes into out', () => {
  const C = 3, H = 4, W = 6, per = C * H * W, N = 5;
  const images = bytes(N * per, 9), lut = lutFor(C);
  const idx = [4, 0, 2, 2];
  const plain = gatherAugmented(images, C, H, W, idx, lut, { pad: 0, flip: false }, 77);
  idx.forEach((j, i) => {
    for (let k = 0; k < per; k++) assert.equal(plain[i * per + k], lut[Math.floor(k / (H * W)) * 256 + images[j * per + k]!]);
  });
  assert.deepEqual(gatherAugmented(images, C, H, W, idx, lut, { pad: 0, flip: false }, 78), plain, 'identity ignores the seed');
  const a = gatherAugmented(images, C, H, W, idx, lut, { pad: 2, flip: true }, 5);
  assert.deepEqual(gatherAugmented(images, C, H, W, idx, lut, { pad: 2, flip: true }, 5), a);
  assert.notDeepEqual(gatherAugmented(images, C, H, W, idx, lut, { pad: 2, flip: true }, 6), a);
  const out = new Float32Array(idx.length * per + 3).fill(42);
  assert.equal(gatherAugmented(images, C, H, W, idx, lut, { pad: 2, flip: true }, 5, out), out);
  assert.deepEqual(out.subarray(0, a.length), a);
  assert.equal(out[a.length], 42, 'nothing written past the batch');
});

/** A uint8 [C,H,W] dataset with labels 0..9. */
function imageSet(count: number, C = 3, H = 8, W = 8, name = 'tiny'): Dataset {
  return { name, images: bytes(count * C * H * W, count + C), labels: Uint8Array.from({ length: count }, (_, i) => (i * 3) % 10), count, shape: [C, H, W], numClasses: 10 };
}

function collect(it: Iterable<Batch>, between?: () => void): { x: Float32Array; y: Int32Array; indices: Int32Array; shape: number[] }[] {
  const out = [];
  for (const b of it) {
    out.push({ x: Float32Array.from(b.x.values() as Float32Array), y: b.y, indices: b.indices, shape: [...b.x.shape] });
    between?.();
  }
  return out;
}

const norm = { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] };
const augOpts = (seed: number, extra: Partial<PrefetchLoaderOptions> = {}): PrefetchLoaderOptions => ({
  batchSize: 8, shuffle: true, normalize: norm, augment: { pad: 2, flip: true }, rng: new Rng(seed), ...extra,
});

test('DataLoader with augment: same seed gives the same batches, another seed others; the rng advances by permutation + one draw per batch', () => {
  const ds = imageSet(50);
  const a = new DataLoader(ds, augOpts(7)), b = new DataLoader(ds, augOpts(7)), c = new DataLoader(ds, augOpts(8));
  for (let epoch = 0; epoch < 2; epoch++) {
    const ba = collect(a.batches()), bb = collect(b.batches()), bc = collect(c.batches());
    assert.equal(ba.length, 7);
    assert.deepEqual(ba, bb);
    assert.notDeepEqual(ba.map((q) => q.x), bc.map((q) => q.x));
    assert.deepEqual(ba.at(-1)!.shape, [2, 3, 8, 8]);
  }
  const r = new Rng(11), ref = new Rng(11);
  collect(new DataLoader(ds, augOpts(0, { rng: r })).batches());
  ref.shuffle(Int32Array.from({ length: 50 }, (_, i) => i));
  for (let i = 0; i < 7; i++) ref.nextU32();
  assert.deepEqual(r.getState(), ref.getState());
  // augment { pad: 0, flip: false } is the same as no augment (and draws nothing extra).
  const plain = collect(new DataLoader(ds, augOpts(3, { augment: undefined })).batches());
  assert.deepEqual(collect(new DataLoader(ds, augOpts(3, { augment: { pad: 0, flip: false } })).batches()), plain);
});

const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));
const block = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
/** Let the event loop run until the loader's worker has booted (slow on a loaded machine). */
async function untilRunning(p: PrefetchLoader): Promise<void> {
  for (let i = 0; i < 200 && !p.workerRunning(); i++) await sleep(25);
  assert.ok(p.workerRunning(), 'the worker started within 5 s');
}

test('PrefetchLoader: identical batches and rng advance to DataLoader, for depths 1-3, over two epochs', () => {
  const ds = imageSet(50);
  for (const depth of [1, 2, 3]) {
    const rd = new Rng(21), rp = new Rng(21);
    const d = new DataLoader(ds, augOpts(0, { rng: rd }));
    const p = new PrefetchLoader(ds, { ...augOpts(0, { rng: rp }), depth });
    assert.equal(p.numBatches, d.numBatches);
    for (let epoch = 0; epoch < 2; epoch++) {
      assert.deepEqual(collect(p.batches()), collect(d.batches()), `depth ${depth} epoch ${epoch}`);
      assert.deepEqual(rp.getState(), rd.getState());
    }
    assert.equal(p.stats.batches, 14);
    assert.equal(p.stats.rerequested, 0);
  }
});

test('PrefetchLoader: still identical when the consumer draws from the same rng between batches', async () => {
  const ds = imageSet(50);
  const rd = new Rng(5), rp = new Rng(5);
  const d = collect(new DataLoader(ds, augOpts(0, { rng: rd })).batches(), () => rd.normal());
  const pl = new PrefetchLoader(ds, { ...augOpts(0, { rng: rp }), depth: 3 });
  const it = pl.batches();
  const p = [];
  for (let r = it.next(); !r.done; r = it.next()) {
    p.push({ x: Float32Array.from(r.value.x.values() as Float32Array), y: r.value.y, indices: r.value.indices, shape: [...r.value.x.shape] });
    if (p.length === 1) await untilRunning(pl);
    rp.normal();
    block(5);
  }
  assert.deepEqual(p, d);
  assert.deepEqual(rp.getState(), rd.getState());
  assert.ok(pl.stats.rerequested > 0, 'the predicted batches were requested again');
});

test('PrefetchLoader: global rng, no shuffle, no augment, a float dataset and an abandoned epoch match DataLoader', () => {
  const ds = imageSet(30, 1, 5, 5);
  manualSeed(9);
  const d = collect(new DataLoader(ds, { batchSize: 7, shuffle: true, augment: { pad: 1, flip: true } }).batches());
  const sd = rng().getState();
  manualSeed(9);
  assert.deepEqual(collect(new PrefetchLoader(ds, { batchSize: 7, shuffle: true, augment: { pad: 1, flip: true } }).batches()), d);
  assert.deepEqual(rng().getState(), sd);

  const plainOpts = { batchSize: 4, shuffle: false, dropLast: true };
  assert.deepEqual(collect(new PrefetchLoader(ds, plainOpts).batches()), collect(new DataLoader(ds, plainOpts).batches()));
  const fl: Dataset = { ...ds, images: Float32Array.from(ds.images, (v) => v / 255) };
  assert.deepEqual(collect(new PrefetchLoader(fl, plainOpts).batches()), collect(new DataLoader(fl, plainOpts).batches()));

  // Break after 2 batches: the generator advanced exactly as far as DataLoader's.
  const rd = new Rng(4), rp = new Rng(4);
  const take2 = (it: Iterable<Batch>): Batch[] => {
    const out: Batch[] = [];
    for (const b of it) if (out.push(b) === 2) break;
    return out;
  };
  const big = imageSet(60);
  const bd = take2(new DataLoader(big, augOpts(0, { rng: rd })).batches());
  const bp = take2(new PrefetchLoader(big, { ...augOpts(0, { rng: rp }), depth: 3 }).batches());
  assert.deepEqual(bp.map((b) => b.x.values()), bd.map((b) => b.x.values()));
  assert.deepEqual(rp.getState(), rd.getState());
  assert.throws(() => new PrefetchLoader(big, { ...augOpts(0), depth: 0 }), /depth an integer in \[1, 64\]/);
});

test('PrefetchLoader: with a slower consumer the worker builds the batches ahead, still identical', async () => {
  const ds = imageSet(56);
  const d = collect(new DataLoader(ds, augOpts(13)).batches());
  const p = new PrefetchLoader(ds, { ...augOpts(13), depth: 2 });
  const it = p.batches();
  const got: Batch[] = [];
  for (let r = it.next(); !r.done; r = it.next()) {
    got.push(r.value);
    if (got.length === 1) await untilRunning(p); // batches before that are built on this thread
    block(25); // a training step
  }
  assert.deepEqual(got.map((b) => ({ x: Float32Array.from(b.x.values() as Float32Array), y: b.y, indices: b.indices, shape: [...b.x.shape] })), d);
  assert.ok(p.stats.fromWorker >= 3, `worker built ${p.stats.fromWorker} of 7 batches`);
  assert.equal(p.workerRunning(), false, 'the worker is gone after the epoch');
});

test('PrefetchLoader: a worker error or exit surfaces on the calling thread', async () => {
  const ds = imageSet(40);
  for (const [kind, pattern] of [['throw', /test fault/], ['exit', /exited \(code 3\)/]] as const) {
    const p = new PrefetchLoader(ds, { ...augOpts(1), testFault: { batch: 2, kind } });
    const it = p.batches();
    let got = 1;
    assert.equal(it.next().done, false);
    await untilRunning(p);
    await sleep(200); // the worker receives the job of batch 2 (sent once batch 0 was taken)
    assert.throws(() => {
      for (let r = it.next(); !r.done; r = it.next()) got++;
    }, (e: unknown) => {
      assert.ok(e instanceof OnebitError, String(e));
      assert.match(e.message, /worker thread/);
      assert.match(e.message, pattern, kind);
      return true;
    });
    assert.ok(got <= 2, `${kind}: the error came at batch ${got + 1}`);
  }
});

test('PrefetchLoader: a script that finishes, breaks or abandons an epoch exits on its own', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'onebit-prefetch-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const mod = pathToFileURL(join(import.meta.dirname, '../src/data/prefetch.js')).href;
  const script = join(dir, 'use.mjs');
  writeFileSync(script, `
import { PrefetchLoader } from ${JSON.stringify(mod)};
const count = 40, per = 3 * 8 * 8;
const ds = { name: 's', images: new Uint8Array(count * per).map((_, i) => i & 255), labels: new Uint8Array(count), count, shape: [3, 8, 8], numClasses: 10 };
const p = new PrefetchLoader(ds, { batchSize: 8, shuffle: true, augment: { pad: 2, flip: true }, stallTimeoutMs: 5000 });
let n = 0;
for (const _ of p.batches()) n++;           // finished
for (const _ of p.batches()) { n++; break; } // broken off
const it = p.batches(); it.next(); n++;      // abandoned: never finished nor returned
console.log('done ' + n);
`);
  const res = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(res.signal, null, 'the script did not hang');
  assert.equal(res.status, 0, res.stderr);
  assert.equal(res.stdout.trim(), 'done 7');
});
