import type { Pool2dParams } from '../core/backend.js';
import { fail, fmtShape } from '../core/errors.js';
import { backend, Tensor, wrap } from '../core/tensor.js';
import { record } from '../autograd/tape.js';
import { expectNCHW, spatialPair, type SpatialPair } from './conv.js';
import { mean } from './reduce.js';

/** Pooling ops over x [N, C, H, W], validated here, computed by the backend's pool kernels. */

/** Validate and resolve pooling geometry; returns the params and the output shape. */
function poolGeometry(what: string, x: Tensor, kernel: SpatialPair, stride: SpatialPair | undefined, padding: SpatialPair) {
  expectNCHW(what, x);
  const k = spatialPair(what, 'kernel', kernel, 1);
  const s = spatialPair(what, 'stride', stride ?? k, 1);
  const p = spatialPair(what, 'padding', padding, 0);
  if (2 * p[0] > k[0] || 2 * p[1] > k[1]) {
    fail(what, `padding at most half the kernel (kernel ${k.join('x')})`, `padding ${p.join('x')}`,
      'A window could then lie wholly in the padding.');
  }
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const Ho = Math.floor((H + 2 * p[0] - k[0]) / s[0]) + 1;
  const Wo = Math.floor((W + 2 * p[1] - k[1]) / s[1]) + 1;
  if (Ho < 1 || Wo < 1) {
    fail(what, `a spatial size of at least ${Math.max(1, k[0] - 2 * p[0])}x${Math.max(1, k[1] - 2 * p[1])} for a ${k.join('x')} window with padding ${p.join('x')}`,
      `${H}x${W} (input shape ${fmtShape(x.shape)})`, 'Use a smaller kernel or pad the input.');
  }
  const params: Pool2dParams = { kernel: k, stride: s, padding: p };
  return { params, yShape: [N, C, Ho, Wo] };
}

/**
 * Max pooling; stride defaults to the kernel, padding counts as −inf. The gradient goes to the
 * (first) max of each window.
 */
export function maxPool2d(x: Tensor, kernel: SpatialPair, stride?: SpatialPair, padding: SpatialPair = 0): Tensor {
  const { params, yShape } = poolGeometry('maxPool2d', x, kernel, stride, padding);
  const { y, argmax } = backend().maxPool2d(x.f32('maxPool2d'), x.shape, params);
  return record(wrap(y, yShape), 'maxPool2d', [x], (g) => [
    wrap(backend().maxPool2dBackward(g.f32(), argmax, x.size), x.shape),
  ]);
}

/**
 * Average pooling; stride defaults to the kernel. Padding is excluded from the divisor
 * (count_include_pad = false), so a border window averages only its in-image cells.
 */
export function avgPool2d(x: Tensor, kernel: SpatialPair, stride?: SpatialPair, padding: SpatialPair = 0): Tensor {
  const { params, yShape } = poolGeometry('avgPool2d', x, kernel, stride, padding);
  const y = backend().avgPool2d(x.f32('avgPool2d'), x.shape, params);
  return record(wrap(y, yShape), 'avgPool2d', [x], (g) => [
    wrap(backend().avgPool2dBackward(g.f32(), g.shape, x.shape, params), x.shape),
  ]);
}

/** Mean over the spatial dims: [N, C, H, W] -> [N, C]. */
export function globalAvgPool2d(x: Tensor): Tensor {
  expectNCHW('globalAvgPool2d', x);
  if (x.shape[2] === 0 || x.shape[3] === 0) {
    fail('globalAvgPool2d', 'a non-empty spatial size', `shape ${fmtShape(x.shape)}`);
  }
  return mean(x, [2, 3]);
}
