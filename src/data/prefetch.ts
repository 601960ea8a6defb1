/**
 * A DataLoader whose batches are built ahead of time in a worker thread, so random crop + flip +
 * normalization (data/augment.ts) overlaps the training step instead of running before it.
 *
 * Same synchronous `*batches()` interface and the SAME batches, bit for bit, as DataLoader with the
 * same options and generator state: the permutation and each batch's augmentation seed are drawn
 * on the calling thread, from the same generator, at the same moments as DataLoader draws them, so
 * the generator advances exactly as it would with DataLoader (also when an epoch is abandoned).
 *
 * How batches get ahead although seeds are drawn lazily: at every step the loader predicts the
 * next `depth` seeds from a copy of the generator's state (what DataLoader would draw if nothing
 * else uses the generator in between) and has the worker build those batches. When batch b is
 * asked for, its real seed is drawn; if it differs from the prediction (the training step drew
 * from the same generator, e.g. dropout on the global rng), batch b and the ones after it are
 * rebuilt from the real state; the output never depends on the prediction.
 *
 * Threads and memory: the dataset bytes are copied once into a SharedArrayBuffer per loader (or
 * used as they are when already shared); each epoch starts one worker (unref'd, so it never keeps
 * the process alive) with a fresh ring of `depth` shared output slots and a control word array;
 * the worker writes a batch into its slot and bumps an event counter; the calling thread blocks in
 * Atomics.wait only when the batch it needs is not done, then copies it out (each yielded batch
 * owns its arrays). The worker is terminated when the epoch's iteration ends, breaks or throws.
 * A worker error is rethrown on the calling thread with the worker's message; a worker that
 * stops answering for `stallTimeoutMs` is reported too. Float32 datasets have nothing to prefetch
 * and fall back to DataLoader's own loop.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { fail, OnebitError } from '../core/errors.js';
import { type Rng, Rng as RngClass, rng as globalRng } from '../core/rng.js';
import { wrap } from '../core/tensor.js';
import { type AugmentOptions, gatherAugmented } from './augment.js';
import type { Dataset } from './dataset.js';
import { type Batch, DataLoader, type DataLoaderOptions } from './loader.js';

/** Options of PrefetchLoader: DataLoader's, plus the ring depth and fault handling. */
export interface PrefetchLoaderOptions extends DataLoaderOptions {
  /** Batches built ahead (ring slots), ≥ 1; default 2. */
  depth?: number;
  /** Report a worker that made no progress for this long, in ms (default 60,000). */
  stallTimeoutMs?: number;
  /** Tests only: make the worker throw ('throw') or exit ('exit') when building batch `batch` of an epoch. */
  testFault?: { batch: number; kind: 'throw' | 'exit' };
}

/** Where the calling thread spent its time, summed over all epochs. */
export interface PrefetchStats {
  /** Batches yielded. */
  batches: number;
  /** Milliseconds blocked waiting for the worker (includes worker start-up). */
  waitMs: number;
  /** Milliseconds copying finished batches out of the ring. */
  copyMs: number;
  /** Batches rebuilt because the generator was used between batches (prediction missed). */
  rebuilt: number;
}

// Control words (Int32): event counter, error flag, error text length, worker started, then one "done id" per slot.
const EVENT = 0, ERR = 1, ERR_LEN = 2, STARTED = 3, DONE0 = 4;
const ERR_BYTES = 4096;

interface WorkerInit {
  kind: 'onebit-prefetch';
  images: SharedArrayBuffer;
  imagesOffset: number;
  imagesLength: number;
  lut: Float32Array;
  C: number;
  H: number;
  W: number;
  aug: AugmentOptions;
  order: SharedArrayBuffer;
  ctrl: SharedArrayBuffer;
  err: SharedArrayBuffer;
  slots: SharedArrayBuffer;
  slotFloats: number;
}

interface Job {
  slot: number;
  id: number;
  start: number;
  end: number;
  seed: number;
  fault?: 'throw' | 'exit';
}

/** Iterates a Dataset in mini-batches like DataLoader, building them in a worker thread. */
export class PrefetchLoader {
  readonly dataset: Dataset;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  readonly augment: AugmentOptions | undefined;
  readonly depth: number;
  /** Time accounting of the calling thread (see PrefetchStats). */
  readonly stats: PrefetchStats = { batches: 0, waitMs: 0, copyMs: 0, rebuilt: 0 };
  private readonly inner: DataLoader;
  private readonly rngOpt: Rng | undefined;
  private readonly stallMs: number;
  private readonly fault: PrefetchLoaderOptions['testFault'];
  private shared: Uint8Array | undefined;

