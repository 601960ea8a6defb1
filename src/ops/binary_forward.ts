import type { Backend, Conv2dParams, Shape } from '../core/backend.js';
import type { SignGrad } from '../quantizers/quantizer.js';
import { approxSignBackwardLoop, clippedSteLoop } from '../backends/ref/elementwise.js';
import { affineCombine as refAffineCombine, twoValues as refTwoValues } from '../backends/ref/affine_conv.js';
import { debugLog } from '../core/debug.js';
import { backend, type Tensor, wrap } from '../core/tensor.js';
import { fresh, mayOverwrite, needsGrad, record, withAddend } from '../autograd/tape.js';
import { conv2dGeometry, type Conv2dOpts } from './conv.js';

/**
 * Binary forward in training. When a binary layer's quantized activations are exactly ±s (one
 * s > 0 for the whole tensor) and its quantized weights are exactly ±a_i per output channel, the
 * layer's output is s·a_i·(±1 dot product), which the packed kernels compute with XOR + popcount
 * (bit convention in core/backend.ts). The backward pass stays float: the same gradient rule as
 * the float conv/matmul on the quantized values (the quantizers' pseudo-gradients then apply as
 * usual). Values with an offset (AdaBin's {β−α, β+α}) take `affinePackedConv2d` (the same kernel
 * plus per-channel corrections); a ±1 border around ±s (s ≠ 1) activations and anything else not
 * two-valued take the float path, said once in the debug log (ONEBIT_DEBUG=1).
 *
 * Used when the backend asks for it (`packedBinaryForward`, the native backend) or ONEBIT_PACKED=1;
 * ONEBIT_PACKED=0 turns it off. The parity tests check it equals the float-simulated forward.
 */
export function packedForwardEnabled(): boolean {
  const env = process.env.ONEBIT_PACKED;
  if (env === '1') return true;
  if (env === '0') return false;
  return backend().packedBinaryForward === true;
}

/**
 * Whether binary convs may fuse a sign input quantizer into the packed conv (`packedSignConv2d`):
 * on wherever the packed forward is, unless ONEBIT_FUSED_SIGN=0 (the unfused path, for comparison).
 */
export function fusedSignEnabled(): boolean {
  return process.env.ONEBIT_FUSED_SIGN !== '0';
}

/** s when every value of x is +s or −s for one s > 0, else null (the backend's fused kernel when it has one). */
export function symmetricScale(x: Float32Array): number | null {
  const b = backend();
  return b.symmetricScale ? b.symmetricScale(x) : symmetricScaleLoop(x);
}

/** The TypeScript loop of `symmetricScale` (backends without the fused kernel; the conformance oracle). */
export function symmetricScaleLoop(x: Float32Array): number | null {
  if (!x.length) return null;
  const s = Math.abs(x[0]!);
  if (!(s > 0)) return null;
  for (let i = 1; i < x.length; i++) if (x[i] !== s && x[i] !== -s) return null;
  return s;
}

/** a_i when every value of output channel i (axis 0 of w) is ±a_i with a_i > 0, else null. */
export function channelScales(w: Float32Array, channels: number): Float32Array | null {
  const per = w.length / channels;
  const a = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    const s = Math.abs(w[c * per]!);
    if (!(s > 0)) return null;
    for (let j = 1; j < per; j++) {
      const v = w[c * per + j]!;
      if (v !== s && v !== -s) return null;
    }
    a[c] = s;
  }
  return a;
}

/**
 * y = binaryConv2d(x, w) with channel co's plane multiplied by f_co = fround(s·a_co), each product
 * rounded to float32: in the conv's epilogue when the backend has binaryConv2dScaled, else the conv
 * and then the backend's scaleChannels (or this loop, which gives the same bits). With `ifFinite`,
 * null when x holds a NaN (checked while packing where the backend can, else by a pass first).
 */
