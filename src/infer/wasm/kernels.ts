import type { Conv2dParams, Shape } from '../../core/backend.js';
import { fail, fmtShape } from '../../core/errors.js';
import { WasmMemory } from './memory.js';
import { POOL_BGEMM, POOL_BPACK, POOL_CONV, type KernelPool } from './pool.js';
import type { PreparedConv2dWasm, PreparedBinaryConv2dWasm, WasmKernels } from './index.js';

/**
 * The TypeScript glue of the WebAssembly kernels (C in native/wasm/, one file per kernel family):
 * validate at this boundary (the C trusts its arguments), lay the arguments out in the module's
 * memory (memory.ts), call, copy the result out into a fresh array or the caller's `out`.
 * Every method is a closure (no `this`), so the object can be spread into an InferBackend.
 */

/** The module's exports (pointers are byte offsets into `memory`; 0 = null). */
export interface Exports {
  /** Absent in the threaded build (it imports its memory). */
  memory: WebAssembly.Memory;
  __heap_base: WebAssembly.Global;
  ob_simd(): number;
  ob_bitpack(x: number, rows: number, k: number, out: number): void;
  ob_binary_matmul_scratch(m: number, k: number): number;
  ob_binary_matmul(a: number, b: number, m: number, n: number, k: number, c: number, scratch: number): void;
  ob_bconv_sizes(g: number, pad: number, sizes: number): void;
  ob_bconv_prepare(g: number, w: number, pad: number, rows: number, corr: number, toff: number): void;
  ob_bconv_pack(g: number, x: number, thr: number, planes: number, begin: number, end: number): void;
  ob_bconv_gemm(g: number, planes: number, rows: number, corr: number, toff: number, scale: number, bias: number, res: number, y: number, panel: number, msplit: number, begin: number, end: number): void;
  ob_bconv_run(g: number, n: number, x: number, rows: number, corr: number, toff: number, scale: number, bias: number, thr: number, res: number, y: number, scratch: number): void;
  ob_conv_scratch(g: number): number;
  ob_conv_items(g: number, n: number): number;
  ob_conv_run(g: number, x: number, w: number, bias: number, res: number, y: number, scratch: number, begin: number, end: number): void;
  ob_matmul_scratch(m: number, k: number, transA: number): number;
  ob_matmul(a: number, b: number, m: number, k: number, n: number, transA: number, transB: number, c: number, scratch: number): void;
  ob_channel_act(x: number, r: number, n: number, C: number, m: number, b0: number, pos: number, neg: number, b1: number, out: number): void;
}

const EXPORTS: (keyof Exports)[] = ['__heap_base', 'ob_simd', 'ob_bitpack', 'ob_binary_matmul_scratch', 'ob_binary_matmul',
  'ob_bconv_sizes', 'ob_bconv_prepare', 'ob_bconv_pack', 'ob_bconv_gemm', 'ob_bconv_run', 'ob_conv_scratch', 'ob_conv_items', 'ob_conv_run',
  'ob_matmul_scratch', 'ob_matmul', 'ob_channel_act'];

/** Conv geometry as the C's ObConvGeom (native/wasm/common.h), plus the output size. */
interface Geom {
  g: Int32Array;
  C: number; H: number; W: number; Cout: number; Ho: number; Wo: number;
}

function convGeom(what: string, inShape: readonly number[], wShape: Shape, p: Conv2dParams): Geom {
  const [C, H, W] = inShape as [number, number, number];
  if (wShape.length !== 4) fail(what, 'weights of rank 4 [Cout, C/groups, kh, kw]', `rank ${wShape.length} (shape ${fmtShape(wShape)})`);
  const [Cout, Cg, kh, kw] = wShape as [number, number, number, number];
  const [sh, sw] = p.stride, [ph, pw] = p.padding, [dh, dw] = p.dilation, groups = p.groups;
  const ints = [C, H, W, Cout, Cg, kh, kw, sh, sw, ph, pw, dh, dw, groups];
  if (!ints.every((v) => Number.isInteger(v) && v >= 0) || [C, H, W, Cout, Cg, kh, kw, sh, sw, dh, dw, groups].some((v) => v < 1)) {
    fail(what, 'positive integer sizes, strides, dilations and groups and non-negative paddings', `input [${inShape.join(',')}], weights ${fmtShape(wShape)}, stride [${sh},${sw}], padding [${ph},${pw}], dilation [${dh},${dw}], groups ${groups}`);
  }
  if (Cg * groups !== C || Cout % groups !== 0) {
    fail(what, `C = Cg·groups and Cout divisible by groups`, `C ${C}, Cg ${Cg}, Cout ${Cout}, groups ${groups} (weights ${fmtShape(wShape)})`);
  }
  const Ho = Math.floor((H + 2 * ph - dh * (kh - 1) - 1) / sh) + 1, Wo = Math.floor((W + 2 * pw - dw * (kw - 1) - 1) / sw) + 1;
  if (Ho < 1 || Wo < 1) fail(what, 'a kernel that fits the padded input', `input [${C},${H},${W}], weights ${fmtShape(wShape)}, padding [${ph},${pw}], dilation [${dh},${dw}]`);
  return { g: Int32Array.from(ints), C, H, W, Cout, Ho, Wo };
}

