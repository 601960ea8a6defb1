import { fail, fmtShape } from '../core/errors.js';
import { shapesEqual } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';

/**
 * Base class of every layer and model. A module owns named parameters (trainable leaf tensors),
 * buffers (state that is saved but not trained, e.g. batch-norm running statistics) and child
 * modules; names compose with dots ("0.weight", "block1.bn.runningMean") as in PyTorch, which is
 * also the key format of state dicts and checkpoints.
 */
export abstract class Module {
  training = true;
  private readonly _params = new Map<string, Tensor>();
  private readonly _buffers = new Map<string, Tensor>();
  private readonly _children = new Map<string, Module>();

  abstract forward(x: Tensor): Tensor;

  /**
   * Training hooks, called by the trainer on every module of the tree (no-ops by default):
   * `onEpochStart` before each epoch (0-based; e.g. IR-Net's EDE t/k schedule), `afterStep` after
   * each optimizer step (e.g. ReBNN stores the signs it compares against), and `auxLoss` — a loss
   * term the module adds through its gradients only (ReBNN's reconstruction loss), reported in logs.
   */
  onEpochStart(_epoch: number, _epochs: number): void {}
  afterStep(): void {}
  auxLoss(): number {
    return 0;
  }

  /** Short description for summaries and errors, e.g. "Linear(784 -> 256)". */
  describe(): string {
    return this.constructor.name;
  }

  protected registerParameter(name: string, t: Tensor): Tensor {
    t.requiresGrad = true;
    this._params.set(name, t);
    return t;
  }

  protected registerBuffer(name: string, t: Tensor): Tensor {
    this._buffers.set(name, t);
    return t;
  }

  protected registerModule<M extends Module>(name: string, m: M): M {
    this._children.set(name, m);
    return m;
  }

  /** Direct children, in registration order. */
  children(): [string, Module][] {
    return [...this._children];
  }

  /** Every module in the tree (this one first), with dotted names. */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [n, c] of this._children) out.push(...c.namedModules(prefix ? `${prefix}.${n}` : n));
    return out;
  }

  namedParameters(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [prefix, m] of this.namedModules()) {
      for (const [n, p] of m._params) out.push([prefix ? `${prefix}.${n}` : n, p]);
    }
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  namedBuffers(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [prefix, m] of this.namedModules()) {
      for (const [n, b] of m._buffers) out.push([prefix ? `${prefix}.${n}` : n, b]);
    }
    return out;
  }

  /** Set training mode on the whole tree (batch norm uses batch statistics, dropout is active). */
  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Parameters and buffers by name (the tensors themselves, not copies). */
  stateDict(): Map<string, Tensor> {
    return new Map([...this.namedParameters(), ...this.namedBuffers()]);
  }

  /**
   * Copy values into this module's parameters and buffers. Every name must exist on both sides
   * with the same shape (`strict`); with strict=false, missing/unexpected names are skipped
   * (shape mismatches still throw).
   */
  loadStateDict(sd: Map<string, Tensor | Float32Array>, strict = true): void {
    const own = this.stateDict();
    if (strict) {
      const missing = [...own.keys()].filter((k) => !sd.has(k));
      const extra = [...sd.keys()].filter((k) => !own.has(k));
      if (missing.length || extra.length) {
        fail(
          'loadStateDict',
          'the same parameter names as the model',
          `${missing.length} missing (${missing.slice(0, 5).join(', ')}) and ${extra.length} unexpected (${extra.slice(0, 5).join(', ')})`,
          'Was the checkpoint made for another architecture or method?',
        );
      }
    }
    for (const [name, t] of own) {
      const src = sd.get(name);
      if (!src) continue;
      const data = src instanceof Tensor ? src.f32() : src;
      const dst = t.storage as Float32Array;
      if ((src instanceof Tensor && !shapesEqual(src.shape, t.shape)) || data.length !== dst.length) {
        fail('loadStateDict', `${name} of shape ${fmtShape(t.shape)}`, src instanceof Tensor ? fmtShape(src.shape) : `${data.length} values`);
      }
      dst.set(data);
    }
  }
}

/** Modules applied in order. */
export class Sequential extends Module {
  readonly layers: Module[];

  constructor(...layers: Module[]) {
    super();
    this.layers = layers;
    layers.forEach((l, i) => this.registerModule(String(i), l));
  }

  forward(x: Tensor): Tensor {
    let y = x;
    for (const l of this.layers) y = l.forward(y);
    return y;
  }
}
