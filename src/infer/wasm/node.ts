import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { fail } from '../../core/errors.js';
import { instantiateWasmKernelsSync, wasmSimdSupported, type WasmKernels } from './index.js';

/**
 * The WebAssembly kernels in Node, from build/wasm/ of this package (built by
 * `node native/build-wasm.cjs`). `kind` defaults to 'wasm-simd' where the engine has SIMD (Node 20
 * does), else 'wasm'. Each call instantiates a new module (its own memory).
 */
export function loadWasmKernelsNode(kind: 'wasm-simd' | 'wasm' = wasmSimdSupported() ? 'wasm-simd' : 'wasm'): WasmKernels {
  if (kind !== 'wasm-simd' && kind !== 'wasm') fail('loadWasmKernelsNode', '"wasm-simd" or "wasm"', JSON.stringify(kind));
  return instantiateWasmKernelsSync(readFileSync(wasmKernelsPath(kind)), kind);
}

/** Where the build for `kind` is (dist/src/infer/wasm/node.js → the repository's build/wasm/); throws when absent. */
export function wasmKernelsPath(kind: 'wasm-simd' | 'wasm'): string {
  const file = kind === 'wasm-simd' ? 'onebit-simd.wasm' : 'onebit.wasm';
  // Compiled: dist/src/infer/wasm/ (four levels below the root); run from source: src/infer/wasm/ (three).
  const candidates = ['../../../../build/wasm/', '../../../build/wasm/'].map((d) => fileURLToPath(new URL(d + file, import.meta.url)));
  const found = candidates.find((p) => existsSync(p));
  return found ?? fail('loadWasmKernelsNode', `the WebAssembly kernels at ${candidates[0]}`, 'no such file',
    'Install clang and lld (Debian/Ubuntu: sudo apt-get install -y clang lld) and run node native/build-wasm.cjs.');
}