  constructor(dataset: Dataset, opts: PrefetchLoaderOptions) {
    this.inner = new DataLoader(dataset, opts); // validates everything DataLoader validates
    const what = `PrefetchLoader(${dataset.name})`;
    const depth = opts.depth ?? 2;
    if (!Number.isInteger(depth) || depth < 1 || depth > 64) fail(what, 'depth an integer in [1, 64]', String(depth));
    const stall = opts.stallTimeoutMs ?? 60_000;
    if (!(stall > 0)) fail(what, 'stallTimeoutMs > 0', String(stall));
    this.dataset = dataset;
    this.batchSize = this.inner.batchSize;
    this.shuffle = this.inner.shuffle;
    this.dropLast = this.inner.dropLast;
    this.augment = this.inner.augment;
    this.depth = depth;
    this.rngOpt = opts.rng;
    this.stallMs = stall;
    this.fault = opts.testFault;
  }

  /** Batches per epoch: ceil(count / batchSize), or floor with dropLast. */
  get numBatches(): number {
    return this.inner.numBatches;
  }

  /** The byte → normalized float table, 256 entries per channel. */
  get byteTable(): Float32Array {
    return this.inner.byteTable;
  }

  /**
   * One epoch: exactly DataLoader's batches for the same generator state (see the file comment).
   * The worker lives while the iteration does; break out of the loop (or let it finish) to stop it.
   */
  *batches(): Generator<Batch, void, undefined> {
    const ds = this.dataset;
    if (!(ds.images instanceof Uint8Array)) {
      yield* this.inner.batches();
      return;
    }
    const count = ds.count, bs = this.batchSize, depth = this.depth, aug = this.augment;
    const per = ds.shape.reduce((a, b) => a * b, 1);
    const C = ds.shape.length >= 3 ? ds.shape[0]! : 1;
    const [H, W] = aug ? [ds.shape[1]!, ds.shape[2]!] : [1, per / C];
    const shape = [...ds.shape];

    // Exactly DataLoader's draws: the permutation at the start of iteration.
    const orderBuf = new SharedArrayBuffer(count * 4);
    const order = new Int32Array(orderBuf);
    for (let i = 0; i < count; i++) order[i] = i;
    const r = this.rngOpt ?? globalRng();
    if (this.shuffle) r.shuffle(order);
    const nb = this.numBatches;

    const slotFloats = bs * per;
    const ctrl = new Int32Array(new SharedArrayBuffer((DONE0 + depth) * 4));
    const errBuf = new SharedArrayBuffer(ERR_BYTES);
    const slots = new Float32Array(new SharedArrayBuffer(depth * slotFloats * 4));
    const images = this.sharedImages();
    const init: WorkerInit = {
      kind: 'onebit-prefetch', images: images.buffer as SharedArrayBuffer, imagesOffset: images.byteOffset, imagesLength: images.length,
      lut: this.byteTable, C, H, W, aug: aug ?? { pad: 0, flip: false }, order: orderBuf, ctrl: ctrl.buffer as SharedArrayBuffer,
      err: errBuf, slots: slots.buffer as SharedArrayBuffer, slotFloats,
    };
    const worker = new Worker(new URL(import.meta.url), { workerData: init });
    worker.unref();
    worker.on('error', () => {}); // reported through the control words; keep it from crashing the process

    try {
      // Predicted seeds: a copy of the generator that runs ahead of it.
      const pred = new RngClass(0);
      pred.setState(r.getState());
      const seeds = new Float64Array(nb);
      const jobIds = new Int32Array(nb);
      let nextId = 1, submitted = 0;
      const submit = (b: number, seed: number): void => {
        seeds[b] = seed;
        jobIds[b] = nextId++;
        const start = b * bs;
        const job: Job = { slot: b % depth, id: jobIds[b]!, start, end: Math.min(start + bs, count), seed };
        if (this.fault && this.fault.batch === b) job.fault = this.fault.kind;
        worker.postMessage(job);
      };
      for (; submitted < Math.min(depth, nb); submitted++) submit(submitted, aug ? pred.nextU32() : 0);

      for (let b = 0; b < nb; b++) {
        const start = b * bs, end = Math.min(start + bs, count), B = end - start;
        if (aug) {
          const seed = r.nextU32(); // the draw DataLoader makes for this batch
          if (seed !== seeds[b]) {
            // The generator was used since the prediction: rebuild b and everything queued after it.
            pred.setState(r.getState());
            submit(b, seed);
            for (let k = b + 1; k < submitted; k++) submit(k, pred.nextU32());
            this.stats.rebuilt += submitted - b;
          }
        }
        this.waitFor(ctrl, errBuf, DONE0 + (b % depth), jobIds[b]!);
        const t0 = performance.now();
        const off = (b % depth) * slotFloats;
        const x = slots.slice(off, off + B * per);
        this.stats.copyMs += performance.now() - t0;
        if (submitted < nb) {
          submit(submitted, aug ? pred.nextU32() : 0);
          submitted++;
        }
        const indices = order.slice(start, end);
        const y = new Int32Array(B);
        for (let i = 0; i < B; i++) y[i] = ds.labels[indices[i]!]!;
        this.stats.batches++;
        yield { x: wrap(x, [B, ...shape]), y, indices };
      }
    } finally {
      void worker.terminate();
    }
  }

