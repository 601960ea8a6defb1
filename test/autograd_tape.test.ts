import '../src/index.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Tensor } from '../src/core/tensor.js';
import { backward, fresh, handOn, mayOverwrite, record, withAddend } from '../src/autograd/tape.js';
import { add, mul } from '../src/ops/elementwise.js';
import { sum } from '../src/ops/reduce.js';
import { customGrad } from '../src/ops/custom.js';

// the tape's in-place accumulation into fresh gradient arrays (autograd/tape.ts `fresh`)

test('backward adds into fresh gradient arrays in place, never into ones a rule handed on (aliasing)', () => {
  const scaleBy = (k: number, t: Tensor) =>
    customGrad(`x${k}`, [t], ([v]) => mul(v!, k), (g) => [fresh(new Tensor(g.f32().map((e) => e * k), g.shape))]);
  // One rule returning the same fresh array for two inputs: neither may be written in place.
  const dup = (a: Tensor, b: Tensor) =>
    customGrad('dup', [a, b], ([u, v]) => add(u!, v!), (g) => {
      const t = fresh(new Tensor(Float32Array.from(g.f32()), g.shape));
      return [t, t];
    });
  const x = new Tensor(Float32Array.of(1, -2, 3), [3]);
  x.requiresGrad = true;
  const y = new Tensor(Float32Array.of(0.5, 0.25, 4), [3]);
  y.requiresGrad = true;
  // w = 2·(3x + x) + dup(x, y) + 5y: dw/dx = 8 + 1 = 9, dw/dy = 1 + 5 = 6
  const v = add(scaleBy(3, x), x);
  const w = add(add(add(v, v), dup(x, y)), scaleBy(5, y));
  backward(sum(w));
  assert.deepEqual(Array.from(x.grad!.f32()), [9, 9, 9]);
  assert.deepEqual(Array.from(y.grad!.f32()), [6, 6, 6]);
  // The same graph twice with the leaves' grads accumulated: 18 and 12, and the first grads were not aliased.
  const gx = x.grad!;
  backward(sum(add(add(add(v, v), dup(x, y)), scaleBy(5, y))));
  assert.deepEqual(Array.from(gx.f32()), [9, 9, 9], 'the first .grad array was replaced, not written into');
  assert.deepEqual(Array.from(x.grad!.f32()), [18, 18, 18]);
  assert.deepEqual(Array.from(y.grad!.f32()), [12, 12, 12]);
});