function scaledBinaryConv2d(b: Backend, xd: Float32Array, xShape: Shape, wd: Float32Array, wShape: Shape, p: Conv2dParams, padValue: number, yShape: Shape, s: number, a: Float32Array, ifFinite: true): Float32Array | null;
function scaledBinaryConv2d(b: Backend, xd: Float32Array, xShape: Shape, wd: Float32Array, wShape: Shape, p: Conv2dParams, padValue: number, yShape: Shape, s: number, a: Float32Array): Float32Array;
function scaledBinaryConv2d(b: Backend, xd: Float32Array, xShape: Shape, wd: Float32Array, wShape: Shape, p: Conv2dParams, padValue: number, yShape: Shape, s: number, a: Float32Array, ifFinite = false): Float32Array | null {
  const c = a.length, f = new Float32Array(c);
  for (let ch = 0; ch < c; ch++) f[ch] = s * a[ch]!;
  if (ifFinite && b.binaryConv2dScaledIfFinite) return b.binaryConv2dScaledIfFinite(xd, xShape, wd, wShape, p, padValue, f);
  if (ifFinite && (b.hasNaN ? b.hasNaN(xd) : xd.some(Number.isNaN))) return null;
  if (b.binaryConv2dScaled) return b.binaryConv2dScaled(xd, xShape, wd, wShape, p, padValue, f);
  const y = b.binaryConv2d(xd, xShape, wd, wShape, p, padValue);
  const n = yShape[0]!, plane = yShape[2]! * yShape[3]!;
  if (b.scaleChannels) {
    b.scaleChannels(y, n, c, plane, f);
    return y;
  }
  for (let i = 0, o = 0; i < n; i++) {
    for (let ch = 0; ch < c; ch++) {
      const fc = f[ch]!;
      for (let e = o + plane; o < e; o++) y[o] = Math.fround(y[o]! * fc);
    }
  }
  return y;
}

/**
 * conv2d(pad(xq, padValue), wq) on the packed kernel, or null when xq/wq are not two-valued (the
 * caller then runs the float path). padValue 0 = zero padding; ±1 = binary border (needs s = 1).
 */
export function packedConv2d(xq: Tensor, wq: Tensor, opts: Conv2dOpts, padValue: number): Tensor | null {
  const { p, yShape } = conv2dGeometry(xq, wq, null, opts);
  const xd = xq.f32('binaryConv2d'), wd = wq.f32('binaryConv2d');
  const b = backend();
  const s = symmetricScale(xd);
  const a = s === null ? null : channelScales(wd, wq.shape[0]!);
  const y = s !== null && a !== null && (padValue === 0 || s === 1)
    ? scaledBinaryConv2d(b, xd, xq.shape, wd, wq.shape, p, padValue, yShape, s, a)
    : affinePackedConv2d(b, xd, xq.shape, wd, wq.shape, p, padValue, yShape);
  if (y === null) {
    debugLog(`binary conv ${xq.shape.join('x')} * ${wq.shape.join('x')}: values not exactly ±s / ±a_i nor two-valued with zero padding; float forward`);
    return null;
  }
  return record(wrap(y, yShape), 'binaryConv2d', [xq, wq], (g) => {
    const gd = g.f32();
    const dw = needsGrad(wq) ? fresh(wrap(filterGrad(b, xd, xq.shape, gd, g.shape, wq.shape, p, padValue), wq.shape)) : null;
    const dx = needsGrad(xq) ? fresh(wrap(b.conv2dBackwardInput(gd, g.shape, wd, wq.shape, xq.shape, p), xq.shape)) : null;
    return [dx, dw];
  });
}

/** Whether two-valued (offset) operands may take the packed forward; ONEBIT_PACKED_AFFINE=0 sends them to the float conv. */
export function affinePackedEnabled(): boolean {
  return process.env.ONEBIT_PACKED_AFFINE !== '0';
}

