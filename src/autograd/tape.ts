import { backend, Tensor, type GradNode } from '../core/tensor.js';
import { fail, fmtShape } from '../core/errors.js';
import { shapesEqual } from '../core/shape.js';

/**
 * Define-by-run autograd. An op that runs while recording is on, with an input that requires a
 * gradient, attaches a GradNode to its output (`record`). `backward(loss)` walks the graph in
 * reverse topological order and accumulates `.grad` into leaf tensors. Recording is off inside
 * `noGrad` and while gradient rules run (no higher-order gradients).
 */
let recording = true;

export function isRecording(): boolean {
  return recording;
}

/** Run `fn` with the tape off: no graph is built (inference, optimizer updates, metrics). */
export function noGrad<T>(fn: () => T): T {
  const prev = recording;
  recording = false;
  try {
    return fn();
  } finally {
    recording = prev;
  }
}

export function needsGrad(t: Tensor): boolean {
  return t.requiresGrad || t.node !== null;
}

/** Attach a gradient rule to `out` if recording and some input needs a gradient. Returns `out`. */
export function record(out: Tensor, op: string, inputs: readonly Tensor[], backwardFn: GradNode['backward']): Tensor {
  if (recording && inputs.some(needsGrad)) out.node = { op, inputs, backward: backwardFn };
  return out;
}

/**
 * Arrays a gradient rule has just allocated and keeps no other reference to (`fresh`). The tape
 * may add another gradient into such an array in place instead of allocating the sum; a mark is
 * consumed when the rule returns, so an array passed on again (e.g. `add` handing its incoming
 * gradient to both inputs) is never mistaken for one.
 */
let freshArrays = new WeakSet<object>();

/**
 * Marks `t`, a gradient this rule just allocated (contiguous) and holds no other reference to, as
 * the tape's to overwrite. Returns `t`.
 */
export function fresh<T extends Tensor | null>(t: T): T {
  if (t && t.isContiguous && t.storage instanceof Float32Array) freshArrays.add(t.storage);
  return t;
}

/**
 * Gradients a rule returned with the addend the tape offered for that input already added
 * (`withAddend`); consumed when the rule returns, like the fresh marks.
 */
let summedArrays = new WeakSet<object>();

/** Incoming gradients a rule hands on unchanged and keeps no reference to (`handOn`). */
let handedOn = new WeakSet<object>();

/**
 * Marks `g`, the rule's incoming gradient, returned unchanged for one input (a residual add's
 * shortcut), as kept nowhere else by the rule: if only the tape held g, it still does, so later
 * sums may go into it in place. (Without the mark a rule may have stored g, e.g. a gradient hook,
 * and g is never written.) Returns `g`.
 */
export function handOn<T extends Tensor>(g: T): T {
  handedOn.add(g.storage);
  return g;
}

/** Addends offered to the running rule whose arrays only the tape holds (`mayOverwrite`). */
let writableAddends = new WeakSet<object>();

/**
 * Whether the running rule may write into `addend` (one of its `addends`): true when only the tape
 * holds that array, so the rule can add its gradient into it in place and return it (marked with
 * `withAddend` and `fresh`) instead of allocating a new one.
 */
export function mayOverwrite(addend: Tensor): boolean {
  return writableAddends.has(addend.storage);
}

/**
 * Marks `t`, returned by a rule for input j, as its gradient plus `addends[j]` (added elementwise
 * in float32, in place of the tape's own add: the same bits). The tape then takes `t` as input j's
 * whole gradient so far. Returns `t`.
 */
export function withAddend<T extends Tensor>(t: T): T {
  summedArrays.add(t.storage);
  return t;
}

