/**
 * A DataLoader whose batches are built ahead of time in a worker thread, so random crop + flip +
 * normalization (data/augment.ts) overlaps the training step instead of running before it.
 *
 * Same synchronous `*batches()` interface and the SAME batches, bit for bit, as DataLoader with the
 * same options and generator state: the permutation and each batch's augmentation seed are drawn
 * on the calling thread, from the same generator, at the same moments as DataLoader draws them, so
 * the generator advances exactly as it would with DataLoader (also when an epoch is abandoned).
 *
 * How batches get ahead although seeds are drawn lazily: the loader predicts the next `depth`
 * seeds from a copy of the generator's state (what DataLoader will draw if nothing else uses the
 * generator in between) and has the worker build those batches. When batch b is asked for, its
 * real seed is drawn; if it differs from the prediction (the training step drew from the same
 * generator, e.g. Dropout on the global rng), batch b and the ones queued after it are requested
 * again from the real state. The output never depends on the prediction, only the speed does.
 *
 * Threads and memory: the dataset bytes are copied once per loader into a SharedArrayBuffer (or
 * used as they are when already shared). Each epoch starts one worker (unref'd: it never keeps the
 * process alive) with a fresh ring of `depth` shared output slots and control words. Every job
 * (one batch into one slot) is claimed by compare-and-swap, by the worker when it starts it, or by
 * the calling thread when it needs a batch the worker has not started (worker still booting, or
 * behind): then the calling thread builds it itself. So the calling thread blocks in Atomics.wait
 * only while the worker is finishing the very batch it needs, and never waits on a worker that is
 * not running. Finished batches are copied out of the ring (each yielded batch owns its arrays).
 * The worker is terminated when the epoch's iteration ends, breaks or throws.
 *
 * A worker error is rethrown on the calling thread with the worker's message (at the next batch);
 * a worker that holds a claimed batch for `stallTimeoutMs` without finishing it is reported too.
 * Float32 datasets have nothing to prefetch and use DataLoader's own loop.
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
  /** Batches built ahead (ring slots), 1..64; default 2. */
  depth?: number;
  /** Report a worker that holds a batch this long without finishing it, in ms (default 60,000). */
  stallTimeoutMs?: number;
  /** Tests only: the worker throws ('throw') or exits ('exit') when it receives batch `batch` of an epoch. */
  testFault?: { batch: number; kind: 'throw' | 'exit' };
}

/** Where the calling thread spent its time, summed over all epochs. */
export interface PrefetchStats {
  /** Batches yielded. */
  batches: number;
  /** Batches the worker had ready or was finishing (the rest were built on the calling thread). */
  fromWorker: number;
  /** Milliseconds blocked waiting for the worker to finish a batch. */
  waitMs: number;
  /** Milliseconds building batches on the calling thread (the worker had not started them). */
  buildMs: number;
  /** Milliseconds copying finished batches out of the ring. */
  copyMs: number;
  /** Batch requests repeated because the generator was used between batches (prediction missed). */
  rerequested: number;
}

// Control words (Int32): event counter, error flag, error text length, worker running; then per
// slot the id of the job requested, claimed and done.
const EVENT = 0, ERR = 1, ERR_LEN = 2, RUNNING = 3, HEAD = 4;
const ERR_BYTES = 4096;
const req = (s: number): number => HEAD + 3 * s;
const claim = (s: number): number => HEAD + 3 * s + 1;
const done = (s: number): number => HEAD + 3 * s + 2;

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

/** One epoch's shared state (fresh per epoch, so a terminated worker can never touch the next). */
interface Epoch {
  worker: Worker;
  ctrl: Int32Array;
  err: Uint8Array;
  slots: Float32Array;
  slotFloats: number;
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
  readonly stats: PrefetchStats = { batches: 0, fromWorker: 0, waitMs: 0, buildMs: 0, copyMs: 0, rerequested: 0 };
  private readonly inner: DataLoader;
  private readonly rngOpt: Rng | undefined;
  private readonly stallMs: number;
  private readonly fault: PrefetchLoaderOptions['testFault'];
  private shared: Uint8Array | undefined;
  private current: Epoch | undefined;

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