/**
 * The packed forward of a conv whose input holds two values {lo, hi} (one pair for the whole
 * tensor) and whose weights hold two values {lo_o, hi_o} per output channel: AdaBin's binary sets
 * (methods.md §3.2–3.3). With x = m_x + h_x·B_x and w_o = m_o + h_o·B_w (B = ±1, +1 for the upper
 * value; m the midpoint, h the half-gap) and zero padding, each output is
 *
 *   y[n, o, p] = h_x·h_o·P[n, o, p] + h_x·m_o·S[n, p] + m_x·(h_o·Q[o, p] + m_o·C·nv[p])
 *
 * P: the ±1 conv of the codes (packed kernel; only signs are read, so x − m_x serves as the codes);
 * S: the sum of B_x over the taps inside the image (the same kernel call, one extra all-+1 output
 * channel); Q[o, p]: the sum of B_w[o] over the taps inside the image at p, and nv[p] their count.
 * The sum is taken in float64 and rounded once (`affineCombine`), so it differs from the float
 * conv's float32 accumulation by rounding only. Null (the float path) for anything else: groups ≠ 1,
 * a ±1 border, operands that are not two-valued (a single value included) or not finite, a midpoint
 * that does not separate the two input values in float32, a kernel wider than 30 taps (the tap
 * masks are 31-bit integers), or ONEBIT_PACKED_AFFINE=0.
 */
export function affinePackedConv2d(b: Backend, xd: Float32Array, xShape: Shape, wd: Float32Array, wShape: Shape, p: Conv2dParams, padValue: number, yShape: Shape): Float32Array | null {
  if (padValue !== 0 || p.groups !== 1 || !affinePackedEnabled() || wShape[2]! > 30 || wShape[3]! > 30) return null;
  const [N, C, H, W] = xShape as [number, number, number, number];
  const [O, , KH, KW] = wShape as [number, number, number, number];
  const K = C * KH * KW, T = KH * KW;
  // Weights first (small): per channel one or two finite values.
  const mo = new Float64Array(O), ho = new Float64Array(O), R = new Float64Array(O * T);
  const wext = new Float32Array((O + 1) * K).fill(1);
  for (let o = 0; o < O; o++) {
    const v = refTwoValues(wd.subarray(o * K, (o + 1) * K));
    const v0 = wd[o * K]!;
    if (v === null && !(Number.isFinite(v0) && wd.subarray(o * K, (o + 1) * K).every((e) => e === v0))) return null;
    const [lo, hi] = v ?? [v0, v0];
    mo[o] = (lo + hi) / 2;
    ho[o] = (hi - lo) / 2;
    for (let j = 0; j < K; j++) {
      const code = wd[o * K + j] === hi ? 1 : -1;
      wext[o * K + j] = code;
      R[o * T + (j % T)]! += code;
    }
  }
  const xv = (b.twoValues ?? refTwoValues)(xd);
  if (xv === null) return null;
  const [lo, hi] = xv;
  const mid = Math.fround((lo + hi) / 2);
  if (!(lo < mid && mid < hi)) return null;
  const mx = (lo + hi) / 2, hx = (hi - lo) / 2;
  const xs = b.binary('sub', xd, xShape, Float32Array.of(mid), [1], xShape);
  const counts = b.binaryConv2d(xs, xShape, wext, [O + 1, C, KH, KW], p, 0);
  const [Ho, Wo] = [yShape[2]!, yShape[3]!], HW = Ho * Wo;
  const [sh, sw] = p.stride, [ph, pw] = p.padding, [dh, dw] = p.dilation;
  const f1 = new Float64Array(O), f2 = new Float64Array(O);
  for (let o = 0; o < O; o++) {
    f1[o] = hx * ho[o]!;
    f2[o] = hx * mo[o]!;
  }
  // Which taps fall inside the image depends only on the output row (kh) and column (kw): a few
  // distinct row and column masks (top / inside / bottom), so Q is tabulated per mask pair.
  const masks = (n: number, k: number, s: number, pad: number, d: number, size: number) => {
    const ids = new Int32Array(n), list: number[] = [];
    for (let i = 0; i < n; i++) {
      let m = 0;
      for (let t = 0; t < k; t++) {
        const at = i * s - pad + t * d;
        if (at >= 0 && at < size) m |= 1 << t;
      }
      let id = list.indexOf(m);
      if (id < 0) id = list.push(m) - 1;
      ids[i] = id;
    }
    return { ids, list };
  };
  const rows = masks(Ho, KH, sh, ph, dh, H), cols = masks(Wo, KW, sw, pw, dw, W);
  const nr = rows.list.length, nc = cols.list.length;
  // table[(o·nr + r)·nc + c] = m_x·(h_o·Q + m_o·C·nv) for row mask r and column mask c.
  const table = new Float64Array(O * nr * nc);
  for (let r = 0; r < nr; r++) {
    for (let c = 0; c < nc; c++) {
      const rm = rows.list[r]!, cm = cols.list[c]!;
      let nv = 0;
      for (let kh = 0; kh < KH; kh++) for (let kw = 0; kw < KW; kw++) if ((rm >> kh) & (cm >> kw) & 1) nv++;
      for (let o = 0; o < O; o++) {
        let q = 0;
        for (let kh = 0; kh < KH; kh++) for (let kw = 0; kw < KW; kw++) if ((rm >> kh) & (cm >> kw) & 1) q += R[o * T + kh * KW + kw]!;
        table[(o * nr + r) * nc + c] = mx * (ho[o]! * q + mo[o]! * C * nv);
      }
    }
  }
  const c2 = new Float64Array(O * HW);
  for (let o = 0; o < O; o++) {
    for (let oh = 0; oh < Ho; oh++) {
      const base = (o * nr + rows.ids[oh]!) * nc, at = o * HW + oh * Wo;
      for (let ow = 0; ow < Wo; ow++) c2[at + ow] = table[base + cols.ids[ow]!]!;
    }
  }
  return (b.affineCombine ?? refAffineCombine)(counts, N, O, HW, f1, f2, c2);
}

