import { OnebitError } from './errors.js';

/**
 * Seeded random numbers with a serializable state, so a checkpoint can store the exact point in
 * the stream and `--resume` continues bit-identically. Written here rather than taken from npm
 * because the state must be a plain array we can save and restore (the common packages hide it).
 * Generator: xoshiro128** (Blackman & Vigna), seeded through splitmix32.
 */
export interface RngState {
  s: number[];
  spare: number | null;
}

export class Rng {
  private s = new Uint32Array(4);
  private spare: number | null = null;

  constructor(seed: number) {
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      // splitmix32
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    if (this.s.every((v) => v === 0)) this.s[0] = 1;
  }

  /** Uniform 32-bit unsigned integer. */
  nextU32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
    const t = (s[1]! << 9) >>> 0;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Standard normal (Box-Muller, caches the second value). */
  normal(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** In-place Fisher-Yates shuffle. */
  shuffle<T extends { length: number; [i: number]: any }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }

  /** JSON-safe state: four uint32 words and the cached normal (or null). */
  getState(): RngState {
    return { s: [...this.s], spare: this.spare };
  }

  setState(state: RngState): void {
    const ok =
      state && Array.isArray(state.s) && state.s.length === 4 &&
      state.s.every((v) => Number.isInteger(v) && v >= 0 && v <= 0xffffffff) &&
      (state.spare === null || typeof state.spare === 'number');
    if (!ok) throw new OnebitError(`Rng.setState: expected {s: 4 uint32 words, spare: number|null}, but got ${JSON.stringify(state)}.`);
    for (let i = 0; i < 4; i++) this.s[i] = state.s[i]!;
    this.spare = state.spare;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

let globalRng = new Rng(0);

/** The process-wide generator used for init, shuffling, dropout and augmentation. */
export function rng(): Rng {
  return globalRng;
}

/** Re-seed the process-wide generator (`--seed`). */
export function manualSeed(seed: number): void {
  globalRng = new Rng(seed);
}
