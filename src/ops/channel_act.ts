import { fail, fmtShape } from '../core/errors.js';
import { backend, type Tensor, wrap } from '../core/tensor.js';
import { fresh, record } from '../autograd/tape.js';
import { channelAct as refChannelAct, channelActBackward as refChannelActBackward } from '../backends/ref/channel_act.js';

/** The per-channel parameters of `channelAct`, each of shape [C] (absent: b0 = b1 = 0, pos = 1). */
export interface ChannelActParams {
  b0?: Tensor | null;
  pos?: Tensor | null;
  neg: Tensor;
  b1?: Tensor | null;
}

/**
 * The per-channel piecewise-linear activation of the ReActNet / AdaBin blocks as one op, for x
 * [N, C, ...] (channels on axis 1):
 *
 *   u = x + b0[c];   y = (u >= 0 ? pos[c]·u : neg[c]·u) + b1[c]
 *
 * RPReLU is (b0, neg = the PReLU slope, b1), Maxout (pos, neg). The composite of separate adds,
 * maximum/minimum and multiplies computes the same forward values but made ~8 activation-sized
 * passes forward and more backward, in TypeScript for the broadcasts; this is one pass each way on
 * the backend (native when built). Gradients: dx = g·(u >= 0 ? pos : neg) — at u = 0 exactly the
 * slope of the u >= 0 side — and per-channel sums for the parameters (backends/ref/channel_act.ts).
 */
export function channelAct(x: Tensor, p: ChannelActParams): Tensor {
  if (x.rank < 2) fail('channelAct', 'input [N, C, ...] (rank >= 2)', `shape ${fmtShape(x.shape)}`);
  const N = x.shape[0]!, C = x.shape[1]!, inner = N * C === 0 ? 0 : x.size / (N * C);
  const params = [['b0', p.b0], ['pos', p.pos], ['neg', p.neg], ['b1', p.b1]] as const;
  for (const [name, t] of params) {
    if (t && (t.rank !== 1 || t.shape[0] !== C)) fail(`channelAct ${name}`, `shape [${C}] (one value per channel of the input)`, `shape ${fmtShape(t.shape)}`);
  }
  const be = backend();
  const xv = x.f32('channelAct');
  const b0 = p.b0?.f32() ?? null, pos = p.pos?.f32() ?? null, neg = p.neg.f32(), b1 = p.b1?.f32() ?? null;
  const y = (be.channelAct ?? refChannelAct)(xv, N, C, inner, b0, pos, neg, b1);
  const inputs = [x, ...params.map(([, t]) => t).filter((t): t is Tensor => !!t)];
  return record(wrap(y, x.shape), 'channelAct', inputs, (g) => {
    const r = (be.channelActBackward ?? refChannelActBackward)(g.f32(), xv, N, C, inner, b0, pos, neg);
    const grads = [fresh(wrap(r.dx, x.shape))];
    if (p.b0) grads.push(fresh(wrap(r.db0, [C])));
    if (p.pos) grads.push(fresh(wrap(r.dpos, [C])));
    grads.push(fresh(wrap(r.dneg, [C])));
    if (p.b1) grads.push(fresh(wrap(r.db1, [C])));
    return grads;
  });
}
