import { fail, fmtShape } from '../core/errors.js';
import { rng } from '../core/rng.js';
import { full, Tensor, wrap } from '../core/tensor.js';
import { add, hardtanh, maximum, minimum, mul, relu } from '../ops/elementwise.js';
import { matmul } from '../ops/matmul.js';
import { batchNorm } from '../ops/norm.js';
import { flatten, reshape } from '../ops/shape.js';
import { conv2d } from '../ops/conv.js';
import { channelAct } from '../ops/channel_act.js';
import { avgPool2d, globalAvgPool2d, maxPool2d } from '../ops/pool.js';
import { uniformInit } from './init.js';
import { Module } from './module.js';

function positiveInt(what: string, v: number): void {
  if (!Number.isInteger(v) || v <= 0) fail(what, 'a positive integer', String(v));
}

export function pair(v: number | [number, number]): [number, number] {
  return typeof v === 'number' ? [v, v] : v;
}

/** y = x·Wᵀ + b, W: [out, in]. */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: { bias?: boolean } = {}) {
    super();
    positiveInt('Linear inFeatures', inFeatures);
    positiveInt('Linear outFeatures', outFeatures);
    this.weight = this.registerParameter('weight', uniformInit([outFeatures, inFeatures], inFeatures));
    this.bias = opts.bias === false ? null : this.registerParameter('bias', uniformInit([outFeatures], inFeatures));
  }

  forward(x: Tensor): Tensor {
    checkFeatures('Linear', x, this.inFeatures);
    const y = matmul(x, this.weight, false, true);
    return this.bias ? add(y, this.bias) : y;
  }

  override describe(): string {
    return `Linear(${this.inFeatures} -> ${this.outFeatures})`;
  }
}

export function checkFeatures(what: string, x: Tensor, inFeatures: number): void {
  if (x.rank !== 2 || x.shape[1] !== inFeatures) {
    fail(what, `input [batch, ${inFeatures}]`, `shape ${fmtShape(x.shape)}`, x.rank > 2 ? 'Add a Flatten layer before it.' : '');
  }
}

export interface Conv2dOptions {
  stride?: number | [number, number];
  padding?: number | [number, number];
  dilation?: number | [number, number];
  groups?: number;
  bias?: boolean;
}

/** 2-D convolution, W: [out, in/groups, kh, kw]. */
export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly kernelSize: [number, number];

  constructor(readonly inChannels: number, readonly outChannels: number, kernelSize: number | [number, number], readonly opts: Conv2dOptions = {}) {
    super();
    positiveInt('Conv2d inChannels', inChannels);
    positiveInt('Conv2d outChannels', outChannels);
    const g = opts.groups ?? 1;
    if (inChannels % g || outChannels % g) fail('Conv2d', `channels divisible by groups=${g}`, `in=${inChannels}, out=${outChannels}`);
    this.kernelSize = pair(kernelSize);
    const fanIn = (inChannels / g) * this.kernelSize[0] * this.kernelSize[1];
    this.weight = this.registerParameter('weight', uniformInit([outChannels, inChannels / g, ...this.kernelSize], fanIn));
    this.bias = opts.bias === false ? null : this.registerParameter('bias', uniformInit([outChannels], fanIn));
  }

  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, this.opts);
  }

  override describe(): string {
    return `Conv2d(${this.inChannels} -> ${this.outChannels}, ${this.kernelSize.join('x')})`;
  }
}