function checkLen(what: string, name: string, a: { length: number } | null | undefined, len: number): void {
  if (a && a.length !== len) fail(what, `${name} of length ${len}`, `length ${a.length}`);
}

/** Bytes rounded up to 16 (the scratch layout's alignment). */
const al = (bytes: number): number => (bytes + 15) & ~15;

/** Options of makeWasmKernels for a threaded instance (index.ts's instantiateWasmKernelsThreaded). */
export interface MakeOptions {
  /** The module's memory when it imports it (the threaded build), else its exported one is used. */
  memory?: WebAssembly.Memory;
  /** The worker pool the heavy kernels split their work with (threads > 1). */
  pool?: KernelPool;
  /** Memory set up before the kernels (the pool's control block and stacks), where the persistent region starts. */
  mem?: WasmMemory;
}

export function makeWasmKernels(instance: WebAssembly.Instance, name: 'wasm-simd' | 'wasm', opts: MakeOptions = {}): WasmKernels {
  const ex = instance.exports as unknown as Exports;
  const missing = EXPORTS.filter((k) => !(k in ex));
  if (missing.length) fail('instantiateWasmKernels', 'a onebit kernels module (build/wasm/*.wasm)', `one without ${missing.join(', ')}`, 'Rebuild it with node native/build-wasm.cjs.');
  const simd = ex.ob_simd() === 1;
  if (simd !== (name === 'wasm-simd')) fail('instantiateWasmKernels', `the ${name === 'wasm-simd' ? 'SIMD (onebit-simd.wasm)' : 'scalar (onebit.wasm)'} build for "${name}"`, `the ${simd ? 'SIMD' : 'scalar'} build`);
  const memory = opts.memory ?? ex.memory;
  const mem = opts.mem ?? new WasmMemory(memory, ex.__heap_base.value as number);
  const pool = opts.pool && opts.pool.threads > 1 ? opts.pool : null;
  const threads = pool ? pool.threads : 1;

  /** The result at ptr (len floats) in `out` when it has the right length, else a new array. */
  const result = (ptr: number, len: number, out?: Float32Array): Float32Array => {
    const y = out && out.length === len ? out : new Float32Array(len);
    y.set(mem.f32.subarray(ptr >>> 2, (ptr >>> 2) + len));
    return y;
  };
  /** A persistent copy of a conv geometry. */
  const storeGeom = (g: Int32Array): number => {
    const gp = mem.alloc(g.byteLength);
    mem.i32.set(g, gp >>> 2);
    return gp;
  };

  /**
   * The float conv with geometry gp and weights wp (bias bp) in memory: x copied to the scratch
   * region, y computed there (+ residual) and copied out; split over the pool when it pays.
   */
  function conv2dRun(gp: number, geo: Geom, x: Float32Array, n: number, wp: number, bp: number, out?: Float32Array, residual?: Float32Array | null, base = mem.scratch): Float32Array {
    checkLen('conv2d', `x [${n},${geo.C},${geo.H},${geo.W}]`, x, n * geo.C * geo.H * geo.W);
    const len = n * geo.Cout * geo.Ho * geo.Wo;
    if (residual) checkLen('conv2d', `the residual [${n},${geo.Cout},${geo.Ho},${geo.Wo}]`, residual, len);
    x = mem.own(x);
    if (residual) residual = mem.own(residual);
    const items = ex.ob_conv_items(gp, n), per = al(ex.ob_conv_scratch(gp));
    const macs = len * geo.g[4]! * geo.g[5]! * geo.g[6]!;
    const split = pool !== null && items >= 2 && macs >= pool.minWork;
    const xp = base, rp = residual ? al(xp + 4 * x.length) : 0, yp = al((residual ? rp + 4 * len : xp + 4 * x.length));
    const sp = al(yp + 4 * len), end = sp + per * (split ? threads : 1);
    mem.ensure(end);
    const xq = mem.place(x, xp), rq = residual ? mem.place(residual, rp) : 0;
    if (split) {
      const claims = Math.min(items, 4 * threads), chunk = Math.ceil(items / claims);
      pool!.run(POOL_CONV, [gp, xq, wp, bp, rq, yp, sp], 6, per, items, chunk);
    } else {
      ex.ob_conv_run(gp, xq, wp, bp, rq, yp, sp, 0, items);
    }
    return result(yp, len, out);
  }

  function prepareBinaryConv2d(w: Float32Array, wShape: Shape, inShape: readonly [number, number, number], p: Conv2dParams, padValue: number): PreparedBinaryConv2dWasm | null {
    if (padValue !== 0 && padValue !== 1 && padValue !== -1) return null;
    const geo = convGeom('prepareBinaryConv2d', inShape, wShape, p);
    const { C, H, W, Cout, Ho, Wo } = geo;
    const groups = p.groups, Cog = Cout / groups, P = Ho * Wo;
    checkLen('prepareBinaryConv2d', `w ${fmtShape(wShape)}`, w, wShape.reduce((a, b) => a * b, 1));
    const gp = storeGeom(geo.g);
    let f = mem.frame();
    const szp = f.take(28);
    f.commit();
    ex.ob_bconv_sizes(gp, padValue, szp);
    const [rowWords, corrInts, toffInts, planeWords, panelWords, panels, scratchBytes] = Array.from(mem.i32.subarray(szp >>> 2, (szp >>> 2) + 7)) as [number, number, number, number, number, number, number];
    const rows = mem.alloc(4 * rowWords), corr = corrInts ? mem.alloc(4 * corrInts) : 0, toff = mem.alloc(4 * toffInts);
    f = mem.frame();
    const wp = f.input(w);
    f.commit();
    ex.ob_bconv_prepare(gp, wp, padValue, rows, corr, toff);
    const kwp = rowWords / Cout;
    let live = true;
    return {
      residual: true,
      outShape: (n) => [n, Cout, Ho, Wo],
      run(x, n, scale, bias, thr, out, residual) {
        if (!live) fail('PreparedBinaryConv2d.run', 'a live prepared conv', 'one that was disposed');
        checkLen('binaryConv2d', `x [${n},${C},${H},${W}]`, x, n * C * H * W);
        checkLen('binaryConv2d', 'scale', scale, Cout);
        checkLen('binaryConv2d', 'bias', bias, Cout);
        checkLen('binaryConv2d', 'thr', thr, C);
        const len = n * Cout * P;
        checkLen('binaryConv2d', `the residual [${n},${Cout},${Ho},${Wo}]`, residual, len);
        // Scratch: x | residual | scale | bias | thr | y | work (one block of planes + a panel, or
        // threaded: every item's planes + a panel per thread).
        x = mem.own(x);
        if (residual) residual = mem.own(residual);
        const items = n * groups, split = pool !== null && len * kwp >= pool.minWork && items * panels * Cog >= 8;
        const xp = mem.scratch, rp = al(xp + 4 * x.length), sp = residual ? al(rp + 4 * len) : rp;
        const bp = scale ? al(sp + 4 * Cout) : sp, tp = bias ? al(bp + 4 * Cout) : bp, yp = thr ? al(tp + 4 * C) : tp;
        const wsp = al(yp + 4 * len), panelBytes = al(4 * panelWords), pnp = al(wsp + 4 * items * planeWords);
        mem.ensure(split ? pnp + threads * panelBytes : wsp + scratchBytes);
        const xq = mem.place(x, xp), rq = residual ? mem.place(residual, rp) : 0;
        const f32 = mem.f32;
        if (scale) f32.set(scale, sp >>> 2);
        if (bias) f32.set(bias, bp >>> 2);
        if (thr) f32.set(thr, tp >>> 2);
        const sq = scale ? sp : 0, bq = bias ? bp : 0, tq = thr ? tp : 0;
        if (!split) {
          ex.ob_bconv_run(gp, n, xq, rows, corr, toff, sq, bq, tq, rq, yp, wsp);
        } else {
          if (items >= 2) pool!.run(POOL_BPACK, [gp, xq, tq, wsp], -1, 0, items, 1);
          else ex.ob_bconv_pack(gp, xq, tq, wsp, 0, items);
          // Output-channel blocks too when there are few pixel panels (the 8x8 stage at batch 1).
          const msplit = Math.max(1, Math.min(Math.ceil(Cog / 4), Math.ceil(2 * threads / (items * panels))));
          pool!.run(POOL_BGEMM, [gp, wsp, rows, corr, toff, sq, bq, rq, yp, pnp, msplit], 9, panelBytes, items * panels * msplit, 1);
        }
        return result(yp, len, out);
      },
      dispose() {
        if (!live) return;
        live = false;
        mem.release(toff, 4 * toffInts);
        if (corr) mem.release(corr, 4 * corrInts);
        mem.release(rows, 4 * rowWords);
        mem.release(gp, geo.g.byteLength);
      },
    };
  }

  return {
    name,
    threads,
    memoryBytes: () => memory.buffer.byteLength,
    dispose: () => pool?.dispose(),

    conv2d(x, xShape, w, wShape, p) {
      if (xShape.length !== 4) fail('conv2d', 'input of rank 4 [N, C, H, W]', `rank ${xShape.length} (shape ${fmtShape(xShape)})`);
      const geo = convGeom('conv2d', xShape.slice(1), wShape, p);
      checkLen('conv2d', `w ${fmtShape(wShape)}`, w, wShape.reduce((a, b) => a * b, 1));
      const f = mem.frame();
      const gp = f.take(geo.g.byteLength), wp = f.input(w), base = f.take(0);
      f.commit();
      mem.i32.set(geo.g, gp >>> 2);
      return conv2dRun(gp, geo, x, xShape[0]!, wp, 0, undefined, null, base);
    },

    prepareConv2d(w, wShape, inShape, p, bias): PreparedConv2dWasm {
      const geo = convGeom('prepareConv2d', inShape, wShape, p);
      checkLen('prepareConv2d', `w ${fmtShape(wShape)}`, w, wShape.reduce((a, b) => a * b, 1));
      checkLen('prepareConv2d', 'bias', bias, geo.Cout);
      const gp = storeGeom(geo.g), wp = mem.allocF32(w), bp = bias ? mem.allocF32(bias) : 0;
      let live = true;
      return {
        residual: true,
        outShape: (n) => [n, geo.Cout, geo.Ho, geo.Wo],
        run(x, n, out, residual) {
          if (!live) fail('PreparedConv2d.run', 'a live prepared conv', 'one that was disposed');
          return conv2dRun(gp, geo, x, n, wp, bp, out, residual);
        },
        dispose() {
          if (!live) return;
          live = false;
          if (bp) mem.release(bp, bias!.byteLength);
          mem.release(wp, w.byteLength);
          mem.release(gp, geo.g.byteLength);
        },
      };
    },

    matmul(a, b, m, k, n, transA, transB) {
      checkLen('matmul', `a [${transA ? `${k},${m}` : `${m},${k}`}]`, a, m * k);
      checkLen('matmul', `b [${transB ? `${n},${k}` : `${k},${n}`}]`, b, k * n);
      const f = mem.frame();
      const ap = f.input(a), bp = f.input(b), cp = f.take(4 * m * n), sp = f.take(ex.ob_matmul_scratch(m, k, transA ? 1 : 0));
      f.commit();
      ex.ob_matmul(ap, bp, m, k, n, transA ? 1 : 0, transB ? 1 : 0, cp, sp);
      return result(cp, m * n);
    },

    bitpack(x, rows, k) {
      checkLen('bitpack', `x [${rows},${k}]`, x, rows * k);
      const len = rows * Math.ceil(k / 32);
      const f = mem.frame();
      const xp = f.input(x), op = f.take(4 * len);
      f.commit();
      ex.ob_bitpack(xp, rows, k, op);
      return mem.u32.slice(op >>> 2, (op >>> 2) + len);
    },

    binaryMatmul(a, b, m, n, k) {
      const words = Math.ceil(k / 32);
      checkLen('binaryMatmul', `a [${m},${words}] (words)`, a, m * words);
      checkLen('binaryMatmul', `b [${n},${words}] (words)`, b, n * words);
      const f = mem.frame();
      const ap = f.input(a), bp = f.input(b), cp = f.take(4 * m * n), sp = f.take(ex.ob_binary_matmul_scratch(m, k));
      f.commit();
      ex.ob_binary_matmul(ap, bp, m, n, k, cp, sp);
      return result(cp, m * n);
    },

    prepareBinaryConv2d,

    binaryConv2d(x, xShape, w, wShape, p, padValue) {
      if (xShape.length !== 4) fail('binaryConv2d', 'input of rank 4 [N, C, H, W]', `rank ${xShape.length} (shape ${fmtShape(xShape)})`);
      const prep = prepareBinaryConv2d(w, wShape, xShape.slice(1) as [number, number, number], p, padValue);
      if (!prep) return fail('binaryConv2d', 'padValue 0, +1 or −1', String(padValue));
      try {
        return prep.run(x, xShape[0]!, null, null);
      } finally {
        prep.dispose();
      }
    },

    channelAct(x, r, n, C, m, b0, pos, neg, b1, out) {
      checkLen('channelAct', `x [${n},${C},${m}]`, x, n * C * m);
      checkLen('channelAct', 'the residual', r, x.length);
      for (const [nm, v] of [['b0', b0], ['pos', pos], ['neg', neg], ['b1', b1]] as const) checkLen('channelAct', nm, v, C);
      const f = mem.frame();
      const xp = f.input(x), rp = f.input(r), b0p = f.input(b0), pp = f.input(pos), qp = f.input(neg), b1p = f.input(b1);
      const yp = f.take(4 * x.length);
      f.commit();
      ex.ob_channel_act(xp, rp, n, C, m, b0p, pp, qp, b1p, yp);
      return result(yp, x.length, out);
    },
  };
}