  /** Whether the worker of the epoch being iterated has started (booting takes ~50-400 ms). */
  workerRunning(): boolean {
    return this.current !== undefined && Atomics.load(this.current.ctrl, RUNNING) === 1;
  }

  /**
   * One epoch: exactly DataLoader's batches for the same generator state (see the file comment).
   * The worker lives while the iteration does; finishing or leaving the loop stops it.
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
    // Without augmentation an image is C planes of one row: gatherAugmented is then the plain lookup.
    const [H, W] = aug ? [ds.shape[1]!, ds.shape[2]!] : [1, per / C];
    const augOrNone = aug ?? { pad: 0, flip: false };
    const lut = this.byteTable;

    // Exactly DataLoader's draws: the permutation when iteration starts.
    const orderBuf = new SharedArrayBuffer(count * 4);
    const order = new Int32Array(orderBuf);
    for (let i = 0; i < count; i++) order[i] = i;
    const r = this.rngOpt ?? globalRng();
    if (this.shuffle) r.shuffle(order);
    const nb = this.numBatches;

    const ep = this.startWorker(orderBuf, C, H, W, augOrNone);
    this.current = ep;
    try {
      const pred = new RngClass(0); // runs ahead of r: the predicted seeds
      pred.setState(r.getState());
      const seeds = new Float64Array(nb);
      const ids = new Int32Array(nb);
      let nextId = 1, submitted = 0;
      const submit = (b: number, seed: number): void => {
        const slot = b % depth, start = b * bs;
        seeds[b] = seed;
        ids[b] = nextId++;
        Atomics.store(ep.ctrl, req(slot), ids[b]!);
        const job: Job = { slot, id: ids[b]!, start, end: Math.min(start + bs, count), seed };
        if (this.fault?.batch === b) job.fault = this.fault.kind;
        ep.worker.postMessage(job);
      };
      for (; submitted < Math.min(depth, nb); submitted++) submit(submitted, aug ? pred.nextU32() : 0);

      for (let b = 0; b < nb; b++) {
        const start = b * bs, end = Math.min(start + bs, count), B = end - start;
        if (aug) {
          const seed = r.nextU32(); // the draw DataLoader makes for this batch
          if (seed !== seeds[b]) {
            pred.setState(r.getState());
            submit(b, seed);
            for (let k = b + 1; k < submitted; k++) submit(k, pred.nextU32());
            this.stats.rerequested += submitted - b;
          }
        }
        const x = this.take(ep, b % depth, ids[b]!, B * per, () =>
          gatherAugmented(ds.images as Uint8Array, C, H, W, order.subarray(start, end), lut, augOrNone, seeds[b]!));
        if (submitted < nb) {
          submit(submitted, aug ? pred.nextU32() : 0);
          submitted++;
        }
        const indices = order.slice(start, end);
        const y = new Int32Array(B);
        for (let i = 0; i < B; i++) y[i] = ds.labels[indices[i]!]!;
        this.stats.batches++;
        yield { x: wrap(x, [B, ...ds.shape]), y, indices };
      }
      this.checkError(ep);
    } finally {
      if (this.current === ep) this.current = undefined;
      void ep.worker.terminate();
    }
  }

  private startWorker(orderBuf: SharedArrayBuffer, C: number, H: number, W: number, aug: AugmentOptions): Epoch {
    const slotFloats = this.batchSize * C * H * W;
    const ctrl = new Int32Array(new SharedArrayBuffer((HEAD + 3 * this.depth) * 4));
    const err = new Uint8Array(new SharedArrayBuffer(ERR_BYTES));
    const slots = new Float32Array(new SharedArrayBuffer(this.depth * slotFloats * 4));
    const images = this.sharedImages();
    const init: WorkerInit = {
      kind: 'onebit-prefetch', images: images.buffer as SharedArrayBuffer, imagesOffset: images.byteOffset, imagesLength: images.length,
      lut: this.byteTable, C, H, W, aug, order: orderBuf, ctrl: ctrl.buffer as SharedArrayBuffer, err: err.buffer as SharedArrayBuffer,
      slots: slots.buffer as SharedArrayBuffer, slotFloats,
    };
    const worker = new Worker(new URL(import.meta.url), { workerData: init });
    worker.unref();
    worker.on('error', () => {}); // reported through the control words; must not crash the process
    return { worker, ctrl, err, slots, slotFloats };
  }

  /**
   * The finished batch of job `id` in `slot`: copied out of the ring if the worker claimed it
   * (waiting for it to finish), else claimed and built here by `build`.
   */
  private take(ep: Epoch, slot: number, id: number, floats: number, build: () => Float32Array): Float32Array {
    const { ctrl } = ep;
    this.checkError(ep);
    if (Atomics.load(ctrl, done(slot)) !== id) {
      const cur = Atomics.load(ctrl, claim(slot));
      if (cur < id && Atomics.compareExchange(ctrl, claim(slot), cur, id) === cur) {
        const t0 = performance.now();
        const x = build();
        this.stats.buildMs += performance.now() - t0;
        return x;
      }
      this.waitFor(ep, slot, id);
    }
    const t0 = performance.now();
    const off = slot * ep.slotFloats;
    const x = ep.slots.slice(off, off + floats);
    this.stats.copyMs += performance.now() - t0;
    this.stats.fromWorker++;
    return x;
  }

