/**
 * A `.onebit` graph run op by op with TensorFlow.js ops (NHWC), for `npm run bench:web`: the
 * baseline "same architecture in float on TF.js's WebAssembly backend". Float ops map 1:1
 * (conv2d → tf.conv2d with the exported weights, per-channel tables → broadcast mul/add, …);
 * binary ops run float-emulated (±1 float weights in a tf.conv2d, then the per-channel transform),
 * which is what a float engine without binary kernels has to do. Only what the benchmark's
 * graphs use is supported; anything else throws naming the op.
 */
import type * as tfc from '@tensorflow/tfjs-core';
import { inferShapes, type GraphNode, type OnebitGraph } from '../../src/infer/graph.js';

type TF = typeof tfc;
type T = tfc.Tensor;

const f32 = (n: GraphNode, k: string): Float32Array | undefined => (n.attrs[k] as { data: Float32Array } | undefined)?.data;
const ints = (n: GraphNode, k: string): [number, number] => n.attrs[k] as [number, number];

/** Conv weights [Cout, Cg, kh, kw] → TF's [kh, kw, Cg, Cout]. */
function hwio(tf: TF, w: Float32Array, [co, cg, kh, kw]: number[]): tfc.Tensor4D {
  const out = new Float32Array(w.length);
  for (let o = 0; o < co!; o++) for (let c = 0; c < cg!; c++) for (let i = 0; i < kh!; i++) for (let j = 0; j < kw!; j++) {
    out[((i * kw! + j) * cg! + c) * co! + o] = w[((o * cg! + c) * kh! + i) * kw! + j]!;
  }
  return tf.tensor4d(out, [kh!, kw!, cg!, co!]);
}

