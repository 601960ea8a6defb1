import { fail } from '../core/errors.js';

/**
 * Pixels → one model input, the same in Node (`onebit predict` on PNGs) and in browsers (canvas
 * ImageData): no Node built-ins here.
 */

/** The input normalization an exported model records in `metadata.preprocess`: pixels·scale, then (x − mean[c]) / std[c]. */
export interface Preprocess {
  scale: number;
  mean: number[];
  std: number[];
}

/** What `imageToInput` needs of a model. */
export interface ImageModel {
  readonly inputShape: readonly number[];
  readonly metadata: Readonly<Record<string, unknown>>;
}

/** The model's `metadata.preprocess`, or pixels/255 with no mean/std when it has none (or a malformed one). */
export function preprocessOf(m: ImageModel): Preprocess {
  const p = m.metadata.preprocess as Partial<Preprocess> | undefined;
  const C = m.inputShape[0] ?? 1;
  const ok = p && typeof p.scale === 'number' && Array.isArray(p.mean) && Array.isArray(p.std) && p.mean.length === C && p.std.length === C;
  return ok ? (p as Preprocess) : { scale: 1 / 255, mean: new Array<number>(C).fill(0), std: new Array<number>(C).fill(1) };
}

/**
 * RGBA pixels (row-major, 4 bytes a pixel: a PNG's decoded data or a canvas's ImageData.data) as
 * one input [C, H, W] of `model`: converted to the model's channels (RGB → gray by luma, gray → RGB
 * by repetition), alpha composited on black, resized to the input size (bilinear at pixel centres;
 * the identity when sizes match), optionally inverted (dark digits on white → MNIST's white on
 * black), then normalized as the model's metadata says.
 */
export function imageToInput(
  rgba: Uint8Array | Uint8ClampedArray, width: number, height: number, model: ImageModel, opts: { invert?: boolean } = {},
): Float32Array {
  const shape = model.inputShape;
  if (shape.length !== 3) fail('imageToInput', 'a model with image input [C, H, W]', `input [${shape.join(', ')}]`);
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) fail('imageToInput', 'a positive integer width and height', `${width} x ${height}`);
  if (!(rgba instanceof Uint8Array || rgba instanceof Uint8ClampedArray) || rgba.length !== width * height * 4) {
    fail('imageToInput', `${width * height * 4} RGBA bytes for a ${width} x ${height} image`, rgba && typeof rgba === 'object' && 'length' in rgba ? `${(rgba as { length: number }).length}` : typeof rgba, 'Pass ImageData.data or decoded PNG data.');
  }
  const pre = preprocessOf(model), invert = opts.invert ?? false;
  const [C, H, W] = shape as [number, number, number];
  const w = width, h = height, data = rgba;
  const px = (x: number, y: number, c: number): number => {
    const i = (y * w + x) * 4, a = data[i + 3]! / 255;
    const v = C === 1 ? 0.299 * data[i]! + 0.587 * data[i + 1]! + 0.114 * data[i + 2]! : data[i + c]!;
    return v * a;
  };
  const out = new Float32Array(C * H * W);
  for (let c = 0; c < C; c++) {
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        // Bilinear sample at the pixel centre (identity when sizes match).
        const sx = Math.min(w - 1, Math.max(0, ((x + 0.5) * w) / W - 0.5)), sy = Math.min(h - 1, Math.max(0, ((y + 0.5) * h) / H - 0.5));
        const x0 = Math.floor(sx), y0 = Math.floor(sy), x1 = Math.min(w - 1, x0 + 1), y1 = Math.min(h - 1, y0 + 1);
        const fx = sx - x0, fy = sy - y0;
        let v = (1 - fy) * ((1 - fx) * px(x0, y0, c) + fx * px(x1, y0, c)) + fy * ((1 - fx) * px(x0, y1, c) + fx * px(x1, y1, c));
        if (invert) v = 255 - v;
        out[(c * H + y) * W + x] = (v * pre.scale - (pre.mean[c] ?? 0)) / (pre.std[c] ?? 1);
      }
    }
  }
  return out;
}

/** The k largest classes of one logits row, with softmax probabilities, best first (first index on ties). */
export function topK(logits: Float32Array | readonly number[], k: number, labels?: readonly string[]): { index: number; label: string; probability: number }[] {
  const n = logits.length;
  if (!Number.isInteger(k) || k < 1) fail('topK', 'a positive integer k', String(k));
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, logits[i]!);
  let z = 0;
  const e = new Float64Array(n);
  for (let i = 0; i < n; i++) z += e[i] = Math.exp(logits[i]! - max);
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => logits[b]! - logits[a]! || a - b);
  return order.slice(0, k).map((i) => ({ index: i, label: labels?.[i] ?? String(i), probability: e[i]! / z }));
}