  /** Block until the worker marks job `id` of `slot` done; rethrow a worker error; report a stall. */
  private waitFor(ep: Epoch, slot: number, id: number): void {
    const { ctrl } = ep;
    const t0 = performance.now();
    let last = t0;
    try {
      for (;;) {
        const ev = Atomics.load(ctrl, EVENT);
        if (Atomics.load(ctrl, done(slot)) === id) return;
        this.checkError(ep);
        const res = Atomics.wait(ctrl, EVENT, ev, Math.min(1000, this.stallMs));
        const now = performance.now();
        if (res !== 'timed-out') last = now;
        else if (now - last >= this.stallMs) {
          throw new OnebitError(`PrefetchLoader(${this.dataset.name}): expected the worker thread to finish a batch, but it made no progress for ${Math.round(now - last)} ms. Use DataLoader to build batches on this thread.`);
        }
      }
    } finally {
      this.stats.waitMs += performance.now() - t0;
    }
  }

  private checkError(ep: Epoch): void {
    if (Atomics.load(ep.ctrl, ERR) === 0) return;
    const text = new TextDecoder().decode(ep.err.slice(0, Atomics.load(ep.ctrl, ERR_LEN)));
    throw new OnebitError(`PrefetchLoader(${this.dataset.name}): expected the worker thread to build batches, but it failed: ${text}`);
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
}

/** The worker side: claim each requested job that is still current, build it into its slot, signal. */
function runWorker(d: WorkerInit): void {
  const images = new Uint8Array(d.images, d.imagesOffset, d.imagesLength);
  const order = new Int32Array(d.order);
  const ctrl = new Int32Array(d.ctrl);
  const slots = new Float32Array(d.slots);
  const per = d.C * d.H * d.W;
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
  Atomics.store(ctrl, RUNNING, 1);
  parentPort!.on('message', (job: Job) => {
    try {
      if (job.fault === 'exit') process.exit(3);
      if (job.fault === 'throw') throw new Error(`test fault at the job for slot ${job.slot}`);
      const s = job.slot;
      if (Atomics.load(ctrl, req(s)) !== job.id) return; // superseded by a newer request
      const cur = Atomics.load(ctrl, claim(s));
      if (cur >= job.id || Atomics.compareExchange(ctrl, claim(s), cur, job.id) !== cur) return; // the caller took it
      const idx = order.subarray(job.start, job.end);
      const off = s * d.slotFloats;
      gatherAugmented(images, d.C, d.H, d.W, idx, d.lut, d.aug, job.seed, slots.subarray(off, off + idx.length * per));
      Atomics.store(ctrl, done(s), job.id);
      signal();
    } catch (e) {
      report(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
    }
  });
}

if (!isMainThread && (workerData as WorkerInit | undefined)?.kind === 'onebit-prefetch') runWorker(workerData as WorkerInit);