/** Batch norm over axis 1 with running statistics; BatchNorm1d takes [N, C], BatchNorm2d [N, C, H, W]. */
class BatchNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;

  constructor(private readonly rank: number, readonly numFeatures: number, readonly opts: { momentum?: number; eps?: number } = {}) {
    super();
    positiveInt(`BatchNorm${rank - 2 || 1}d numFeatures`, numFeatures);
    this.weight = this.registerParameter('weight', full([numFeatures], 1));
    this.bias = this.registerParameter('bias', full([numFeatures], 0));
    this.runningMean = this.registerBuffer('runningMean', full([numFeatures], 0));
    this.runningVar = this.registerBuffer('runningVar', full([numFeatures], 1));
  }

  forward(x: Tensor): Tensor {
    return this.forwardAdd(x, null);
  }

  /** forward(x) + residual in one pass (a residual block's `add`, fused into the batch norm). */
  forwardAdd(x: Tensor, residual: Tensor | null): Tensor {
    const name = this.rank === 2 ? 'BatchNorm1d' : 'BatchNorm2d';
    if (x.rank !== this.rank || x.shape[1] !== this.numFeatures) {
      fail(name, `input of rank ${this.rank} with ${this.numFeatures} channels on axis 1`, `shape ${fmtShape(x.shape)}`);
    }
    const running = { runningMean: this.runningMean, runningVar: this.runningVar };
    return batchNorm(x, this.weight, this.bias, running, this.training, this.opts.momentum ?? 0.1, this.opts.eps ?? 1e-5, residual);
  }

  override describe(): string {
    return `${this.rank === 2 ? 'BatchNorm1d' : 'BatchNorm2d'}(${this.numFeatures})`;
  }
}

export class BatchNorm1d extends BatchNorm {
  constructor(numFeatures: number, opts: { momentum?: number; eps?: number } = {}) {
    super(2, numFeatures, opts);
  }
}

export class BatchNorm2d extends BatchNorm {
  constructor(numFeatures: number, opts: { momentum?: number; eps?: number } = {}) {
    super(4, numFeatures, opts);
  }
}

export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}

export class Hardtanh extends Module {
  constructor(readonly lo = -1, readonly hi = 1) {
    super();
  }
  forward(x: Tensor): Tensor {
    return hardtanh(x, this.lo, this.hi);
  }
}

/** PReLU: max(x, 0) + a·min(x, 0), one slope per channel (axis 1) or a single shared slope. */
export class PReLU extends Module {
  readonly weight: Tensor;
  constructor(readonly numParameters = 1, init = 0.25) {
    super();
    positiveInt('PReLU numParameters', numParameters);
    this.weight = this.registerParameter('weight', full([numParameters], init));
  }
  forward(x: Tensor): Tensor {
    if (this.numParameters > 1) {
      if (x.rank < 2 || x.shape[1] !== this.numParameters) fail('PReLU', `${this.numParameters} channels on axis 1`, `shape ${fmtShape(x.shape)}`);
      // Per-channel slopes: one fused op (ops/channel_act.ts), the same values as the composite
      // below; at x = 0 exactly its gradient is 1 (the composite's is 1 + a).
      return channelAct(x, { neg: this.weight });
    }
    return add(maximum(x, 0), mul(this.weight, minimum(x, 0)));
  }
}

export class MaxPool2d extends Module {
  constructor(readonly kernel: number | [number, number], readonly stride?: number | [number, number], readonly padding: number | [number, number] = 0) {
    super();
  }
  forward(x: Tensor): Tensor {
    return maxPool2d(x, this.kernel, this.stride, this.padding);
  }
}

export class AvgPool2d extends Module {
  constructor(readonly kernel: number | [number, number], readonly stride?: number | [number, number], readonly padding: number | [number, number] = 0) {
    super();
  }
  forward(x: Tensor): Tensor {
    return avgPool2d(x, this.kernel, this.stride, this.padding);
  }
}

/** [N, C, H, W] -> [N, C]. */
export class GlobalAvgPool2d extends Module {
  forward(x: Tensor): Tensor {
    return globalAvgPool2d(x);
  }
}

export class Flatten extends Module {
  forward(x: Tensor): Tensor {
    return flatten(x, 1);
  }
}

/** Inverted dropout: in training, zero each value with probability p and scale the rest by 1/(1-p). */
export class Dropout extends Module {
  constructor(readonly p = 0.5) {
    super();
    if (!(p >= 0 && p < 1)) fail('Dropout', 'p in [0, 1)', String(p));
  }
  forward(x: Tensor): Tensor {
    if (!this.training || this.p === 0) return x;
    const mask = new Float32Array(x.size);
    const r = rng();
    const keep = 1 / (1 - this.p);
    for (let i = 0; i < mask.length; i++) mask[i] = r.next() < this.p ? 0 : keep;
    return mul(x, wrap(mask, x.shape));
  }
}
