/**
 * Training-time augmentation for image batches, as a pure function of (dataset bytes, indices,
 * seed) so it gives the same batch on the training thread and in a worker, and a resumed run
 * sees exactly the batches an uninterrupted one would.
 *
 * RandomCrop(size, padding p) + RandomHorizontalFlip, as torchvision applies them to raw images:
 * the image is zero-padded (black, byte 0) by p on each side, a window of the original size is cut
 * at a uniform offset in [0, 2p]², then mirrored left-right with probability ½. Normalization is a
 * per-channel byte → float lookup table applied afterwards (so padding becomes (0 − mean)/std).
 */
import { Rng } from '../core/rng.js';

/** What to apply; `pad` 0 and `flip` false is the identity. */
export interface AugmentOptions {
  /** Zero padding of the random crop (4 for CIFAR). */
  pad: number;
  /** Mirror left-right with probability ½. */
  flip: boolean;
}

/**
 * Gather `indices` from `images` (uint8, `[count, C, H, W]`) into a float batch `[B, C, H, W]`,
 * augmenting each example with draws from `new Rng(seed)` (3 draws per example: dy, dx, flip),
 * then mapping bytes through `lut` (256 floats per channel). Writes into `out` if given.
 */
export function gatherAugmented(
  images: Uint8Array, C: number, H: number, W: number, indices: ArrayLike<number>, lut: Float32Array,
  aug: AugmentOptions, seed: number, out?: Float32Array,
): Float32Array {
  const B = indices.length, plane = H * W, per = C * plane, p = aug.pad;
  const x = out ?? new Float32Array(B * per);
  const r = new Rng(seed);
  for (let i = 0; i < B; i++) {
    const dy = p ? r.int(2 * p + 1) - p : 0;
    const dx = p ? r.int(2 * p + 1) - p : 0;
    const flip = aug.flip ? r.nextU32() >>> 31 === 1 : false;
    const src = indices[i]! * per;
    for (let c = 0; c < C; c++) {
      const base = c * 256, zero = lut[base]!;
      const s0 = src + c * plane, o0 = i * per + c * plane;
      for (let yy = 0; yy < H; yy++) {
        const sy = yy + dy, orow = o0 + yy * W;
        if (sy < 0 || sy >= H) {
          x.fill(zero, orow, orow + W);
          continue;
        }
        const srow = s0 + sy * W;
        for (let xx = 0; xx < W; xx++) {
          const sx = (flip ? W - 1 - xx : xx) + dx;
          x[orow + xx] = sx < 0 || sx >= W ? zero : lut[base + images[srow + sx]!]!;
        }
      }
    }
  }
  return x;
}
