import { fail, fmtShape } from '../core/errors.js';
import { type Tensor, wrap } from '../core/tensor.js';
import { noGrad } from '../autograd/tape.js';
import type { Quantizer } from '../quantizers/quantizer.js';

/**
 * The inference ("eval-mode") form of the 1-bit quantizers: what a quantizer computes once
 * training is over, written as plain per-channel numbers that an exporter (the `.onebit` engine,
 * the ONNX export) can fold into its kernels.
 *
 * Activations (`activationForm`): every supported input quantizer is a per-channel step,
 *
 *   q(x)[n, c, …] = x >= thr[c] ? hi[c] : lo[c]        (sign(0) = +1: x == thr gives hi)
 *
 * The threshold comes from the quantizer's formula (below); lo and hi are then MEASURED by running
 * the quantizer's own forward (eval mode, no tape) on probe values on both sides of thr, and the
 * form is checked on every probe, so the numbers are the float32 values training produces.
 *
 *   alias                                        thr[c]
 *   ste_sign, approx_sign, swish_sign, ede_sign  0
 *   rsign                                        −b[c]                     (sign(x + b) ≥ 0 ⟺ x ≥ −b, exact in float)
 *   adabin_act (code and paper forms)            β if α > 0, nextUp(β) if α < 0  (sign((x − β)/α))
 *
 * Caveat (adabin_act): for |x − β| below α·2^−150 (both values subnormal-scale) the quotient
 * (x − β)/α underflows to ±0 and the trained forward gives +1 where the form gives lo; no real
 * activation lies there.
 *
 * Weights (`weightForm`): the kernel quantizer's forward is run on the latent weights (eval mode, no
 * tape) and each output channel (axis 0) must hold at most two distinct values, so
 *
 *   wq[i, …] = signs[i, …] > 0 ? hi[i] : lo[i]          (hi[i] >= lo[i])
 *
 * A channel with one value v gets the symmetric pair (lo, hi) = (−|v|, |v|) and the sign of v, so
 * symmetric quantizers (ste_sign, xnor_sign, rebnn_weight, …) always have lo = −hi.
 *
 * Non-binary quantizers (ste_tern, dorefa with more than one bit) and unknown aliases fail with one
 * OnebitError naming them.
 */

/** Per-channel step form of an input quantizer: y = x >= thr[c] ? hi[c] : lo[c]. */
export interface ActivationForm {
  thr: Float32Array;
  lo: Float32Array;
  hi: Float32Array;
}

/** Two-valued form of a kernel quantizer's output: wq = signs > 0 ? hi[channel] : lo[channel]. */
export interface WeightForm {
  /** ±1 per weight, same layout (and shape `shape`) as the latent weights. */
  signs: Int8Array;
  /** Lower / upper value per output channel (axis 0), lo <= hi. */
  lo: Float32Array;
  hi: Float32Array;
  shape: number[];
}

/** Input quantizers with a known threshold rule (see the module comment). */
const PLAIN_SIGN = new Set(['ste_sign', 'approx_sign', 'swish_sign', 'ede_sign']);
const ACTIVATION_ALIASES = [...PLAIN_SIGN, 'rsign', 'adabin_act'];

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The next float32 above v (v finite). */
export function nextUp32(v: number): number {
  f32[0] = v;
  if (f32[0] === 0) return 1.401298464324817e-45;
  if (f32[0]! > 0) u32[0]! += 1;
  else u32[0]! -= 1;
  return f32[0]!;
}

/** The next float32 below v (v finite). */
export function nextDown32(v: number): number {
  return -nextUp32(-v);
}

/** The float32 value of a number (rounding as a Float32Array store does). */
const fr = Math.fround;

/** Per-channel thresholds of a supported input quantizer (before lo/hi are measured). */
function thresholds(q: Quantizer, channels: number): Float32Array {
  const thr = new Float32Array(channels);
  if (PLAIN_SIGN.has(q.alias)) return thr;
  if (q.alias === 'rsign') {
    const b = (q as unknown as { bias: Tensor }).bias.f32();
    if (b.length !== channels) fail('activationForm rsign', `a bias of ${channels} channels`, `${b.length}`);
    for (let c = 0; c < channels; c++) thr[c] = -b[c]!;
    return thr;
  }
  if (q.alias === 'adabin_act') {
    const a = (q as unknown as { alpha: Tensor }).alpha.item(), b = (q as unknown as { beta: Tensor }).beta.item();
    if (!(Number.isFinite(a) && a !== 0 && Number.isFinite(b))) {
      fail('activationForm adabin_act', 'a finite non-zero α and a finite β', `α=${a}, β=${b}`, 'The layer diverged in training.');
    }
    return thr.fill(a > 0 ? b : nextUp32(b));
  }
  if (q.precision !== 1) {
    return fail('activationForm', 'a 1-bit input quantizer', `${q.alias} (${q.precision} bits)`, 'Only binary networks can be exported to .onebit; use a 1-bit method preset.');
  }
  return fail('activationForm', `an input quantizer with a known inference form (${ACTIVATION_ALIASES.join(', ')})`, JSON.stringify(q.alias));
}

