import { fail } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';

/** Options every optimizer has: learning rate and weight decay (each optimizer says how it applies it). */
export interface BaseOptions {
  lr: number;
  weightDecay: number;
}

/** A value an optimizer option may take (kept JSON-friendly so a state dict can be stored in a checkpoint). */
export type OptionValue = number | boolean | readonly number[];

/** PyTorch-style parameter group: its own parameters, and options that fall back to the optimizer's defaults. */
export type ParamGroup<O extends BaseOptions = BaseOptions> = { params: Tensor[] } & Partial<O>;

/** A resolved group: every option set, plus `initialLr` (the base lr that `setLrFactor` scales). */
export type Group<O extends BaseOptions = BaseOptions> = O & { params: readonly Tensor[]; initialLr: number };

/** Everything needed to resume an optimizer bit-identically. Buffers are keyed "<groupIdx>.<paramIdx>.<name>". */
export interface OptimizerState {
  kind: string;
  step: number;
  groups: Record<string, OptionValue>[];
  buffers: Record<string, Float32Array>;
}

/** Check a numeric option: finite, ≥ min (or > min when `open`), and < max when given. */
export function checkNumber(what: string, name: string, v: unknown, min: number, open = false, max = Infinity): number {
  const ok = typeof v === 'number' && Number.isFinite(v) && (open ? v > min : v >= min) && v < max;
  if (!ok) {
    const range = `${open ? '>' : '≥'} ${min}${max < Infinity ? ` and < ${max}` : ''}`;
    fail(what, `${name} to be a finite number ${range}`, JSON.stringify(v) ?? String(v));
  }
  return v as number;
}

const sameType = (a: unknown, b: unknown): boolean =>
  Array.isArray(a) ? Array.isArray(b) && a.length === b.length && b.every((x) => typeof x === 'number') : typeof a === typeof b;

/**
 * Base class of all optimizers. Holds parameter groups, a global step counter t (incremented by
 * every `step()`, used e.g. by Adam's bias correction) and named float32 buffers per parameter.
 * `step()` applies the subclass's per-parameter rule p ← update(p, ∇p) in place on the parameter's
 * Float32Array storage, skipping parameters whose grad is null. Learning rates follow
 * lr_g = initialLr_g · factor, so one schedule factor scales groups with different base lrs.
 */
export abstract class Optimizer<O extends BaseOptions = BaseOptions> {
  readonly groups: Group<O>[];
  protected readonly buffers = new Map<string, Float32Array>();
  private t = 0;

  constructor(params: Tensor[] | ParamGroup<O>[], defaults: O) {
    const what = new.target.name;
    if (!Array.isArray(params) || params.length === 0) fail(what, 'a non-empty list of parameters or parameter groups', `${params}`);
    const list = params[0] instanceof Tensor ? [{ params: params as Tensor[] } as ParamGroup<O>] : (params as ParamGroup<O>[]);
    const seen = new Set<Tensor>();
    this.groups = list.map((pg, gi) => {
      if (!pg || !Array.isArray(pg.params)) fail(what, `group ${gi} to be { params: Tensor[], ...options }`, `${JSON.stringify(pg)}`);
      for (const key of Object.keys(pg)) {
        if (key !== 'params' && !(key in defaults)) fail(what, `group options among ${Object.keys(defaults).join(', ')}`, `"${key}" in group ${gi}`);
      }
      pg.params.forEach((p, pi) => {
        if (!(p instanceof Tensor) || p.dtype !== 'float32' || !p.isContiguous) {
          fail(what, 'contiguous float32 Tensors as parameters', `${p} at group ${gi}, param ${pi}`);
        }
        if (seen.has(p)) fail(what, 'each parameter in only one group', `a repeated parameter at group ${gi}, param ${pi}`);
        seen.add(p);
      });
      const opts = Object.fromEntries(Object.entries(pg).filter(([k, v]) => k !== 'params' && v !== undefined));
      const g = { ...defaults, ...opts, params: [...pg.params], initialLr: 0 } as Group<O>;
      g.initialLr = g.lr;
      this.validateGroup(g, `${what} (group ${gi})`);
      return g;
    });
    if (this.eagerBuffers()) {
      this.forEachParam((p, key) => { for (const n of this.bufferNames()) this.buffers.set(key + n, new Float32Array(p.size)); });
    }
  }

  /** Name of the optimizer ("sgd", "adam", ...), checked by `loadStateDict`. */
  abstract get kind(): string;
  /** Names of the per-parameter buffers this optimizer keeps. */
  protected abstract bufferNames(): readonly string[];
  /** True when every buffer exists from the start (zeros); false when created on a parameter's first update. */
  protected abstract eagerBuffers(): boolean;
  /** The in-place update of one parameter `p` with gradient `g`; `key` is "<groupIdx>.<paramIdx>.". */
  protected abstract update(p: Float32Array, g: Float32Array, group: Group<O>, key: string, t: number): void;

  /** Validate a group's options (subclasses extend it); throws via `fail`. */
  protected validateGroup(g: Group<O>, what: string): void {
    checkNumber(what, 'lr', g.lr, 0);
    checkNumber(what, 'weightDecay', g.weightDecay, 0);
    checkNumber(what, 'initialLr', g.initialLr, 0);
  }

  private forEachParam(fn: (p: Tensor, key: string, group: Group<O>) => void): void {
    this.groups.forEach((g, gi) => g.params.forEach((p, pi) => fn(p, `${gi}.${pi}.`, g)));
  }

