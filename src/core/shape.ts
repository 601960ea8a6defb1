import { fail, fmtShape } from './errors.js';

/** Number of elements of a shape. */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major (C-order) strides. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

/** Validate a user-given shape: non-negative integers. */
export function checkShape(what: string, shape: readonly number[]): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) fail(what, 'a shape of non-negative integers', fmtShape(shape));
  }
}

/** NumPy broadcasting of two shapes; throws a clear error when they do not broadcast. */
export function broadcastShapes(what: string, a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      fail(what, 'shapes that broadcast (equal dims or 1)', `${fmtShape(a)} and ${fmtShape(b)}`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Strides of `shape` read as broadcast to `outShape` (0 where broadcast). */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const s = contiguousStrides(shape);
  const off = outShape.length - shape.length;
  const r = new Array<number>(outShape.length).fill(0);
  for (let i = 0; i < shape.length; i++) r[i + off] = shape[i] === 1 ? 0 : s[i]!;
  return r;
}

/** Normalise possibly-negative axes; validates range and duplicates. */
export function normAxes(what: string, axes: number | readonly number[] | undefined, rank: number): number[] {
  if (axes === undefined) return [...Array(rank).keys()];
  const list = typeof axes === 'number' ? [axes] : [...axes];
  const out = list.map((a) => {
    if (!Number.isInteger(a) || a < -rank || a >= rank) fail(what, `axes in [${-rank}, ${rank - 1}]`, String(a));
    return a < 0 ? a + rank : a;
  });
  if (new Set(out).size !== out.length) fail(what, 'distinct axes', `[${list.join(',')}]`);
  return out.sort((x, y) => x - y);
}

export function shapesEqual(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Merge the output dims of a broadcasting binary op into as few as possible: adjacent dims merge
 * when each operand is either broadcast over both (stride 0) or contiguous across them, and size-1
 * dims drop. [N,C,H,W] ∘ [1,C,1,1] becomes dims [N, C, H·W] with strides a [C·H·W, H·W, 1],
 * b [0, 1, 0]. Returns the merged dims with each operand's element strides (0 = broadcast).
 */
export function collapseBroadcast(aShape: readonly number[], bShape: readonly number[], outShape: readonly number[]): { dims: number[]; sa: number[]; sb: number[] } {
  const fa = broadcastStrides(aShape, outShape), fb = broadcastStrides(bShape, outShape);
  const dims: number[] = [], sa: number[] = [], sb: number[] = [];
  for (let d = 0; d < outShape.length; d++) {
    const n = outShape[d]!;
    if (n === 1) continue;
    const k = dims.length - 1;
    if (k >= 0 && sa[k] === fa[d]! * n && sb[k] === fb[d]! * n) {
      dims[k]! *= n;
      sa[k] = fa[d]!;
      sb[k] = fb[d]!;
    } else {
      dims.push(n);
      sa.push(fa[d]!);
      sb.push(fb[d]!);
    }
  }
  return { dims, sa, sb };
}

/**
 * collapseBroadcast padded on the left to exactly 3 dims (size 1, stride 0), or null when more
 * than 3 remain: the form the fast broadcasting loops (ref binary3, native binaryStridedF32) take.
 */
export function collapseBroadcast3(aShape: readonly number[], bShape: readonly number[], outShape: readonly number[]): { dims: number[]; sa: number[]; sb: number[] } | null {
  const c = collapseBroadcast(aShape, bShape, outShape);
  if (c.dims.length > 3) return null;
  while (c.dims.length < 3) {
    c.dims.unshift(1);
    c.sa.unshift(0);
    c.sb.unshift(0);
  }
  return c;
}
