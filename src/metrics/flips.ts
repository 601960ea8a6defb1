import { backend } from '../core/tensor.js';
import { isBinaryLayer, type BinaryLayer } from '../nn/binary.js';
import type { Module } from '../nn/module.js';

interface Tracked {
  name: string;
  layer: BinaryLayer;
  prev: Uint32Array;
  flips: number; // summed per-step flip fractions this epoch
}

/**
 * Weight flip rate of the binary layers: after each optimizer step, the fraction of latent weights
 * whose sign changed since the previous step (methods.md §5, FR(t); 0 counts as +1). Signs are kept
 * as packed bits (32 per word), so a step costs one pass over the weights. `epochRate()` is the mean
 * of FR(t) over the epoch's steps, model-wide (weighted by layer size) and per layer.
 */
export class FlipTracker {
  private readonly layers: Tracked[];
  private steps = 0;
  private flipsTotal = 0;
  private readonly weightsTotal: number;

  constructor(model: Module) {
    this.layers = model
      .namedModules()
      .filter(([, m]) => isBinaryLayer(m))
      .map(([name, m]) => {
        const layer = m as unknown as BinaryLayer;
        return { name, layer, prev: backend().packSigns(layer.weight.f32()), flips: 0 };
      });
    this.weightsTotal = this.layers.reduce((n, l) => n + l.layer.weight.size, 0);
  }

  get hasBinaryLayers(): boolean {
    return this.layers.length > 0;
  }

  /** Call after each optimizer step. */
  update(): void {
    if (!this.layers.length) return;
    let flipped = 0;
    for (const l of this.layers) {
      const cur = backend().packSigns(l.layer.weight.f32());
      const n = backend().popcountXor(cur, l.prev);
      l.flips += n / l.layer.weight.size;
      flipped += n;
      l.prev = cur;
    }
    this.flipsTotal += flipped / this.weightsTotal;
    this.steps++;
  }

  /** Mean FR(t) over the steps since the last reset: model-wide and per layer. */
  epochRate(): { model: number; layers: Record<string, number> } {
    const s = Math.max(this.steps, 1);
    return {
      model: this.flipsTotal / s,
      layers: Object.fromEntries(this.layers.map((l) => [l.name, l.flips / s])),
    };
  }

  resetEpoch(): void {
    this.steps = 0;
    this.flipsTotal = 0;
    for (const l of this.layers) l.flips = 0;
  }
}