/** dL/dx = the sign quantizer's pseudo-gradient of g at x, into `out` (which may be g itself). */
export function applySignGrad(grad: SignGrad, g: Float32Array, x: Float32Array, out: Float32Array): void {
  const b = backend();
  if (grad.kind === 'clipped_ste') {
    if (b.clippedSte) b.clippedSte(g, x, grad.clip, out);
    else clippedSteLoop(g, x, grad.clip, out);
  } else if (b.approxSignBackward) b.approxSignBackward(g, x, out);
  else approxSignBackwardLoop(g, x, out);
}

/**
 * Whether the fused sign conv's backward may use the backend's one-call kernel (conv2dBackwardSign:
 * one dy reorder, signs and the pseudo-gradient applied while changing layout); ONEBIT_FUSED_SIGN=0
 * or ONEBIT_FUSED_SIGN_BACKWARD=0 turn it off (the separate kernels, same results).
 */
export function fusedSignBackwardEnabled(): boolean {
  return process.env.ONEBIT_FUSED_SIGN_BACKWARD !== '0';
}

/** A ±1 copy of x in a buffer shared by every fused layer's backward (they run one at a time). */
let signScratch = new Float32Array(0);
function signOf(x: Float32Array): Float32Array {
  if (signScratch.length < x.length) signScratch = new Float32Array(x.length);
  const out = signScratch.subarray(0, x.length);
  const b = backend();
  if (b.signInto) b.signInto(out, x);
  else for (let i = 0; i < x.length; i++) { const v = x[i]!; out[i] = v >= 0 ? 1 : v < 0 ? -1 : NaN; }
  return out;
}

/**
 * The input quantizer sign(x) fused into the packed conv: conv2d(pad(sign(x), padValue), wq) with
 * the quantizer's pseudo-gradient `grad` applied to dL/d sign(x) in the same backward. Equal, values
 * and gradients, to `packedConv2d(quantizer.apply(x), wq, …)` — but the ±1 activations are never
 * stored: the conv packs the signs of x itself, and the backward rebuilds them in a shared buffer
 * for dW only, then applies `grad` in place on dL/d sign(x). Null when wq is not ±a_i per channel
 * or x holds a NaN (sign(NaN) is NaN, which 1-bit packing cannot carry): the caller then runs the
 * quantizer and the unfused path.
 */
