/**
 * Mini-batch iteration over an in-memory Dataset: optional per-epoch shuffling with a seeded Rng,
 * and uint8 → normalized float32 conversion on the fly.
 */
import { fail, fmtShape } from '../core/errors.js';
import { type Rng, rng as globalRng } from '../core/rng.js';
import { type Tensor, wrap } from '../core/tensor.js';
import type { Dataset } from './dataset.js';
import { type AugmentOptions, gatherAugmented } from './augment.js';

/** Per-channel mean of MNIST pixels scaled to [0,1]. */
export const MNIST_MEAN = [0.1307];
/** Per-channel standard deviation of MNIST pixels scaled to [0,1]. */
export const MNIST_STD = [0.3081];

/** Options for DataLoader. */
export interface DataLoaderOptions {
  /** Examples per batch: a positive integer ≤ dataset.count. */
  batchSize: number;
  /** Draw a fresh permutation at the start of every epoch. */
  shuffle: boolean;
  /** Drop the last batch when it is smaller than batchSize (default false). */
  dropLast?: boolean;
  /**
   * Per-channel (x - mean) / std, applied after bytes are scaled to [0,1]. Channels are
   * shape[0] for per-example shapes of rank ≥ 3 ([C,H,W]), else 1. Default: no normalization.
   */
  normalize?: { mean: number[]; std: number[] };
  /** Generator for shuffling; default: the process-wide rng(), looked up at each epoch start. */
  rng?: Rng;
  /**
   * Random crop (zero padding) + horizontal flip of uint8 `[C, H, W]` images (data/augment.ts).
   * Each batch draws one 32-bit seed from the generator after the epoch's permutation.
   */
  augment?: AugmentOptions;
}

/** One mini-batch: inputs `[B, ...shape]` float32, labels and the dataset indices it holds. */
export interface Batch {
  x: Tensor;
  y: Int32Array;
  indices: Int32Array;
}

/** Iterates a Dataset in mini-batches, one epoch per call to `batches()`. */
export class DataLoader {
  readonly dataset: Dataset;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  private readonly rngOpt: Rng | undefined;
  readonly augment: AugmentOptions | undefined;
  private readonly perExample: number;
  private readonly plane: number;
  private readonly channels: number;
  /** uint8 images: 256 float32 values per channel (the byte → normalized value table). */
  private readonly lut: Float32Array;
  /** float32 images: per-channel x * scale + bias. */
  private readonly scale: Float64Array;
  private readonly bias: Float64Array;

  constructor(dataset: Dataset, opts: DataLoaderOptions) {
    const what = `DataLoader(${dataset?.name})`;
    if (!dataset || typeof dataset !== 'object') fail('DataLoader', 'a Dataset', String(dataset));
    const { count, shape, images, labels } = dataset;
    if (!(images instanceof Uint8Array || images instanceof Float32Array)) {
      fail(what, 'dataset.images as a Uint8Array or Float32Array', Object.prototype.toString.call(images));
    }
    if (!(labels instanceof Uint8Array)) fail(what, 'dataset.labels as a Uint8Array', Object.prototype.toString.call(labels));
    if (!Number.isInteger(count) || count < 0) fail(what, 'dataset.count to be a non-negative integer', `${count}`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d > 0)) {
      fail(what, 'dataset.shape of positive integers', JSON.stringify(shape));
    }
    const per = shape.reduce((a, b) => a * b, 1);
    if (images.length !== count * per) {
      fail(what, `${count} × ${per} = ${count * per} image values for shape ${fmtShape(shape)}`, `${images.length}`);
    }
    if (labels.length !== count) fail(what, `${count} labels`, `${labels.length}`);
    const bs = opts.batchSize;
    if (!Number.isInteger(bs) || bs < 1 || bs > count) {
      fail(what, `batchSize a positive integer ≤ ${count} (the dataset size)`, `${bs}`);
    }
    if (typeof opts.shuffle !== 'boolean') fail(what, 'shuffle: true or false', `${opts.shuffle}`);
    this.channels = shape.length >= 3 ? shape[0]! : 1;
    const C = this.channels;
    const mean = opts.normalize?.mean ?? new Array<number>(C).fill(0);
    const std = opts.normalize?.std ?? new Array<number>(C).fill(1);
    if (mean.length !== C || std.length !== C) {
      fail(what, `normalize.mean and normalize.std with ${C} value(s) (one per channel)`, `${mean.length} and ${std.length}`);
    }
    if (!mean.every(Number.isFinite)) fail(what, 'finite normalize.mean values', JSON.stringify(mean));
    if (!std.every((s) => Number.isFinite(s) && s > 0)) fail(what, 'normalize.std values > 0', JSON.stringify(std));
    if (opts.rng !== undefined && typeof opts.rng?.shuffle !== 'function') fail(what, 'rng to be an Rng', String(opts.rng));