  /** The dataset bytes in shared memory: the dataset's own array if already shared, else one copy. */
  private sharedImages(): Uint8Array {
    const img = this.dataset.images as Uint8Array;
    if (img.buffer instanceof SharedArrayBuffer) return img;
    if (!this.shared) {
      this.shared = new Uint8Array(new SharedArrayBuffer(img.length));
      this.shared.set(img);
    }
    return this.shared;
  }

  /** Block until control word `word` holds `id`; rethrow a worker error; report a stalled worker. */
  private waitFor(ctrl: Int32Array, errBuf: SharedArrayBuffer, word: number, id: number): void {
    if (Atomics.load(ctrl, word) === id) return;
    const t0 = performance.now();
    let last = t0;
    for (;;) {
      const ev = Atomics.load(ctrl, EVENT);
      if (Atomics.load(ctrl, word) === id) break;
      if (Atomics.load(ctrl, ERR) !== 0) {
        const len = Atomics.load(ctrl, ERR_LEN);
        const text = new TextDecoder().decode(new Uint8Array(errBuf).slice(0, len));
        this.stats.waitMs += performance.now() - t0;
        throw new OnebitError(`PrefetchLoader(${this.dataset.name}): expected the worker thread to build the batch, but it failed: ${text}`);
      }
      const res = Atomics.wait(ctrl, EVENT, ev, Math.min(1000, this.stallMs));
      const now = performance.now();
      if (res !== 'timed-out') last = now;
      else if (now - last >= this.stallMs) {
        this.stats.waitMs += now - t0;
        throw new OnebitError(`PrefetchLoader(${this.dataset.name}): expected the worker thread to build the batch, but it made no progress for ${Math.round(now - last)} ms (waiting for job ${id} in slot ${word - DONE0}; worker ${Atomics.load(ctrl, STARTED) ? 'started' : 'not started'}, ${Atomics.load(ctrl, EVENT)} batches signalled, slots at jobs [${Array.from(ctrl.subarray(DONE0)).join(', ')}]). Use DataLoader instead to build batches on this thread.`);
      }
    }
    this.stats.waitMs += performance.now() - t0;
  }
}

/** The worker side: build each requested batch into its slot, then signal. */
function runWorker(d: WorkerInit): void {
  const images = new Uint8Array(d.images, d.imagesOffset, d.imagesLength);
  const order = new Int32Array(d.order);
  const ctrl = new Int32Array(d.ctrl);
  const slots = new Float32Array(d.slots);
  const signal = (): void => {
    Atomics.add(ctrl, EVENT, 1);
    Atomics.notify(ctrl, EVENT);
  };
  const report = (text: string): void => {
    if (Atomics.load(ctrl, ERR) !== 0) return;
    const bytes = new TextEncoder().encode(text).subarray(0, ERR_BYTES);
    new Uint8Array(d.err).set(bytes);
    Atomics.store(ctrl, ERR_LEN, bytes.length);
    Atomics.store(ctrl, ERR, 1);
    signal();
  };
  process.on('exit', (code) => report(`the worker thread exited (code ${code})`));
  Atomics.store(ctrl, STARTED, 1);
  parentPort!.on('message', (job: Job) => {
    try {
      if (job.fault === 'exit') process.exit(3);
      if (job.fault === 'throw') throw new Error(`test fault at batch slot ${job.slot}`);
      const idx = order.subarray(job.start, job.end);
      const off = job.slot * d.slotFloats;
      gatherAugmented(images, d.C, d.H, d.W, idx, d.lut, d.aug, job.seed, slots.subarray(off, off + idx.length * d.C * d.H * d.W));
      Atomics.store(ctrl, DONE0 + job.slot, job.id);
      signal();
    } catch (e) {
      report(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
    }
  });
}

if (!isMainThread && (workerData as WorkerInit | undefined)?.kind === 'onebit-prefetch') runWorker(workerData as WorkerInit);