export function packedSignConv2d(x: Tensor, wq: Tensor, opts: Conv2dOpts, padValue: number, grad: SignGrad): Tensor | null {
  const { p, yShape } = conv2dGeometry(x, wq, null, opts);
  const xd = x.f32('binaryConv2d'), wd = wq.f32('binaryConv2d');
  const a = channelScales(wd, wq.shape[0]!);
  if (a === null) {
    debugLog(`binary conv ${x.shape.join('x')} * ${wq.shape.join('x')}: weights not exactly ±a_i; float forward`);
    return null;
  }
  const b = backend();
  const y = scaledBinaryConv2d(b, xd, x.shape, wd, wq.shape, p, padValue, yShape, 1, a, true);
  if (y === null) {
    debugLog(`binary conv ${x.shape.join('x')}: NaN in the input; float forward`);
    return null;
  }
  return record(wrap(y, yShape), 'signBinaryConv2d', [x, wq], (g, addends) => {
    const gd = g.f32();
    if (b.conv2dBackwardSign && fusedSignBackwardEnabled() && padValue === 0 && p.groups === 1 && needsGrad(x) && needsGrad(wq)) {
      // x's gradient so far (e.g. a residual shortcut's) is added in the same pass when offered,
      // into that very array when only the tape holds it (no new array per layer).
      const prev = addends[0];
      const r = b.conv2dBackwardSign(xd, x.shape, gd, wd, wq.shape, p, grad, prev ? prev.f32() : null, !!prev && mayOverwrite(prev));
      const dx = fresh(wrap(r.dx, x.shape));
      return [prev ? withAddend(dx) : dx, fresh(wrap(r.dw, wq.shape))];
    }
    let dw: Tensor | null = null;
    if (needsGrad(wq)) dw = fresh(wrap(filterGrad(b, signOf(xd), x.shape, gd, g.shape, wq.shape, p, padValue), wq.shape));
    let dx: Tensor | null = null;
    if (needsGrad(x)) {
      const dq = b.conv2dBackwardInput(gd, g.shape, wd, wq.shape, x.shape, p); // fresh: ours to overwrite
      applySignGrad(grad, dq, xd, dq);
      dx = fresh(wrap(dq, x.shape));
    }
    return [dx, dw];
  });
}

/** dW of conv2d(pad(xq, padValue), w) (zero padding, or a ±1 border padded first as the float path does). */
function filterGrad(b: Backend, xq: Float32Array, xShape: Shape, gd: Float32Array, gShape: Shape, wShape: Shape, p: Conv2dParams, padValue: number): Float32Array {
  if (padValue === 0) return b.conv2dBackwardFilter(xq, xShape, gd, gShape, wShape, p);
  const [ph, pw] = p.padding;
  const xp = b.pad2d(xq, xShape, [ph, ph, pw, pw], padValue);
  const xpShape = [xShape[0]!, xShape[1]!, xShape[2]! + 2 * ph, xShape[3]! + 2 * pw];
  return b.conv2dBackwardFilter(xp, xpShape, gd, gShape, wShape, { ...p, padding: [0, 0] });
}

/** xq [N, K] · wqᵀ [O, K] on the packed kernel, or null when not two-valued. */
export function packedLinear(xq: Tensor, wq: Tensor): Tensor | null {
  const xd = xq.f32('binaryLinear'), wd = wq.f32('binaryLinear');
  const [n, k] = xq.shape as [number, number];
  const o = wq.shape[0]!;
  const s = symmetricScale(xd);
  const a = s === null ? null : channelScales(wd, o);
  if (s === null || a === null) {
    debugLog(`binary dense ${n}x${k} * ${o}x${k}: values not exactly ±s / ±a_i; float forward`);
    return null;
  }
  const b = backend();
  const y = b.binaryMatmul(b.bitpack(xd, n, k), b.bitpack(wd, o, k), n, o, k);
  // y[i, j] *= s·a_j  (channels on the last axis here)
  for (let i = 0; i < n; i++) for (let j = 0; j < o; j++) y[i * o + j]! *= s * a[j]!;
  return record(wrap(y, [n, o]), 'binaryLinear', [xq, wq], (g) => {
    const gd = g.f32();
    return [
      needsGrad(xq) ? wrap(b.matmul(gd, wd, n, o, k, false, false), xq.shape) : null, // dX = G·W
      needsGrad(wq) ? wrap(b.matmul(gd, xd, o, n, k, true, false), wq.shape) : null, // dW = Gᵀ·X
    ];
  });
}
