import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Conv2dParams } from '../src/core/backend.js';
import { Rng } from '../src/core/rng.js';
import { conv2d } from '../src/backends/ref/conv2d.js';
import { nativePortableConv2d } from '../src/backends/native/eltwise.js';
import { loadWasmKernelsNode } from '../src/infer/wasm/node.js';

/**
 * The engine's fixed-order float conv: the native build (native/eltwise/portable_conv.cc, AVX2
 * panel kernel) must give the same bits as the WebAssembly builds (native/wasm/conv2d.c), so a model
 * predicts identically in Node and in browsers; and both stay within float rounding of the reference.
 */
const CASES: { x: [number, number, number, number]; w: [number, number, number, number]; p: Conv2dParams; bias: boolean }[] = [
  { x: [1, 3, 32, 32], w: [16, 3, 3, 3], p: { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 }, bias: true },
  { x: [2, 5, 9, 7], w: [13, 5, 3, 2], p: { stride: [2, 1], padding: [1, 0], dilation: [1, 2], groups: 1 }, bias: false },
  { x: [1, 64, 8, 8], w: [128, 64, 1, 1], p: { stride: [2, 2], padding: [0, 0], dilation: [1, 1], groups: 1 }, bias: true },
  { x: [3, 6, 5, 11], w: [9, 2, 3, 3], p: { stride: [1, 2], padding: [2, 1], dilation: [2, 1], groups: 3 }, bias: true },
  { x: [1, 7, 4, 4], w: [1, 7, 5, 5], p: { stride: [1, 1], padding: [2, 2], dilation: [1, 1], groups: 1 }, bias: false },
];

test('portable float conv: native and WebAssembly (SIMD and scalar) give identical bits, close to the reference', (t) => {
  if (!nativePortableConv2d) {
    if (process.env.ONEBIT_REQUIRE_NATIVE === '1') assert.fail('the native addon lacks portableConv2dF32');
    t.skip('native addon not built');
    return;
  }
  const wasms = (['wasm-simd', 'wasm'] as const).flatMap((k) => {
    try {
      return [loadWasmKernelsNode(k)];
    } catch (e) {
      if (process.env.ONEBIT_REQUIRE_WASM === '1') throw e;
      return [];
    }
  });
  const r = new Rng(11);
  for (const c of CASES) {
    const x = Float32Array.from({ length: c.x.reduce((a, b) => a * b) }, () => r.normal());
    const w = Float32Array.from({ length: c.w.reduce((a, b) => a * b) }, () => r.normal());
    const bias = c.bias ? Float32Array.from({ length: c.w[0] }, () => r.normal()) : null;
    const inShape = c.x.slice(1) as [number, number, number];
    const y = nativePortableConv2d(w, c.w, inShape, c.p, bias).run(x, c.x[0]);
    const ref = conv2d(x, c.x, w, c.w, c.p);
    const Co = c.w[0], plane = ref.length / (c.x[0] * Co);
    for (let i = 0; i < ref.length; i++) {
      const want = ref[i]! + (bias ? bias[Math.floor(i / plane) % Co]! : 0);
      assert.ok(Math.abs(y[i]! - want) <= 1e-4 * (1 + Math.abs(want)), `${JSON.stringify(c)}: ${y[i]} vs ${want} at ${i}`);
    }
    for (const k of wasms) {
      const yw = k.prepareConv2d(w, c.w, inShape, c.p, bias).run(x, c.x[0]);
      assert.deepEqual(Buffer.from(yw.buffer), Buffer.from(y.buffer), `${k.name} vs native: ${JSON.stringify(c)}`);
    }
    // Into a given output array, repeated: same bits.
    const out = new Float32Array(y.length).fill(NaN);
    assert.deepEqual(nativePortableConv2d(w, c.w, inShape, c.p, bias).run(x, c.x[0], out), y);
  }
});