/** Accumulate dL/d(loss) = `grad` (default 1 for a scalar) back through the graph into leaf `.grad`s. */
export function backward(loss: Tensor, grad?: Tensor): void {
  if (!needsGrad(loss)) fail('backward', 'a tensor that depends on a parameter with requiresGrad', 'a constant', 'Did you build it inside noGrad()?');
  if (!grad && loss.size !== 1) fail('backward', 'a scalar loss (or an explicit gradient)', `shape ${fmtShape(loss.shape)}`);
  if (grad && !shapesEqual(grad.shape, loss.shape)) {
    fail('backward', `a gradient of the loss's shape ${fmtShape(loss.shape)}`, `shape ${fmtShape(grad.shape)}`);
  }
  // Marks are per backward pass: an array recycled since an earlier pass (core/recycle.ts) carries none.
  freshArrays = new WeakSet();
  summedArrays = new WeakSet();
  handedOn = new WeakSet();
  writableAddends = new WeakSet();
  const seed = grad ?? new Tensor(new Float32Array(loss.size).fill(1), loss.shape);

  // Reverse topological order by iterative DFS.
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, number][] = [[loss, 0]];
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const [t, i] = top;
    if (i === 0) {
      if (seen.has(t)) {
        stack.pop();
        continue;
      }
      seen.add(t);
    }
    const inputs = t.node?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const child = inputs[i]!;
      if (!seen.has(child) && needsGrad(child)) stack.push([child, 0]);
    } else {
      stack.pop();
      order.push(t);
    }
  }

  const grads = new Map<Tensor, Tensor>([[loss, seed]]);
  // Gradient arrays only the tape references (fresh from a rule, or sums it allocated): safe to add into.
  const owned = new Set<Tensor>();
  noGrad(() => {
    for (let k = order.length - 1; k >= 0; k--) {
      const t = order[k]!;
      const g = grads.get(t);
      if (!g) continue;
      if (!t.node) {
        // A fresh copy on first write: g may be the caller's seed, another leaf's gradient (add) or a
        // view of either (reshape/permute), and `.grad` must not alias them (optimizers update in place).
        // An array only the tape holds is adopted as is.
        if (t.requiresGrad) t.grad = t.grad ? addSame(t.grad, g) : owned.has(g) ? g : new Tensor(Float32Array.from(g.f32()), g.shape);
        owned.delete(g);
        continue;
      }
      grads.delete(t); // free intermediate gradients early
      const gOwned = owned.delete(g); // from here on the rule may hand g on (aliased)
      const inputs = t.node.inputs;
      // What the tape has summed so far for each input, offered to the rule (contiguous only, and
      // not for an input that appears twice: its two gradients would both claim the one sum).
      const addends = inputs.map((inp) => {
        const prev = grads.get(inp);
        if (!prev || !prev.isContiguous || inputs.indexOf(inp) !== inputs.lastIndexOf(inp)) return null;
        if (owned.has(prev)) writableAddends.add(prev.storage);
        return prev;
      });
      let gin: readonly (Tensor | null)[];
      try {
        gin = t.node.backward(g, addends);
      } finally {
        for (const a of addends) if (a) writableAddends.delete(a.storage);
      }
      const isFresh = gin.map((gi) => !!gi && freshArrays.delete(gi.storage));
      const isSummed = gin.map((gi) => !!gi && summedArrays.delete(gi.storage));
      if (handedOn.delete(g.storage) && gOwned) {
        // An array only the tape held, handed on unchanged (`handOn`) to exactly one input: still
        // only the tape's.
        const hits = gin.flatMap((gi, j) => (gi && gi.storage === g.storage ? [j] : []));
        if (hits.length === 1 && gin[hits[0]!]!.isContiguous) isFresh[hits[0]!] = true;
      }
      for (let a = 0; a < gin.length; a++) {
        for (let c = a + 1; c < gin.length; c++) {
          if (gin[a] && gin[c] && gin[a]!.storage === gin[c]!.storage) isFresh[a] = isFresh[c] = false;
        }
      }
      t.node.inputs.forEach((inp, j) => {
        const gi = gin[j];
        if (!gi || !needsGrad(inp)) return;
        if (!shapesEqual(gi.shape, inp.shape)) {
          throw new Error(`internal: gradient of ${t.node!.op} input ${j} has shape ${fmtShape(gi.shape)}, expected ${fmtShape(inp.shape)}`);
        }
        const prev = grads.get(inp);
        if (isSummed[j]) {
          if (!addends[j]) throw new Error(`internal: ${t.node!.op} returned input ${j}'s gradient with an addend, but none was offered`);
          grads.set(inp, gi); // prev is inside gi now
          owned.delete(prev!);
          if (isFresh[j]) owned.add(gi);
        } else if (!prev) {
          grads.set(inp, gi);
          if (isFresh[j]) owned.add(gi);
        } else if (owned.has(prev)) {
          addInPlace(prev, gi);
        } else if (isFresh[j]) {
          addInPlace(gi, prev); // float addition commutes: the same bits as prev + gi
          grads.set(inp, gi);
          owned.add(gi);
        } else {
          const sum = addSame(prev, gi);
          grads.set(inp, sum);
          owned.add(sum);
        }
      });
    }
  });
}

/** a += b elementwise (a contiguous, same shapes), the backend's in-place add when it has one. */
function addInPlace(a: Tensor, b: Tensor): void {
  const av = a.f32(), bv = b.f32();
  const be = backend();
  if (be.addInPlace) be.addInPlace(av, bv);
  else for (let i = 0; i < av.length; i++) av[i] = av[i]! + bv[i]!;
}

function addSame(a: Tensor, b: Tensor): Tensor {
  return new Tensor(backend().binary('add', a.f32(), a.shape, b.f32(), b.shape, a.shape), a.shape);
}
