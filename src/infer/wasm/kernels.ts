import type { Conv2dParams, Shape } from '../../core/backend.js';
import { fail, fmtShape } from '../../core/errors.js';
import { type Frame, WasmMemory } from './memory.js';
import type { PreparedConv2dWasm, PreparedBinaryConv2dWasm, WasmKernels } from './index.js';

/**
 * The TypeScript glue of the WebAssembly kernels (C in native/wasm/, one file per kernel family):
 * validate at this boundary (the C trusts its arguments), lay the arguments out in the module's
 * memory (memory.ts), call, copy the result out into a fresh array or the caller's `out`.
 * Every method is a closure (no `this`), so the object can be spread into an InferBackend.
 */

/** The module's exports (pointers are byte offsets into `memory`; 0 = null). */
interface Exports {
  memory: WebAssembly.Memory;
  __heap_base: WebAssembly.Global;
  ob_simd(): number;
  ob_bitpack(x: number, rows: number, k: number, out: number): void;
  ob_binary_matmul_scratch(m: number, k: number): number;
  ob_binary_matmul(a: number, b: number, m: number, n: number, k: number, c: number, scratch: number): void;
  ob_bconv_sizes(g: number, pad: number, sizes: number): void;
  ob_bconv_prepare(g: number, w: number, pad: number, rows: number, corr: number): void;
  ob_bconv_run(g: number, n: number, x: number, rows: number, corr: number, scale: number, bias: number, thr: number, y: number, scratch: number): void;
  ob_conv_scratch(g: number): number;
  ob_conv_run(g: number, n: number, x: number, w: number, bias: number, y: number, scratch: number): void;
  ob_matmul_scratch(m: number, k: number, transA: number): number;
  ob_matmul(a: number, b: number, m: number, k: number, n: number, transA: number, transB: number, c: number, scratch: number): void;
  ob_channel_act(x: number, r: number, n: number, C: number, m: number, b0: number, pos: number, neg: number, b1: number, out: number): void;
}

const EXPORTS: (keyof Exports)[] = ['memory', '__heap_base', 'ob_simd', 'ob_bitpack', 'ob_binary_matmul_scratch', 'ob_binary_matmul',
  'ob_bconv_sizes', 'ob_bconv_prepare', 'ob_bconv_run', 'ob_conv_scratch', 'ob_conv_run', 'ob_matmul_scratch', 'ob_matmul', 'ob_channel_act'];

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

