import type { Backend } from './backend.js';
import { fail, fmtShape } from './errors.js';
import { checkShape, contiguousStrides, sizeOf } from './shape.js';

export type DType = 'float32' | 'int32' | 'uint8';
export type Storage = Float32Array | Int32Array | Uint8Array;

/** A recorded op on the autograd tape: its inputs and the rule mapping dL/dout to dL/dinputs. */
export interface GradNode {
  readonly op: string;
  readonly inputs: readonly Tensor[];
  /**
   * Returns one gradient per input (null where the input needs none). Runs with recording off.
   * `addends[j]`, when not null, is the gradient the tape has already summed for input j (read
   * only): a rule may return its gradient plus that addend instead, marked with `withAddend`
   * (autograd/tape.ts), which saves the tape's separate add.
   */
  readonly backward: (grad: Tensor, addends: readonly (Tensor | null)[]) => readonly (Tensor | null)[];
}

let activeBackend: Backend | null = null;

/** The backend every op runs on. */
export function backend(): Backend {
  if (!activeBackend) throw new Error('onebit: no backend registered (import "onebit" or call setBackend).');
  return activeBackend;
}

export function setBackend(b: Backend): void {
  activeBackend = b;
}

/**
 * An n-dimensional array over a typed-array storage, with shape, strides and an offset so that
 * reshapes and permutations are views. Float32 tensors take part in autograd; int32/uint8 hold
 * labels, indices and raw pixels.
 */
export class Tensor {
  readonly storage: Storage;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
  readonly dtype: DType;
  /** Leaf tensors with requiresGrad collect `.grad` on backward(). */
  requiresGrad = false;
  grad: Tensor | null = null;
  /** Set on tensors produced by a recorded op. */
  node: GradNode | null = null;

  constructor(storage: Storage, shape: readonly number[], strides?: readonly number[], offset = 0) {
    this.storage = storage;
    this.shape = Object.freeze([...shape]);
    this.strides = Object.freeze(strides ? [...strides] : contiguousStrides(shape));
    this.offset = offset;
    this.dtype = storage instanceof Float32Array ? 'float32' : storage instanceof Int32Array ? 'int32' : 'uint8';
    if (!strides && offset === 0 && storage.length !== sizeOf(shape)) {
      fail('Tensor', `${sizeOf(shape)} elements for shape ${fmtShape(shape)}`, `${storage.length}`);
    }
  }

  get rank(): number {
    return this.shape.length;
  }

  get size(): number {
    return sizeOf(this.shape);
  }

  get isContiguous(): boolean {
    if (this.offset !== 0 || this.storage.length !== this.size) return false;
    const c = contiguousStrides(this.shape);
    return this.shape.every((d, i) => d === 1 || c[i] === this.strides[i]);
  }

  /** Contiguous float32 data (the storage itself when already contiguous; a copy otherwise). */
  f32(what = 'op'): Float32Array {
    if (this.dtype !== 'float32') fail(what, 'a float32 tensor', `${this.dtype} (shape ${fmtShape(this.shape)})`, 'Cast it first.');
    if (this.isContiguous) return this.storage as Float32Array;
    return backend().contiguous(this.storage as Float32Array, this.shape, this.strides, this.offset);
  }

  /** Contiguous data of any dtype (copies views). */
  values(): Storage {
    if (this.isContiguous) return this.storage;
    if (this.dtype === 'float32') return this.f32();
    const out = this.dtype === 'int32' ? new Int32Array(this.size) : new Uint8Array(this.size);
    const idx = new Array<number>(this.rank).fill(0);
    for (let i = 0; i < out.length; i++) {
      let off = this.offset;
      for (let d = 0; d < this.rank; d++) off += idx[d]! * this.strides[d]!;
      out[i] = this.storage[off]!;
      for (let d = this.rank - 1; d >= 0; d--) {
        if (++idx[d]! < this.shape[d]!) break;
        idx[d] = 0;
      }
    }
    return out;
  }

  /** Nested JS arrays (for tests and printing). */
  toArray(): unknown {
    const v = Array.from(this.values());
    const build = (dim: number, start: number): unknown => {
      if (dim === this.rank) return v[start];
      const step = sizeOf(this.shape.slice(dim + 1));
      return Array.from({ length: this.shape[dim]! }, (_, i) => build(dim + 1, start + i * step));
    };
    return build(0, 0);
  }

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) fail('item', 'a tensor with one element', `shape ${fmtShape(this.shape)}`);
    return this.values()[0]!;
  }

  /** A tensor sharing data but cut off from the tape. */
  detach(): Tensor {
    return new Tensor(this.storage, this.shape, this.strides, this.offset);
  }

  toString(): string {
    return `Tensor(${this.dtype}, ${fmtShape(this.shape)})`;
  }
}

// ---- creation ----

export function tensor(data: ArrayLike<number> | Storage, shape?: readonly number[], dtype: DType = 'float32'): Tensor {
  const sh = shape ?? [data.length];
  checkShape('tensor', sh);
  if (data.length !== sizeOf(sh)) fail('tensor', `${sizeOf(sh)} values for shape ${fmtShape(sh)}`, `${data.length}`);
  const storage =
    dtype === 'float32' ? Float32Array.from(data) : dtype === 'int32' ? Int32Array.from(data) : Uint8Array.from(data);
  return new Tensor(storage, sh);
}

export function full(shape: readonly number[], value: number): Tensor {
  checkShape('full', shape);
  return new Tensor(new Float32Array(sizeOf(shape)).fill(value), shape);
}

export function zeros(shape: readonly number[]): Tensor {
  return full(shape, 0);
}

export function ones(shape: readonly number[]): Tensor {
  return full(shape, 1);
}

/** Wrap a freshly computed contiguous array (no copy). */
export function wrap(data: Storage, shape: readonly number[]): Tensor {
  return new Tensor(data, shape);
}

/** A leaf parameter: float32 with requiresGrad set. */
export function parameter(t: Tensor): Tensor {
  const p = new Tensor(Float32Array.from(t.f32('parameter')), t.shape);
  p.requiresGrad = true;
  return p;
}
