import type { Shape } from '../../core/backend.js';

/**
 * Constant padding of the two spatial dims of x [N, C, H, W]: pads = [top, bottom, left, right],
 * every new cell holds `value` (binary convolutions pad with ±1, ordinary ones with 0).
 * Output [N, C, H + top + bottom, W + left + right]; each input row is copied with one `set`.
 */
export function pad2d(x: Float32Array, xShape: Shape, pads: readonly [number, number, number, number], value: number): Float32Array {
  const [N, C, H, W] = xShape as [number, number, number, number];
  const [t, b, l, r] = pads;
  const Ho = H + t + b, Wo = W + l + r;
  const out = new Float32Array(N * C * Ho * Wo);
  if (value !== 0) out.fill(value);
  const planes = N * C;
  for (let pl = 0; pl < planes; pl++) {
    const src = pl * H * W;
    const dst = pl * Ho * Wo + t * Wo + l;
    for (let h = 0; h < H; h++) out.set(x.subarray(src + h * W, src + (h + 1) * W), dst + h * Wo);
  }
  return out;
}