export function makeWasmKernels(instance: WebAssembly.Instance, name: 'wasm-simd' | 'wasm'): WasmKernels {
  const ex = instance.exports as unknown as Exports;
  const missing = EXPORTS.filter((k) => !(k in ex));
  if (missing.length) fail('instantiateWasmKernels', 'a onebit kernels module (build/wasm/*.wasm)', `one without ${missing.join(', ')}`, 'Rebuild it with node native/build-wasm.cjs.');
  const simd = ex.ob_simd() === 1;
  if (simd !== (name === 'wasm-simd')) fail('instantiateWasmKernels', `the ${name === 'wasm-simd' ? 'SIMD (onebit-simd.wasm)' : 'scalar (onebit.wasm)'} build for "${name}"`, `the ${simd ? 'SIMD' : 'scalar'} build`);
  const mem = new WasmMemory(ex.memory, ex.__heap_base.value as number);

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

  /** The float conv with geometry gp and weights wp (bias bp) in memory, in frame f. */
  function conv2dRun(f: Frame, gp: number, geo: Geom, x: Float32Array, n: number, wp: number, bp: number, out?: Float32Array): Float32Array {
    checkLen('conv2d', `x [${n},${geo.C},${geo.H},${geo.W}]`, x, n * geo.C * geo.H * geo.W);
    const len = n * geo.Cout * geo.Ho * geo.Wo;
    const xp = f.input(x), yp = f.take(4 * len), sp = f.take(ex.ob_conv_scratch(gp));
    f.commit();
    ex.ob_conv_run(gp, n, xp, wp, bp, yp, sp);
    return result(yp, len, out);
  }

  function prepareBinaryConv2d(w: Float32Array, wShape: Shape, inShape: readonly [number, number, number], p: Conv2dParams, padValue: number): PreparedBinaryConv2dWasm | null {
    if (padValue !== 0 && padValue !== 1 && padValue !== -1) return null;
    const geo = convGeom('prepareBinaryConv2d', inShape, wShape, p);
    const { C, H, W, Cout, Ho, Wo } = geo;
    checkLen('prepareBinaryConv2d', `w ${fmtShape(wShape)}`, w, wShape.reduce((a, b) => a * b, 1));
    const gp = storeGeom(geo.g);
    let f = mem.frame();
    const szp = f.take(12);
    f.commit();
    ex.ob_bconv_sizes(gp, padValue, szp);
    const [rowWords, corrInts, scratchBytes] = Array.from(mem.i32.subarray(szp >>> 2, (szp >>> 2) + 3)) as [number, number, number];
    const rows = mem.alloc(4 * rowWords), corr = corrInts ? mem.alloc(4 * corrInts) : 0;
    f = mem.frame();
    const wp = f.input(w);
    f.commit();
    ex.ob_bconv_prepare(gp, wp, padValue, rows, corr);
    let live = true;
    return {
      outShape: (n) => [n, Cout, Ho, Wo],
      run(x, n, scale, bias, thr, out) {
        if (!live) fail('PreparedBinaryConv2d.run', 'a live prepared conv', 'one that was disposed');
        checkLen('binaryConv2d', `x [${n},${C},${H},${W}]`, x, n * C * H * W);
        checkLen('binaryConv2d', 'scale', scale, Cout);
        checkLen('binaryConv2d', 'bias', bias, Cout);
        checkLen('binaryConv2d', 'thr', thr, C);
        const len = n * Cout * Ho * Wo;
        const fr = mem.frame();
        const xp = fr.input(x), sp = fr.input(scale), bp = fr.input(bias), tp = fr.input(thr ?? null);
        const yp = fr.take(4 * len), wsp = fr.take(scratchBytes);
        fr.commit();
        ex.ob_bconv_run(gp, n, xp, rows, corr, sp, bp, tp, yp, wsp);
        return result(yp, len, out);
      },
      dispose() {
        if (!live) return;
        live = false;
        if (corr) mem.release(corr, 4 * corrInts);
        mem.release(rows, 4 * rowWords);
        mem.release(gp, geo.g.byteLength);
      },
    };
  }

  return {
    name,
    threads: 1,
    memoryBytes: () => ex.memory.buffer.byteLength,

    conv2d(x, xShape, w, wShape, p) {
      if (xShape.length !== 4) fail('conv2d', 'input of rank 4 [N, C, H, W]', `rank ${xShape.length} (shape ${fmtShape(xShape)})`);
      const geo = convGeom('conv2d', xShape.slice(1), wShape, p);
      checkLen('conv2d', `w ${fmtShape(wShape)}`, w, wShape.reduce((a, b) => a * b, 1));
      const f = mem.frame();
      const gp = f.take(geo.g.byteLength), wp = f.input(w);
      f.commit();
      mem.i32.set(geo.g, gp >>> 2);
      return conv2dRun(f, gp, geo, x, xShape[0]!, wp, 0);
    },

    prepareConv2d(w, wShape, inShape, p, bias): PreparedConv2dWasm {
      const geo = convGeom('prepareConv2d', inShape, wShape, p);
      checkLen('prepareConv2d', `w ${fmtShape(wShape)}`, w, wShape.reduce((a, b) => a * b, 1));
      checkLen('prepareConv2d', 'bias', bias, geo.Cout);
      const gp = storeGeom(geo.g), wp = mem.allocF32(w), bp = bias ? mem.allocF32(bias) : 0;
      let live = true;
      return {
        outShape: (n) => [n, geo.Cout, geo.Ho, geo.Wo],
        run(x, n, out) {
          if (!live) fail('PreparedConv2d.run', 'a live prepared conv', 'one that was disposed');
          return conv2dRun(mem.frame(), gp, geo, x, n, wp, bp, out);
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
