import { backend } from '../core/tensor.js';
import { loadAddon } from '../backends/native/addon.js';
import { prepareBinaryConv2d } from '../backends/native/binary.js';
import { nativeChannelAct, nativePortableConv2d } from '../backends/native/eltwise.js';
import { threadCount } from '../backends/ref/threads.js';
import type { InferBackend } from './backend.js';
import { wasmInferBackend } from './web_backend.js';
import { loadWasmKernelsNode } from './wasm/node.js';

/**
 * The InferBackend a model loaded in Node runs on: the registered training backend's kernels (the
 * native addon when built, with its prepared binary conv and fused activation; else the
 * TypeScript reference), or the WebAssembly kernels when ONEBIT_BACKEND=wasm (or wasm-simd / wasm-scalar
 * to pick the build) — the browser's backend, run in Node for tests and parity checks.
 */
export function nodeInferBackend(): InferBackend {
  const want = process.env.ONEBIT_BACKEND ?? '';
  if (want === 'wasm' || want === 'wasm-simd' || want === 'wasm-scalar') return wasmInferBackend(loadWasmKernelsNode(want === 'wasm-scalar' ? 'wasm' : undefined));
  const b = backend();
  const native = b.name.startsWith('native');
  const addon = native ? loadAddon() : null;
  const prepared = native ? nativeInferExtras() : {};
  return {
    name: b.name,
    threads: addon ? addon.info().threads : threadCount(),
    conv2d: b.conv2d, matmul: b.matmul, pad2d: b.pad2d, maxPool2d: b.maxPool2d, avgPool2d: b.avgPool2d, sum: b.sum,
    batchNormApply: b.batchNormApply, binary: b.binary, bitpack: b.bitpack, binaryMatmul: b.binaryMatmul, binaryConv2d: b.binaryConv2d,
    ...prepared,
  };
}

/** The native addon's prepared kernels (those this build has). */
function nativeInferExtras(): Partial<InferBackend> {
  const out: Partial<InferBackend> = { prepareBinaryConv2d };
  if (nativeChannelAct) out.channelAct = nativeChannelAct;
  // The fixed-order float conv shared with the WebAssembly kernels: identical results in Node and browsers.
  if (nativePortableConv2d) out.prepareConv2d = nativePortableConv2d;
  return out;
}