/** Compile the graph: returns a function from an NHWC batch to logits [N, classes]. Weights are uploaded once. */
export function compileTfjs(tf: TF, g: OnebitGraph): (x: tfc.Tensor4D) => tfc.Tensor2D {
  const vec = (a: Float32Array) => tf.tensor1d(a);
  type Step = (ins: T[]) => T;
  const infos = inferShapes(g, 'tfjs_graph');
  const steps: Step[] = g.nodes.map((n): Step => {
    switch (n.op) {
      case 'conv2d': {
        const wt = n.attrs.weight as { data: Float32Array; shape: number[] };
        if (Number(n.attrs.groups) !== 1) throw new Error('tfjs_graph: grouped conv2d is not supported');
        const w = hwio(tf, wt.data, wt.shape), b = f32(n, 'bias'), bias = b ? vec(b) : null;
        const [sh, sw] = ints(n, 'stride'), [ph, pw] = ints(n, 'padding');
        return ([x]) => {
          const y = tf.conv2d(x as tfc.Tensor4D, w, [sh, sw], [[0, 0], [ph, ph], [pw, pw], [0, 0]]);
          return bias ? tf.add(y, bias) : y;
        };
      }
      case 'binary_conv2d': {
        // Float emulation: ±1 weights from the packed bits (bit 1 = −1), Cg·kh·kw bits a row.
        const wt = n.attrs.weight as { data: Uint32Array; shape: number[] };
        const [kh, kw] = ints(n, 'kernel'), Cout = wt.shape[0]!, words = wt.shape[1]!;
        if (Number(n.attrs.groups) !== 1) throw new Error('tfjs_graph: grouped binary_conv2d is not supported');
        const Cg = infos[n.inputs[0]!]!.shape[0]!, K = Cg * kh * kw;
        const w = new Float32Array(Cout * K);
        for (let o = 0; o < Cout; o++) for (let j = 0; j < K; j++) w[o * K + j] = (wt.data[o * words + (j >>> 5)]! >>> (j & 31)) & 1 ? -1 : 1;
        const wT = hwio(tf, w, [Cout, Cg, kh, kw]);
        const [sh, sw] = ints(n, 'stride'), [ph, pw] = ints(n, 'padding');
        const mul = vec(f32(n, 'mul')!), bias = vec(f32(n, 'bias')!), thr = f32(n, 'thr');
        const thrT = thr ? vec(thr) : null;
        return ([x]) => {
          const y = tf.add(tf.mul(tf.conv2d(x as tfc.Tensor4D, wT, [sh, sw], [[0, 0], [ph, ph], [pw, pw], [0, 0]]), mul), bias);
          return thrT ? tf.where(tf.greaterEqual(y, thrT), tf.onesLike(y), tf.neg(tf.onesLike(y))) : y;
        };
      }
      case 'scale_bias': {
        const s = vec(f32(n, 'scale')!), b = vec(f32(n, 'bias')!);
        return ([x]) => tf.add(tf.mul(x!, s), b);
      }
      case 'batch_norm': {
        const mean = f32(n, 'mean')!, inv = f32(n, 'invStd')!, gam = f32(n, 'gamma')!, beta = f32(n, 'beta')!;
        const s = vec(mean.map((_, c) => inv[c]! * gam[c]!)), b = vec(mean.map((m, c) => beta[c]! - m * inv[c]! * gam[c]!));
        return ([x]) => tf.add(tf.mul(x!, s), b);
      }
      case 'channel_act': {
        const b0 = f32(n, 'b0'), pos = f32(n, 'pos'), neg = vec(f32(n, 'neg')!), b1 = f32(n, 'b1');
        const b0t = b0 ? vec(b0) : null, post = pos ? vec(pos) : null, b1t = b1 ? vec(b1) : null;
        return ([x]) => {
          const u = b0t ? tf.add(x!, b0t) : x!;
          let v: T = post ? tf.where(tf.greaterEqual(u, 0), tf.mul(u, post), tf.mul(u, neg)) : tf.prelu(u, neg);
          if (b1t) v = tf.add(v, b1t);
          return v;
        };
      }
      case 'sign': {
        const thr = vec(f32(n, 'thr')!);
        return ([x]) => tf.where(tf.greaterEqual(x!, thr), tf.onesLike(x!), tf.neg(tf.onesLike(x!)));
      }
      case 'clamp': {
        const lo = (n.attrs.lo as number | undefined) ?? -3.4e38, hi = (n.attrs.hi as number | undefined) ?? 3.4e38;
        return ([x]) => tf.clipByValue(x!, lo, hi);
      }
      case 'add':
        return ([a, b]) => tf.add(a!, b!);
      case 'shortcut_a': {
        const cout = n.attrs.outChannels as number;
        return ([x]) => {
          const [N, H, W, C] = x!.shape as number[];
          const s = tf.stridedSlice(x!, [0, 0, 0, 0], [N!, H!, W!, C!], [1, 2, 2, 1]);
          const p = (cout - C!) / 2;
          return tf.pad(s, [[0, 0], [0, 0], [0, 0], [p, p]]);
        };
      }
      case 'global_avg_pool':
        return ([x]) => tf.mean(x!, [1, 2]);
      case 'avg_pool2d':
      case 'max_pool2d': {
        const k = ints(n, 'kernel'), s = ints(n, 'stride'), p = ints(n, 'padding');
        if (p[0] || p[1]) throw new Error(`tfjs_graph: padded ${n.op} is not supported`);
        return ([x]) => (n.op === 'avg_pool2d' ? tf.avgPool : tf.maxPool)(x as tfc.Tensor4D, k, s, 'valid');
      }
      case 'flatten':
        // NCHW order, as the engine flattens.
        return ([x]) => (x!.rank === 4 ? tf.reshape(tf.transpose(x!, [0, 3, 1, 2]), [x!.shape[0]!, -1]) : x!);
      case 'dense': {
        const wt = n.attrs.weight as { data: Float32Array; shape: number[] };
        const w = tf.transpose(tf.tensor2d(wt.data, wt.shape as [number, number])), b = f32(n, 'bias'), bias = b ? vec(b) : null;
        return ([x]) => {
          const y = tf.matMul(x as tfc.Tensor2D, w as tfc.Tensor2D);
          return bias ? tf.add(y, bias) : y;
        };
      }
      default:
        throw new Error(`tfjs_graph: op ${n.op} is not supported by the benchmark's TF.js interpreter`);
    }
  });
  return (x) => tf.tidy(() => {
    const values: T[] = [x];
    g.nodes.forEach((n, i) => { values[i + 1] = steps[i]!(n.inputs.map((v) => values[v]!)); });
    return values[g.output] as tfc.Tensor2D;
  });
}
