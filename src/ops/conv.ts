import type { Conv2dParams } from '../core/backend.js';
import { fail, fmtShape } from '../core/errors.js';
import { backend, Tensor, wrap } from '../core/tensor.js';
import { needsGrad, fresh, record } from '../autograd/tape.js';

/** Convolution ops: validated at the boundary, computed by the backend's conv2d / pad2d kernels. */

export type SpatialPair = number | readonly [number, number];

export interface Conv2dOpts {
  stride?: SpatialPair;
  /** Zero padding, [top/bottom, left/right]. For another pad value, pad2d first and pass 0 here. */
  padding?: SpatialPair;
  dilation?: SpatialPair;
  groups?: number;
}

/** A number or [h, w] pair of integers >= min, as [h, w] (shared with pool.ts). */
export function spatialPair(what: string, name: string, v: SpatialPair, min: number): [number, number] {
  const pr = typeof v === 'number' ? [v, v] : v;
  if (!Array.isArray(pr) || pr.length !== 2 || !pr.every((d) => Number.isInteger(d) && d >= min)) {
    const kind = min === 0 ? 'non-negative' : 'positive';
    fail(what, `${name} as a ${kind} integer or an [h, w] pair of ${kind} integers`, JSON.stringify(v));
  }
  return [pr[0]!, pr[1]!];
}

/** Rank-4 [N, C, H, W] check shared by the spatial ops. */
export function expectNCHW(what: string, x: Tensor, name = 'input'): void {
  if (x.rank !== 4) {
    const hint = x.rank === 3 ? 'Add a batch dimension.' : x.rank === 2 ? 'Reshape flat features to [N, C, H, W].' : '';
    fail(what, `${name} of rank 4 [N,C,H,W]`, `rank ${x.rank} (shape ${fmtShape(x.shape)})`, hint);
  }
}

/**
 * Validate a convolution's operands and options (one clear error each) and return its kernel
 * parameters and output shape. Shared by `conv2d` and the packed binary forward.
 */
export function conv2dGeometry(x: Tensor, w: Tensor, bias: Tensor | null, opts: Conv2dOpts): { p: Conv2dParams; yShape: number[] } {
  expectNCHW('conv2d', x);
  if (w.rank !== 4) fail('conv2d', 'a weight of rank 4 [Cout,C/groups,kh,kw]', `rank ${w.rank} (shape ${fmtShape(w.shape)})`);
  const groups = opts.groups ?? 1;
  if (!Number.isInteger(groups) || groups < 1) fail('conv2d', 'groups a positive integer', String(groups));
  const stride = spatialPair('conv2d', 'stride', opts.stride ?? 1, 1);
  const padding = spatialPair('conv2d', 'padding', opts.padding ?? 0, 0);
  const dilation = spatialPair('conv2d', 'dilation', opts.dilation ?? 1, 1);
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const [Cout, Cw, kh, kw] = w.shape as [number, number, number, number];
  if (C % groups) {
    fail('conv2d', `input channels divisible by groups=${groups}`, `${C} channels (input shape ${fmtShape(x.shape)})`);
  }
  if (Cout % groups) {
    fail('conv2d', `output channels divisible by groups=${groups}`, `${Cout} (weight shape ${fmtShape(w.shape)})`);
  }
  if (Cw !== C / groups || kh < 1 || kw < 1) {
    const grp = groups > 1 ? ` in ${groups} groups` : '';
    fail('conv2d', `a weight [Cout, ${C / groups}, kh, kw] (kh, kw >= 1) for an input with ${C} channels${grp}`,
      `shape ${fmtShape(w.shape)} (input shape ${fmtShape(x.shape)})`, Cw !== C / groups ? 'Check the layer\'s in_channels against the input.' : '');
  }
  const effH = dilation[0] * (kh - 1) + 1, effW = dilation[1] * (kw - 1) + 1;
  const Ho = Math.floor((H + 2 * padding[0] - effH) / stride[0]) + 1;
  const Wo = Math.floor((W + 2 * padding[1] - effW) / stride[1]) + 1;
  if (Ho < 1 || Wo < 1) {
    fail('conv2d', `a spatial size of at least ${Math.max(1, effH - 2 * padding[0])}x${Math.max(1, effW - 2 * padding[1])} for a ${kh}x${kw} kernel ` +
      `(dilation ${dilation.join('x')}, padding ${padding.join('x')})`, `${H}x${W} (input shape ${fmtShape(x.shape)})`,
      'Pad the input or use a smaller kernel.');
  }
  if (bias && (bias.rank !== 1 || bias.shape[0] !== Cout)) fail('conv2d', `a bias of shape [${Cout}]`, `shape ${fmtShape(bias.shape)}`);

  return { p: { stride, padding, dilation, groups }, yShape: [N, Cout, Ho, Wo] };
}

