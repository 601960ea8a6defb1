import { backend } from '../core/tensor.js';
import { isBinaryLayer, type BinaryLayer } from '../nn/binary.js';
import type { Module } from '../nn/module.js';

/** Per-layer flip statistics of one epoch (methods.md §5). */
export interface LayerFlipStats {
  /** Mean over the epoch's steps of FR(t): fraction of latent weights whose sign changed at step t. */
  fr: number;
  /** Mean of SO(t): fraction that flipped at one step and flipped back at the next. */
  so: number;
  /** RBNN-style: fraction whose sign now differs from the sign at initialisation (not comparable to FR/SO). */
  initFlip: number;
  /** Histogram of the latent weights at the end of the epoch: `bins` equal bins over [-range, range]. */
  hist: { range: number; counts: number[] };
}

interface Tracked {
  name: string;
  layer: BinaryLayer;
  size: number;
  init: Uint32Array;
  prev: Uint32Array; // b^{t}
  prev2: Uint32Array | null; // b^{t-1}
  fr: number; // summed per-step FR this epoch
  so: number; // summed per-step SO this epoch
  soSteps: number;
}

const HIST_BINS = 40;

/**
 * Weight-flip metrics of every binary layer, kept as packed sign bits (32 per word; bit 1 = −1,
 * 0 counts as +1), so each step costs one pass over the weights:
 *   FR(t) = (1/N) Σ 1[b^t ≠ b^{t−1}]                       (per-iteration flip rate)
 *   SO(t) = (1/N) Σ 1[b^{t+1} ≠ b^t]·1[b^{t+2} = b^t]     (flip and flip straight back)
 *   init flip = (1/N) Σ 1[b^now ≠ b^init]                   (RBNN's notion; not comparable with FR)
 * Epoch values are means over the epoch's steps (the "epoch-wise" ratios); the model-wide numbers
 * weight layers by their size. `stepRates()` gives the model-wide FR(t) of every step of the epoch.
 * `state()`/`loadState()` carry the sign history through checkpoints so a resumed run reports the same.
 */
export class FlipTracker {
  private readonly layers: Tracked[];
  private readonly total: number;
  private steps = 0;
  private frModel = 0;
  private soModel = 0;
  private soModelSteps = 0;
  private frSteps: number[] = [];

  constructor(model: Module) {
    this.layers = model
      .namedModules()
      .filter(([, m]) => isBinaryLayer(m))
      .map(([name, m]) => {
        const layer = m as unknown as BinaryLayer;
        const bits = backend().packSigns(layer.weight.f32());
        return { name, layer, size: layer.weight.size, init: bits, prev: bits, prev2: null, fr: 0, so: 0, soSteps: 0 };
      });
    this.total = this.layers.reduce((n, l) => n + l.size, 0);
  }

  get hasBinaryLayers(): boolean {
    return this.layers.length > 0;
  }

  /** Call after each optimizer step. */
  update(): void {
    if (!this.layers.length) return;
    let flipped = 0, back = 0;
    let soCounted = false;
    for (const l of this.layers) {
      const cur = backend().packSigns(l.layer.weight.f32());
      const n = backend().popcountXor(cur, l.prev);
      l.fr += n / l.size;
      flipped += n;
      if (l.prev2) {
        const so = countFlipBack(l.prev2, l.prev, cur);
        l.so += so / l.size;
        l.soSteps++;
        back += so;
        soCounted = true;
      }
      l.prev2 = l.prev;
      l.prev = cur;
    }
    const fr = flipped / this.total;
    this.frModel += fr;
    this.frSteps.push(fr);
    if (soCounted) {
      this.soModel += back / this.total;
      this.soModelSteps++;
    }
    this.steps++;
  }

  /** Model-wide FR(t) of every step since the last reset. */
  stepRates(): number[] {
    return [...this.frSteps];
  }