  /** Number of `step()` calls so far (t; restored by `loadStateDict`). */
  get stepCount(): number {
    return this.t;
  }

  /** One update of every parameter with a gradient: t ← t + 1, then p ← update(p, ∇p) in place. */
  step(): void {
    this.t++;
    this.forEachParam((p, key, group) => {
      if (!p.grad) return;
      const g = p.grad.f32(`${this.kind}.step`);
      if (g.length !== p.size) fail(`${this.kind}.step`, `a gradient with ${p.size} elements for parameter ${key.slice(0, -1)}`, `${g.length}`);
      this.update(p.storage as Float32Array, g, group, key, this.t);
    });
  }

  /** Drop every parameter's gradient (p.grad = null). */
  zeroGrad(): void {
    this.forEachParam((p) => { p.grad = null; });
  }

  /** The first group's current learning rate. */
  get lr(): number {
    return this.groups[0]!.lr;
  }

  /** Set lr_g = initialLr_g · f for every group (what a schedule calls each step). */
  setLrFactor(f: number): void {
    checkNumber(`${this.kind}.setLrFactor`, 'the factor', f, 0);
    for (const g of this.groups) g.lr = g.initialLr * f;
  }

  /** Set the first group's lr to `lr` and the others in proportion: lr_g = initialLr_g · lr / initialLr_0. */
  setLr(lr: number): void {
    checkNumber(`${this.kind}.setLr`, 'lr', lr, 0);
    const base = this.groups[0]!.initialLr;
    if (base === 0) for (const g of this.groups) g.lr = lr;
    else this.setLrFactor(lr / base);
  }

  /** A copy of the optimizer's state: kind, step counter t, group options (with initialLr, numParams), buffers. */
  stateDict(): OptimizerState {
    const groups = this.groups.map((g) => {
      const out: Record<string, OptionValue> = {};
      for (const [k, v] of Object.entries(g)) if (k !== 'params') out[k] = Array.isArray(v) ? [...v] : (v as OptionValue);
      out.numParams = g.params.length;
      return out;
    });
    const buffers: Record<string, Float32Array> = {};
    for (const [k, b] of this.buffers) buffers[k] = Float32Array.from(b);
    return { kind: this.kind, step: this.t, groups, buffers };
  }

  /**
   * Restore a state from `stateDict()` (validated in full before anything changes, so a bad state
   * leaves the optimizer untouched). Buffers are copied; the run then continues bit-identically.
   */
  loadStateDict(sd: OptimizerState): void {
    const what = `${this.kind}.loadStateDict`;
    if (!sd || typeof sd !== 'object') fail(what, 'a state object from stateDict()', `${sd}`);
    if (sd.kind !== this.kind) fail(what, `a state of kind "${this.kind}"`, `kind ${JSON.stringify(sd.kind)}`, 'Resume with the optimizer that saved the state.');
    if (!Number.isInteger(sd.step) || sd.step < 0) fail(what, 'step to be an integer ≥ 0', `${sd.step}`);
    if (!Array.isArray(sd.groups) || sd.groups.length !== this.groups.length) {
      fail(what, `${this.groups.length} parameter group(s)`, `${Array.isArray(sd.groups) ? sd.groups.length : sd.groups}`);
    }
    const newGroups = this.groups.map((g, gi) => {
      const s = sd.groups[gi]!;
      if (s?.numParams !== g.params.length) fail(what, `${g.params.length} parameter(s) in group ${gi}`, `${s?.numParams}`);
      const ng = { ...g } as unknown as Record<string, unknown>;
      for (const k of Object.keys(g)) {
        if (k === 'params') continue;
        if (!sameType(g[k as keyof Group<O>], s[k])) fail(what, `group ${gi} option "${k}" like ${JSON.stringify(g[k as keyof Group<O>])}`, JSON.stringify(s[k]) ?? 'nothing');
        ng[k] = Array.isArray(s[k]) ? [...(s[k] as number[])] : s[k];
      }
      this.validateGroup(ng as unknown as Group<O>, `${what} (group ${gi})`);
      return ng as unknown as Group<O>;
    });
    if (!sd.buffers || typeof sd.buffers !== 'object') fail(what, 'a buffers object', `${sd.buffers}`);
    const names = this.bufferNames();
    const newBuffers = new Map<string, Float32Array>();
    for (const [key, buf] of Object.entries(sd.buffers)) {
      const m = /^(\d+)\.(\d+)\.(\w+)$/.exec(key);
      const p = m ? this.groups[Number(m[1])]?.params[Number(m[2])] : undefined;
      if (!m || !p || !names.includes(m[3]!)) {
        fail(what, `buffer keys "<group>.<param>.<${names.join('|')}>" of existing parameters`, `"${key}"`);
      }
      if (!buf || buf.length !== p.size) fail(what, `buffer "${key}" with ${p.size} elements`, `${buf?.length}`, 'The model does not match the one that saved the state.');
      newBuffers.set(key, Float32Array.from(buf));
    }
    if (this.eagerBuffers()) {
      this.forEachParam((_, key) => {
        for (const n of names) if (!newBuffers.has(key + n)) fail(what, `buffer "${key + n}"`, 'none');
      });
    }
    this.groups.splice(0, this.groups.length, ...newGroups);
    this.buffers.clear();
    for (const [k, b] of newBuffers) this.buffers.set(k, b);
    this.t = sd.step;
  }
}