    this.dataset = dataset;
    this.batchSize = bs;
    this.shuffle = opts.shuffle;
    this.dropLast = opts.dropLast ?? false;
    this.rngOpt = opts.rng;
    if (opts.augment !== undefined) {
      const a = opts.augment;
      if (!(images instanceof Uint8Array) || shape.length !== 3) fail(what, 'uint8 images of shape [C, H, W] for augment', `${images.constructor.name} ${fmtShape(shape)}`);
      if (!Number.isInteger(a.pad) || a.pad < 0 || a.pad >= Math.min(shape[1]!, shape[2]!)) fail(what, `augment.pad an integer in [0, ${Math.min(shape[1]!, shape[2]!)})`, String(a.pad));
      if (typeof a.flip !== 'boolean') fail(what, 'augment.flip: true or false', String(a.flip));
      this.augment = a.pad || a.flip ? { pad: a.pad, flip: a.flip } : undefined;
    }
    this.perExample = per;
    this.plane = per / C;
    this.lut = new Float32Array(256 * C);
    this.scale = new Float64Array(C);
    this.bias = new Float64Array(C);
    for (let c = 0; c < C; c++) {
      for (let v = 0; v < 256; v++) this.lut[c * 256 + v] = (v / 255 - mean[c]!) / std[c]!;
      this.scale[c] = 1 / std[c]!;
      this.bias[c] = -mean[c]! / std[c]!;
    }
  }

  /** Batches per epoch: ceil(count / batchSize), or floor with dropLast. */
  get numBatches(): number {
    const n = this.dataset.count / this.batchSize;
    return this.dropLast ? Math.floor(n) : Math.ceil(n);
  }

  /**
   * One epoch. With shuffle, the permutation is drawn (Fisher-Yates) when iteration starts, from
   * `opts.rng` or else the process-wide rng() current at that moment (so manualSeed takes effect).
   * Each batch owns fresh arrays; keeping one across iterations is safe.
   */
  *batches(): Generator<Batch, void, undefined> {
    const count = this.dataset.count;
    const order = new Int32Array(count);
    for (let i = 0; i < count; i++) order[i] = i;
    const r = this.rngOpt ?? globalRng();
    if (this.shuffle) r.shuffle(order);
    const nb = this.numBatches;
    for (let b = 0; b < nb; b++) {
      const start = b * this.batchSize;
      const indices = order.slice(start, Math.min(start + this.batchSize, count));
      if (this.augment) {
        const [C, H, W] = this.dataset.shape as [number, number, number];
        const x = gatherAugmented(this.dataset.images as Uint8Array, C, H, W, indices, this.lut, this.augment, r.nextU32());
        const y = new Int32Array(indices.length);
        for (let i = 0; i < indices.length; i++) y[i] = this.dataset.labels[indices[i]!]!;
        yield { x: wrap(x, [indices.length, C, H, W]), y, indices };
      } else {
        yield this.gather(indices);
      }
    }
  }

  /** The byte → normalized float table, 256 entries per channel (what augmentation workers need). */
  get byteTable(): Float32Array {
    return this.lut;
  }

  /** Build the batch for the given dataset indices. */
  private gather(indices: Int32Array): Batch {
    const B = indices.length;
    const per = this.perExample;
    const plane = this.plane;
    const C = this.channels;
    const x = new Float32Array(B * per);
    const y = new Int32Array(B);
    const { images, labels } = this.dataset;
    let o = 0;
    if (images instanceof Uint8Array) {
      const lut = this.lut;
      for (let i = 0; i < B; i++) {
        const idx = indices[i]!;
        y[i] = labels[idx]!;
        let s = idx * per;
        for (let c = 0; c < C; c++) {
          const base = c * 256;
          for (let end = o + plane; o < end; ) x[o++] = lut[base + images[s++]!]!;
        }
      }
    } else {
      for (let i = 0; i < B; i++) {
        const idx = indices[i]!;
        y[i] = labels[idx]!;
        let s = idx * per;
        for (let c = 0; c < C; c++) {
          const a = this.scale[c]!;
          const bb = this.bias[c]!;
          for (let end = o + plane; o < end; ) x[o++] = images[s++]! * a + bb;
        }
      }
    }
    return { x: wrap(x, [B, ...this.dataset.shape]), y, indices };
  }
}
