import { batchNormApply } from '../backends/ref/batch_norm.js';
import { binaryConv2d, binaryMatmul, bitpack } from '../backends/ref/binary.js';
import { conv2d } from '../backends/ref/conv2d.js';
import { binary } from '../backends/ref/elementwise.js';
import { matmul } from '../backends/ref/matmul.js';
import { pad2d } from '../backends/ref/pad2d.js';
import { avgPool2d, maxPool2d } from '../backends/ref/pool2d.js';
import { sum } from '../backends/ref/reduce.js';
import type { InferBackend } from './backend.js';
import type { WasmKernels } from './wasm/index.js';

/**
 * InferBackends without Node built-ins (the browser build): plain TypeScript (the reference
 * backend's kernels, single-threaded), and the WebAssembly kernels over it — WebAssembly for the
 * convolutions, matmuls, binary GEMM and fused activation, TypeScript for the light ops.
 */
export const jsInferBackend: InferBackend = {
  name: 'js', threads: 1,
  conv2d, matmul, pad2d, maxPool2d, avgPool2d, sum, batchNormApply, binary, bitpack, binaryMatmul, binaryConv2d,
};

/** The WebAssembly kernels `k` as an InferBackend. */
export function wasmInferBackend(k: WasmKernels): InferBackend {
  return {
    ...jsInferBackend,
    name: k.name, threads: k.threads,
    conv2d: k.conv2d, matmul: k.matmul, bitpack: k.bitpack, binaryMatmul: k.binaryMatmul,
    prepareBinaryConv2d: k.prepareBinaryConv2d, prepareConv2d: k.prepareConv2d, channelAct: k.channelAct,
  };
}