/** A value a little below thr (the next float32 down, but not into the subnormal range). */
function below(thr: number): number {
  return Math.abs(thr) >= 1e-30 ? nextDown32(thr) : fr(thr - 1e-30);
}

/**
 * The eval-mode form of input quantizer `q` for activations with `channels` channels (axis 1):
 * y[n, c, …] = x >= thr[c] ? hi[c] : lo[c]. lo and hi are the float32 values the quantizer's own
 * forward produces; the form is checked against that forward on probes at and around thr.
 * Throws an OnebitError for a non-binary or unknown quantizer, or one whose output is not such a
 * step (e.g. non-finite learned parameters).
 */
export function activationForm(q: Quantizer, channels: number): ActivationForm {
  if (!Number.isInteger(channels) || channels < 1) fail('activationForm channels', 'a positive integer', String(channels));
  const thr = thresholds(q, channels);
  const bad = thr.findIndex((t) => !Number.isFinite(t));
  if (bad >= 0) fail(`activationForm ${q.alias}`, 'finite thresholds', `${thr[bad]} in channel ${bad}`, 'The layer diverged in training.');
  // Probes per channel: the first ABOVE are >= thr (expect hi), the rest below (expect lo).
  const ABOVE = 4;
  const probes = (t: number): number[] => [t, nextUp32(t), fr(t + 1), fr(t + 1000), below(t), fr(t - 1), fr(t - 1000)];
  const P = probes(0).length;
  const x = new Float32Array(P * channels);
  for (let c = 0; c < channels; c++) probes(thr[c]!).forEach((v, p) => (x[p * channels + c] = v));
  const wasTraining = q.training;
  q.eval();
  let y: Float32Array;
  try {
    y = noGrad(() => q.apply(wrap(x, [P, channels]))).f32();
  } finally {
    q.train(wasTraining);
  }
  const lo = new Float32Array(channels), hi = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    hi[c] = y[c]!;
    lo[c] = y[ABOVE * channels + c]!;
    for (let p = 0; p < P; p++) {
      const want = p < ABOVE ? hi[c]! : lo[c]!;
      const xv = x[p * channels + c]!, got = y[p * channels + c]!;
      // Keep the sign of the probe comparisons honest: a probe that rounded onto the other side is skipped.
      if ((p < ABOVE) !== (xv >= thr[c]!)) continue;
      if (!(got === want) || !Number.isFinite(got)) {
        fail(`activationForm ${q.alias}`, `a step x >= ${thr[c]} ? ${hi[c]} : ${lo[c]} in channel ${c}`, `q(${xv}) = ${got}`,
          'Its learned parameters may be non-finite.');
      }
    }
  }
  return { thr, lo, hi };
}

/**
 * The eval-mode form of kernel quantizer `q` on latent weights `w` [Cout, …]: per output channel i
 * the quantized weights take at most two values, wq = signs > 0 ? hi[i] : lo[i]. Computed by
 * running the quantizer's forward (eval mode, no tape); quantizers with lazily initialised state
 * (rebnn_weight, sabnn_sign) initialise it exactly as their first eval forward would. Throws an
 * OnebitError when a channel has more than two values or a non-finite one.
 */
export function weightForm(q: Quantizer, w: Tensor): WeightForm {
  if (w.rank < 1 || w.size === 0) fail('weightForm', 'a non-empty weight tensor [Cout, ...]', `shape ${fmtShape(w.shape)}`);
  if (q.precision !== 1) {
    fail('weightForm', 'a 1-bit kernel quantizer', `${q.alias} (${q.precision} bits)`, 'Only binary networks can be exported to .onebit; use a 1-bit method preset.');
  }
  const wasTraining = q.training;
  q.eval();
  let wq: Float32Array;
  try {
    wq = noGrad(() => q.apply(w)).f32();
  } finally {
    q.train(wasTraining);
  }
  const C = w.rank === 1 ? 1 : w.shape[0]!;
  const per = w.size / C;
  const signs = new Int8Array(w.size), lo = new Float32Array(C), hi = new Float32Array(C);
  for (let i = 0; i < C; i++) {
    let a = wq[i * per]!, b = a;
    for (let j = 0; j < per; j++) {
      const v = wq[i * per + j]!;
      if (!Number.isFinite(v)) fail(`weightForm ${q.alias}`, 'finite quantized weights', `${v} in output channel ${i}`, 'The layer diverged in training.');
      if (v === a || v === b) continue;
      if (a === b) {
        if (v < a) a = v;
        else b = v;
        continue;
      }
      fail(`weightForm ${q.alias}`, `at most two values per output channel (weight shape ${fmtShape(w.shape)})`,
        `${a}, ${b} and ${v} in output channel ${i}`, 'Only 1-bit kernel quantizers can be exported.');
    }
    if (a === b) {
      // One value: complete it symmetrically (the other state never occurs).
      const m = Math.abs(a);
      lo[i] = -m;
      hi[i] = m;
      signs.fill(a < 0 ? -1 : 1, i * per, (i + 1) * per);
      continue;
    }
    lo[i] = a;
    hi[i] = b;
    for (let j = 0; j < per; j++) signs[i * per + j] = wq[i * per + j] === b ? 1 : -1;
  }
  return { signs, lo, hi, shape: [...w.shape] };
}
