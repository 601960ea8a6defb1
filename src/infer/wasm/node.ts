import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { fail } from '../../core/errors.js';
import { instantiateWasmKernelsSync, instantiateWasmKernelsThreaded, wasmSimdSupported, type KernelWorker, type ThreadedOptions, type WasmKernels } from './index.js';

/**
 * The WebAssembly kernels in Node, from build/wasm/ of this package (built by
 * `node native/build-wasm.cjs`). `kind` defaults to 'wasm-simd' where the engine has SIMD (Node 20
 * does), else 'wasm'. Each call instantiates a new module (its own memory).
 */
export function loadWasmKernelsNode(kind: 'wasm-simd' | 'wasm' = wasmSimdSupported() ? 'wasm-simd' : 'wasm'): WasmKernels {
  if (kind !== 'wasm-simd' && kind !== 'wasm') fail('loadWasmKernelsNode', '"wasm-simd" or "wasm"', JSON.stringify(kind));
  return instantiateWasmKernelsSync(readFileSync(wasmKernelsPath(kind)), kind);
}

/**
 * The threaded kernels (build/wasm/onebit-simd-threads.wasm) with `threads` threads (default: the
 * available cores, at most 4): this thread and threads − 1 worker_threads (unref'd: they keep no
 * process alive; `dispose()` stops them).
 */
export async function loadWasmKernelsNodeThreaded(threads = Math.min(4, availableParallelism()), opts?: ThreadedOptions): Promise<WasmKernels> {
  const bytes = readFileSync(wasmKernelsPath('wasm-simd-threads'));
  const entry = new URL('./node_worker.js', import.meta.url);
  const spawn = (): KernelWorker => {
    const w = new Worker(entry);
    w.unref();
    return {
      postMessage: (m) => w.postMessage(m),
      addEventListener: (type, listener) => {
        if (type === 'message') w.on('message', (data: unknown) => listener({ data }));
        else w.on('error', (e: Error) => listener({ message: e.message }));
      },
      terminate: () => void w.terminate(),
    };
  };
  return instantiateWasmKernelsThreaded(bytes, spawn, threads, opts);
}

/** Where the build for `kind` is (dist/src/infer/wasm/node.js → the repository's build/wasm/); throws when absent. */
export function wasmKernelsPath(kind: 'wasm-simd' | 'wasm' | 'wasm-simd-threads'): string {
  const file = kind === 'wasm-simd' ? 'onebit-simd.wasm' : kind === 'wasm' ? 'onebit.wasm' : 'onebit-simd-threads.wasm';
  // Compiled: dist/src/infer/wasm/ (four levels below the root); run from source: src/infer/wasm/ (three).
  const candidates = ['../../../../build/wasm/', '../../../build/wasm/'].map((d) => fileURLToPath(new URL(d + file, import.meta.url)));
  const found = candidates.find((p) => existsSync(p));
  return found ?? fail('loadWasmKernelsNode', `the WebAssembly kernels at ${candidates[0]}`, 'no such file',
    'Install clang and lld (Debian/Ubuntu: sudo apt-get install -y clang lld) and run node native/build-wasm.cjs.');
}