  /** Epoch means since the last reset: model-wide and per layer. */
  epochRate(): { model: number; so: number; initFlip: number; layers: Record<string, number> } {
    const s = Math.max(this.steps, 1);
    const initFlipped = this.layers.reduce((n, l) => n + backend().popcountXor(l.prev, l.init), 0);
    return {
      model: this.frModel / s,
      so: this.soModel / Math.max(this.soModelSteps, 1),
      initFlip: this.total ? initFlipped / this.total : 0,
      layers: Object.fromEntries(this.layers.map((l) => [l.name, l.fr / s])),
    };
  }

  /** Full per-layer statistics for the metrics log. */
  layerStats(): Record<string, LayerFlipStats> {
    const s = Math.max(this.steps, 1);
    return Object.fromEntries(
      this.layers.map((l) => [
        l.name,
        { fr: l.fr / s, so: l.so / Math.max(l.soSteps, 1), initFlip: backend().popcountXor(l.prev, l.init) / l.size, hist: histogram(l.layer.weight.f32()) },
      ]),
    );
  }

  resetEpoch(): void {
    this.steps = 0;
    this.frModel = 0;
    this.soModel = 0;
    this.soModelSteps = 0;
    this.frSteps = [];
    for (const l of this.layers) {
      l.fr = 0;
      l.so = 0;
      l.soSteps = 0;
    }
  }

  /**
   * The sign history as float32 tensors (each 32-bit word stored as two exact 16-bit halves, since
   * raw bit patterns could be NaNs), for checkpoints.
   */
  state(): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    for (const l of this.layers) {
      out.set(`${l.name}.init`, toHalves(l.init));
      out.set(`${l.name}.prev`, toHalves(l.prev));
      if (l.prev2) out.set(`${l.name}.prev2`, toHalves(l.prev2));
    }
    return out;
  }

  loadState(state: Map<string, Float32Array>): void {
    for (const l of this.layers) {
      const init = state.get(`${l.name}.init`), prev = state.get(`${l.name}.prev`), prev2 = state.get(`${l.name}.prev2`);
      if (init && init.length === l.init.length * 2) l.init = fromHalves(init);
      l.prev = prev && prev.length === l.prev.length * 2 ? fromHalves(prev) : backend().packSigns(l.layer.weight.f32());
      l.prev2 = prev2 && prev2.length === l.prev.length * 2 ? fromHalves(prev2) : null;
    }
  }
}

/** Σ over bits of [b1 ≠ b0]·[b2 = b0]: weights that flipped at the first step and flipped back at the next. */
function countFlipBack(b0: Uint32Array, b1: Uint32Array, b2: Uint32Array): number {
  let n = 0;
  for (let i = 0; i < b0.length; i++) n += popcount32((b0[i]! ^ b1[i]!) & ~(b0[i]! ^ b2[i]!));
  return n;
}

function popcount32(v: number): number {
  v = v - ((v >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
}

function histogram(w: Float32Array): LayerFlipStats['hist'] {
  let range = 0;
  for (let i = 0; i < w.length; i++) range = Math.max(range, Math.abs(w[i]!));
  range = range || 1;
  const counts = new Array<number>(HIST_BINS).fill(0);
  for (let i = 0; i < w.length; i++) counts[Math.min(HIST_BINS - 1, Math.floor(((w[i]! + range) / (2 * range)) * HIST_BINS))]!++;
  return { range, counts };
}

function toHalves(a: Uint32Array): Float32Array {
  const out = new Float32Array(a.length * 2);
  for (let i = 0; i < a.length; i++) {
    out[2 * i] = a[i]! & 0xffff;
    out[2 * i + 1] = a[i]! >>> 16;
  }
  return out;
}

function fromHalves(f: Float32Array): Uint32Array {
  const out = new Uint32Array(f.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = ((f[2 * i + 1]! << 16) | f[2 * i]!) >>> 0;
  return out;
}
