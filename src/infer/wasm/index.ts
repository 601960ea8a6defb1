/**
 * onebit's WebAssembly kernels (browser-safe: no Node built-ins; Node's loader is ./node.ts).
 * Two builds of the same C (native/wasm/, built by `node native/build-wasm.cjs`):
 * build/wasm/onebit-simd.wasm ('wasm-simd', 128-bit SIMD) and build/wasm/onebit.wasm ('wasm',
 * scalar). Both give identical results: the binary kernels are exact, the float kernels sum in the
 * same order with no fused multiply-add.
 *
 *   const k = await instantiateWasmKernels(await (await fetch(url)).arrayBuffer(), 'wasm-simd');
 *   const conv = k.prepareBinaryConv2d(w, [64, 64, 3, 3], [64, 8, 8], p, 0)!;   // once
 *   const y = conv.run(x, 1, scale, bias, thr);                                    // per call
 *
 * Contracts: the Backend kernels of core/backend.ts; prepareBinaryConv2d as the native addon's
 * (backends/native/binary.ts), bit-identical to it; channelAct as infer/kernels.ts. Single-threaded.
 */
import type { Conv2dParams, Shape } from '../../core/backend.js';
import { makeWasmKernels } from './kernels.js';

/**
 * A binary conv whose ±1 weights were packed once: y = binaryConv2d(sign(x − thr[c]), w)·scale[co]
 * + bias[co] for x [n, C, H, W] (C, H, W as prepared); no thr: the bits are sign(x) (bit set where
 * x < thr); scale / bias may be null; one float32 multiply, then one add. Writes into `out` when it
 * has the right length, else returns a new array. Same as backends/native/binary.ts's.
 */
export interface PreparedBinaryConv2dWasm {
  run(x: Float32Array, n: number, scale: Float32Array | null, bias: Float32Array | null, thr?: Float32Array | null, out?: Float32Array): Float32Array;
  readonly outShape: (n: number) => [number, number, number, number];
  /** Give the packed weights' WebAssembly memory back (run then throws). Optional to call. */
  dispose(): void;
}

/** A float conv (zero padding) with its weights (and bias) copied into WebAssembly memory once. */
export interface PreparedConv2dWasm {
  run(x: Float32Array, n: number, out?: Float32Array): Float32Array;
  readonly outShape: (n: number) => [number, number, number, number];
  dispose(): void;
}

export interface WasmKernels {
  readonly name: 'wasm-simd' | 'wasm';
  readonly threads: number;
  /** Bytes of WebAssembly memory the instance holds now (it grows on demand, never shrinks). */
  memoryBytes(): number;
  /** Backend.conv2d: zero padding, stride, dilation, groups (float32 sums, no FMA). */
  conv2d(x: Float32Array, xShape: Shape, w: Float32Array, wShape: Shape, p: Conv2dParams): Float32Array;
  /** Backend.matmul. */
  matmul(a: Float32Array, b: Float32Array, m: number, k: number, n: number, transA: boolean, transB: boolean): Float32Array;
  /** Backend.bitpack (exact). */
  bitpack(x: Float32Array, rows: number, k: number): Uint32Array;
  /** Backend.binaryMatmul (exact). */
  binaryMatmul(a: Uint32Array, b: Uint32Array, m: number, n: number, k: number): Float32Array;
  /** Backend.binaryConv2d (exact): prepareBinaryConv2d + run + dispose. */
  binaryConv2d(x: Float32Array, xShape: Shape, w: Float32Array, wShape: Shape, p: Conv2dParams, padValue: number): Float32Array;
  /** Null when padValue is not 0, +1 or −1. */
  prepareBinaryConv2d(w: Float32Array, wShape: Shape, inShape: readonly [number, number, number], p: Conv2dParams, padValue: number): PreparedBinaryConv2dWasm | null;
  /** Bias (optional, per output channel) is added after the conv, in float32. */
  prepareConv2d(w: Float32Array, wShape: Shape, inShape: readonly [number, number, number], p: Conv2dParams, bias: Float32Array | null): PreparedConv2dWasm;
  /** u = (x + r) + b0[c]; v = u >= 0 ? pos[c]·u : neg[c]·u; y = v + b1[c] over [n, C, m]: bit-identical to infer/kernels.ts channelAct. */
  channelAct(x: Float32Array, residual: Float32Array | null, n: number, C: number, m: number, b0: Float32Array | null, pos: Float32Array | null, neg: Float32Array, b1: Float32Array | null, out?: Float32Array): Float32Array;
}

/** A minimal module using v128 and i8x16.popcnt (the last SIMD instruction engines added). */
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);

/** Whether this JavaScript engine runs WebAssembly SIMD (the 'wasm-simd' build). */
export function wasmSimdSupported(): boolean {
  try {
    return typeof WebAssembly === 'object' && WebAssembly.validate(SIMD_PROBE);
  } catch {
    return false;
  }
}

/** The kernels of a compiled module or its bytes (`name` must match the build: 'wasm-simd' for onebit-simd.wasm). */
export async function instantiateWasmKernels(src: BufferSource | WebAssembly.Module, name: 'wasm-simd' | 'wasm'): Promise<WasmKernels> {
  const instance = src instanceof WebAssembly.Module
    ? await WebAssembly.instantiate(src, {})
    : (await WebAssembly.instantiate(src, {})).instance;
  return makeWasmKernels(instance, name);
}

/** `instantiateWasmKernels` compiling synchronously (fine in Node; browsers limit sync compiles to small modules on the main thread). */
export function instantiateWasmKernelsSync(src: BufferSource | WebAssembly.Module, name: 'wasm-simd' | 'wasm'): WasmKernels {
  const module = src instanceof WebAssembly.Module ? src : new WebAssembly.Module(src);
  return makeWasmKernels(new WebAssembly.Instance(module, {}), name);
}
