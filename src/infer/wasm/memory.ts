import { OnebitError } from '../../core/errors.js';

/**
 * The linear memory of one onebit WebAssembly instance, laid out from `__heap_base` up:
 *
 *   [ C data + stack | persistent blocks (prepared weights) … heapTop | scratch of the current call ]
 *
 * Persistent blocks (`alloc` / `release`) are first-fit from a free list, coalesced on release,
 * else bumped at heapTop. Every kernel call lays out its inputs, outputs and work buffers in one
 * `Frame` starting at heapTop; the frame grows the memory once if it must (never shrinks), so
 * after the first call of each shape the steady state allocates nothing. Calls are synchronous
 * and the module single-threaded, so one frame at a time is all there is.
 *
 * `memory.grow` replaces `memory.buffer` (an unshared one is detached; a shared one stays valid
 * at its old length): the typed-array views are re-created on first use after a growth, never
 * cached by callers.
 *
 * The prepared kernels' hot paths skip `Frame` (no objects per call): they lay out their scratch
 * from `scratch` by arithmetic, `own` each input before `ensure`, and `place` it after.
 */
export class WasmMemory {
  /** End of the persistent region (bytes; 16-aligned). */
  private top: number;
  private free: { ptr: number; bytes: number }[] = [];
  private buf: ArrayBuffer | null = null;
  private f32v = new Float32Array(0);
  private u32v = new Uint32Array(0);
  private i32v = new Int32Array(0);

  constructor(readonly memory: WebAssembly.Memory, heapBase: number) {
    this.top = align(heapBase);
  }

  get f32(): Float32Array {
    if (this.memory.buffer !== this.buf) this.refresh();
    return this.f32v;
  }
  get u32(): Uint32Array {
    if (this.memory.buffer !== this.buf) this.refresh();
    return this.u32v;
  }
  get i32(): Int32Array {
    if (this.memory.buffer !== this.buf) this.refresh();
    return this.i32v;
  }

  private refresh(): void {
    const b = this.memory.buffer as ArrayBuffer;
    this.buf = b;
    this.f32v = new Float32Array(b);
    this.u32v = new Uint32Array(b);
    this.i32v = new Int32Array(b);
  }

  /** Grow the memory so that bytes [0, end) exist (by at least half its size, to grow rarely). */
  ensure(end: number): void {
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    const page = 65536;
    const need = Math.ceil((end - have) / page);
    const pages = Math.max(need, Math.min(Math.ceil(have / page / 2), 16384));
    try {
      this.memory.grow(pages);
    } catch {
      try {
        this.memory.grow(need);
      } catch (e) {
        throw new OnebitError(`wasm kernels: expected ${end} bytes of WebAssembly memory, but got ${(e as Error).message}. Use a smaller batch or model.`);
      }
    }
  }

  /** A persistent block of `bytes` (16-aligned), until `release`. */
  alloc(bytes: number): number {
    bytes = align(Math.max(bytes, 16));
    for (let i = 0; i < this.free.length; i++) {
      const f = this.free[i]!;
      if (f.bytes < bytes) continue;
      const ptr = f.ptr;
      if (f.bytes === bytes) this.free.splice(i, 1);
      else {
        f.ptr += bytes;
        f.bytes -= bytes;
      }
      return ptr;
    }
    const ptr = this.top;
    this.ensure(ptr + bytes);
    this.top = ptr + bytes;
    return ptr;
  }

  /** Give a block from `alloc` back (the same size). */
  release(ptr: number, bytes: number): void {
    bytes = align(Math.max(bytes, 16));
    const fl = this.free;
    let i = 0;
    while (i < fl.length && fl[i]!.ptr < ptr) i++;
    fl.splice(i, 0, { ptr, bytes });
    // Coalesce with the next, then the previous block.
    if (i + 1 < fl.length && fl[i]!.ptr + fl[i]!.bytes === fl[i + 1]!.ptr) {
      fl[i]!.bytes += fl[i + 1]!.bytes;
      fl.splice(i + 1, 1);
    }
    if (i > 0 && fl[i - 1]!.ptr + fl[i - 1]!.bytes === fl[i]!.ptr) {
      fl[i - 1]!.bytes += fl[i]!.bytes;
      fl.splice(i, 1);
      i--;
    }
    // A free block at the top lowers the top.
    const last = fl[fl.length - 1];
    if (last && last.ptr + last.bytes === this.top) {
      this.top = last.ptr;
      fl.pop();
    }
  }

  /** Start of the scratch region (the end of the persistent blocks). */
  get scratch(): number {
    return this.top;
  }

  /**
   * `x`, or a copy of it when it is a view on this memory outside the persistent region (scratch
   * that a growth would detach or the call overwrite). Call before `ensure`.
   */
  own<T extends Float32Array | Uint32Array | Int32Array>(x: T): T {
    const b = x.buffer;
    return (b === this.memory.buffer || (typeof SharedArrayBuffer !== 'undefined' && b instanceof SharedArrayBuffer)) && !this.resident(x) ? x.slice() as T : x;
  }

  /** Where the kernel reads `x`: in place when it is resident, else copied to `ptr` (after `ensure`). */
  place(x: Float32Array, ptr: number): number {
    if (this.resident(x)) return x.byteOffset;
    this.f32.set(x, ptr >>> 2);
    return ptr;
  }

  /** Copy a persistent block in. */
  allocF32(data: Float32Array): number {
    const ptr = this.alloc(data.length * 4);
    this.f32.set(data, ptr >>> 2);
    return ptr;
  }

  /** Whether `x` is a view on this memory lying in the persistent region (safe to read in place). */
  private resident(x: ArrayBufferView): boolean {
    return x.buffer === this.memory.buffer && x.byteOffset + x.byteLength <= this.top && x.byteOffset % 4 === 0;
  }

  /** Start laying out one call's scratch. */
  frame(): Frame {
    return new Frame(this, this.top, (x) => this.resident(x));
  }
}

/**
 * One call's scratch: `take` reserves bytes, `input` reserves and schedules a copy (or reads a
 * resident view in place), `commit` grows the memory once and does the copies. Pointers are
 * byte offsets; write through the memory's views only after `commit`.
 */
export class Frame {
  private end: number;
  private copies: { ptr: number; data: Float32Array | Uint32Array | Int32Array }[] = [];

  constructor(private readonly mem: WasmMemory, start: number, private readonly resident: (x: ArrayBufferView) => boolean) {
    this.end = start;
  }

  take(bytes: number): number {
    const ptr = this.end;
    this.end = align(ptr + bytes);
    return ptr;
  }

  /** Where `x` will be (0 for null). */
  input(x: Float32Array | Uint32Array | Int32Array | null): number {
    if (!x) return 0;
    if (this.resident(x)) return x.byteOffset;
    const ptr = this.take(x.byteLength);
    // A view on this memory outside the persistent region would be detached by a growth: copy it out first.
    const data = x.buffer === this.mem.memory.buffer ? x.slice() : x;
    this.copies.push({ ptr, data });
    return ptr;
  }

  commit(): void {
    this.mem.ensure(this.end);
    for (const { ptr, data } of this.copies) {
      if (data instanceof Float32Array) this.mem.f32.set(data, ptr >>> 2);
      else if (data instanceof Uint32Array) this.mem.u32.set(data, ptr >>> 2);
      else this.mem.i32.set(data, ptr >>> 2);
    }
    this.copies.length = 0;
  }
}

const align = (n: number): number => Math.ceil(n / 16) * 16;