test('a rule may fold the gradient already summed for an input into its own (withAddend): same result, offered only when safe', () => {
  let offered = 0, taken = 0;
  // out = 3·x; the rule returns 3·g + addend when the tape offers one.
  const triple = (t: Tensor, take: boolean) =>
    record(new Tensor(t.f32().map((e) => 3 * e), t.shape), 'triple', [t], (g, addends) => {
      const prev = addends[0];
      if (prev) offered++;
      if (!prev || !take) return [fresh(new Tensor(g.f32().map((e) => 3 * e), g.shape))];
      taken++;
      const pv = prev.f32();
      return [withAddend(fresh(new Tensor(g.f32().map((e, i) => Math.fround(3 * e) + pv[i]!), g.shape)))];
    });
  for (const take of [false, true]) {
    const x = new Tensor(Float32Array.of(1, -2, 3), [3]);
    x.requiresGrad = true;
    // w = triple(x) + 2·x + 4·x: the mul branches run first, so triple's rule is offered their sum (6).
    const w = add(triple(x, take), add(mul(x, 2), mul(x, 4)));
    backward(sum(mul(w, 0.5)));
    assert.deepEqual(Array.from(x.grad!.f32()), [4.5, 4.5, 4.5], `take=${take}`);
  }
  assert.equal(offered, 2);
  assert.equal(taken, 1);
  // An input that appears twice in one node is never offered an addend (two gradients, one sum).
  const both = (a: Tensor) =>
    record(new Tensor(a.f32().map((e) => e * e), a.shape), 'square', [a, a], (g, addends) => {
      assert.deepEqual(addends, [null, null]);
      return [mul(g, a), mul(g, a)];
    });
  const y = new Tensor(Float32Array.of(2, 3), [2]);
  y.requiresGrad = true;
  backward(sum(add(both(y), mul(y, 1))));
  assert.deepEqual(Array.from(y.grad!.f32()), [5, 7]);
  // Claiming an addend that was not offered is a bug in the rule: an error, not a silently wrong sum.
  const liar = (t: Tensor) => record(t.detach(), 'liar', [t], (g) => [withAddend(fresh(new Tensor(Float32Array.from(g.f32()), g.shape)))]);
  const z = new Tensor(Float32Array.of(1), [1]);
  z.requiresGrad = true;
  assert.throws(() => backward(sum(liar(z))), /liar returned input 0's gradient with an addend, but none was offered/);
});

test('an array only the tape holds stays writable when a rule hands it on once (mayOverwrite), never when handed on twice', () => {
  const seen: boolean[] = [];
  // out = 3·x; records whether the tape let it overwrite the addend it was offered, and uses it.
  const triple = (t: Tensor) =>
    record(new Tensor(t.f32().map((e) => 3 * e), t.shape), 'triple', [t], (g, addends) => {
      const prev = addends[0];
      if (!prev) return [fresh(new Tensor(g.f32().map((e) => 3 * e), g.shape))];
      seen.push(mayOverwrite(prev));
      const gv = g.f32();
      if (mayOverwrite(prev)) {
        const pv = prev.f32();
        for (let i = 0; i < pv.length; i++) pv[i] = Math.fround(3 * gv[i]!) + pv[i]!;
        return [withAddend(fresh(prev))];
      }
      const pv = prev.f32();
      return [withAddend(fresh(new Tensor(gv.map((e, i) => Math.fround(3 * e) + pv[i]!), g.shape)))];
    });
  // passOn(a, r) = 2a + r, r's gradient handed on unchanged (a residual add folded into a node),
  // declared with handOn or (a rule that might keep g, e.g. a gradient hook) not.
  const kept: Tensor[] = [];
  const passOnAs = (declared: boolean) => (a: Tensor, r: Tensor) =>
    record(new Tensor(a.f32().map((e, i) => 2 * e + r.f32()[i]!), a.shape), 'passOn', [a, r], (g) => {
      if (!declared) kept.push(g);
      return [fresh(new Tensor(g.f32().map((e) => 2 * e), g.shape)), declared ? handOn(g) : g];
    });
  const passOn = passOnAs(true);
  // src(w) = w, its gradient a fresh copy: from here on the tape alone holds the gradient array.
  const src = (w: Tensor) => record(w.detach(), 'src', [w], (g) => [fresh(new Tensor(Float32Array.from(g.f32()), g.shape))]);
  const x = new Tensor(Float32Array.of(1, -2, 3), [3]);
  x.requiresGrad = true;
  // r = x·1; w = passOn(triple(r), r): passOn hands its (owned) gradient to r once, so triple may
  // add into it in place. dw/dr = 2·3 + 1 = 7.
  let r = mul(x, 1);
  backward(sum(src(passOn(triple(r), r))));
  assert.deepEqual(Array.from(x.grad!.f32()), [7, 7, 7]);
  assert.deepEqual(seen, [true], 'handed on once: writable');
  // The same without handOn: the rule kept g (a hook), so the tape never writes into it.
  seen.length = 0;
  x.grad = null;
  r = mul(x, 1);
  backward(sum(src(passOnAs(false)(triple(r), r))));
  assert.deepEqual(Array.from(x.grad!.f32()), [7, 7, 7]);
  assert.deepEqual(seen, [false], 'handed on without handOn: not writable');
  assert.deepEqual(Array.from(kept[0]!.f32()), [1, 1, 1], "the hook's gradient was not written into");
  // `add` hands its gradient to both inputs: the array is shared, so never writable. d/dr = 3 + 1.
  seen.length = 0;
  x.grad = null;
  r = mul(x, 1);
  backward(sum(src(add(triple(r), r))));
  assert.deepEqual(Array.from(x.grad!.f32()), [4, 4, 4]);
  assert.deepEqual(seen, [false], 'handed on twice: not writable');
});