/**
 * 2-D convolution (cross-correlation). x [N, C, H, W], w [Cout, C/groups, kh, kw], optional bias
 * [Cout] added per output channel → y [N, Cout, Ho, Wo], Ho = floor((H + 2·pad − dil·(kh−1) − 1)/stride) + 1.
 * Gradients flow to x, w and bias (each computed only when needed).
 */
export function conv2d(x: Tensor, w: Tensor, bias: Tensor | null = null, opts: Conv2dOpts = {}): Tensor {
  const { p, yShape } = conv2dGeometry(x, w, bias, opts);
  const [, Cout, Ho, Wo] = yShape as [number, number, number, number];
  const N = yShape[0]!;
  const xd = x.f32('conv2d'), wd = w.f32('conv2d');
  const yd = backend().conv2d(xd, x.shape, wd, w.shape, p);
  if (bias) {
    const bd = bias.f32('conv2d'), plane = Ho * Wo;
    for (let n = 0, o = 0; n < N; n++) {
      for (let c = 0; c < Cout; c++) {
        const b = bd[c]!;
        for (let e = o + plane; o < e; o++) yd[o]! += b;
      }
    }
  }
  const inputs = bias ? [x, w, bias] : [x, w];
  return record(wrap(yd, yShape), 'conv2d', inputs, (g) => {
    const gd = g.f32();
    const grads: (Tensor | null)[] = [
      needsGrad(x) ? fresh(wrap(backend().conv2dBackwardInput(gd, g.shape, wd, w.shape, x.shape, p), x.shape)) : null,
      needsGrad(w) ? fresh(wrap(backend().conv2dBackwardFilter(xd, x.shape, gd, g.shape, w.shape, p), w.shape)) : null,
    ];
    if (bias) grads.push(needsGrad(bias) ? wrap(backend().sum(gd, g.shape, [0, 2, 3]), bias.shape) : null);
    return grads;
  });
}

/**
 * Constant padding of the spatial dims of x [N, C, H, W]: pads = [top, bottom, left, right], new
 * cells hold `value` (binary convolutions pad with ±1). The gradient crops the padding away.
 */
export function pad2d(x: Tensor, pads: readonly [number, number, number, number], value = 0): Tensor {
  expectNCHW('pad2d', x);
  if (!Array.isArray(pads) || pads.length !== 4 || !pads.every((d) => Number.isInteger(d) && d >= 0)) {
    fail('pad2d', 'pads [top, bottom, left, right] of non-negative integers', JSON.stringify(pads));
  }
  if (typeof value !== 'number' || Number.isNaN(value)) fail('pad2d', 'a numeric pad value', String(value));
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const [t, b, l, r] = pads;
  const Ho = H + t + b, Wo = W + l + r;
  const y = wrap(backend().pad2d(x.f32('pad2d'), x.shape, [t, b, l, r], value), [N, C, Ho, Wo]);
  return record(y, 'pad2d', [x], (g) => {
    // The [H, W] window at (t, l) of the padded gradient, gathered by the strided-copy kernel.
    const strides = [C * Ho * Wo, Ho * Wo, Wo, 1];
    return [wrap(backend().contiguous(g.f32(), x.shape, strides, t * Wo + l), x.shape)];
  });
}
