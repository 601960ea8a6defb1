import assert from 'node:assert/strict';
import { Tensor, tensor } from '../../src/core/tensor.js';
import { Rng } from '../../src/core/rng.js';
import { backward, noGrad } from '../../src/autograd/tape.js';

/** Random float32 tensor with values in [lo, hi), from a seeded generator. */
export function randTensor(shape: number[], seed = 1, lo = -1, hi = 1): Tensor {
  const r = new Rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tensor(Array.from({ length: n }, () => r.uniform(lo, hi)), shape);
}

/**
 * Finite-difference gradient check. Computes L = Σ f(inputs) ⊙ w for a fixed random w, compares
 * autograd's dL/d(input) with central differences (step `eps`) for every input element.
 * Float32 arithmetic: the default eps 1e-2 with tolerance atol 2e-3 + rtol 2e-2 passes smooth ops
 * and fails a wrong rule by far (a wrong rule is off by O(1)).
 */
export function gradcheck(
  f: (...xs: Tensor[]) => Tensor,
  inputs: Tensor[],
  opts: { eps?: number; atol?: number; rtol?: number; check?: boolean[] } = {},
): void {
  const leaves = inputs.map((t) => {
    const p = new Tensor(Float32Array.from(t.f32()), t.shape);
    p.requiresGrad = true;
    return p;
  });
  paramGradcheck(() => f(...leaves), leaves, { ...opts, check: opts.check });
}

/** Assert two float arrays agree elementwise within atol + rtol·|b|. */
export function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, atol = 1e-5, rtol = 1e-5, what = 'value'): void {
  assert.equal(a.length, b.length, `${what}: length ${a.length} vs ${b.length}`);
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!, y = b[i]!;
    assert.ok(Math.abs(x - y) <= atol + rtol * Math.abs(y), `${what}[${i}]: ${x} vs ${y}`);
  }
}

/**
 * Finite-difference check of parameter gradients: `f` builds the output from leaf tensors the
 * caller owns (module weights, or gradcheck's inputs); each element is perturbed in place.
 * `check[i] = false` skips the i-th tensor.
 */
export function paramGradcheck(f: () => Tensor, params: Tensor[], opts: { eps?: number; atol?: number; rtol?: number; check?: boolean[] } = {}): void {
  const eps = opts.eps ?? 1e-2, atol = opts.atol ?? 2e-3, rtol = opts.rtol ?? 2e-2;
  for (const p of params) p.grad = null;
  const out = f();
  const w = randTensor([...out.shape], 99, 0.5, 1.5);
  const scalar = (o: Tensor): number => {
    const a = o.f32(), b = w.f32();
    let s = 0;
    for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
    return s;
  };
  backward(out, w);
  params.forEach((p, pi) => {
    if (opts.check && !opts.check[pi]) return;
    const data = p.storage as Float32Array;
    const analytic = p.grad ? p.grad.f32() : new Float32Array(p.size);
    for (let i = 0; i < data.length; i++) {
      const orig = data[i]!;
      data[i] = orig + eps;
      const fp = noGrad(() => scalar(f()));
      data[i] = orig - eps;
      const fm = noGrad(() => scalar(f()));
      data[i] = orig;
      const numeric = (fp - fm) / (2 * eps);
      assert.ok(Math.abs(analytic[i]! - numeric) <= atol + rtol * Math.abs(numeric), `param ${pi} element ${i}: autograd ${analytic[i]} vs finite difference ${numeric}`);
    }
  });
}
