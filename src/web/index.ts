/**
 * `onebit/web`: the 1-bit inference engine for browsers (and any JavaScript runtime with
 * WebAssembly), no Node built-ins. The same engine and `.onebit` files as Node's, on WebAssembly
 * kernels (SIMD128 when the engine has it, scalar otherwise) or plain TypeScript.
 *
 *   import { loadModel, imageToInput, topK } from 'onebit/web';
 *   const m = await loadModel('/models/mnist.onebit');
 *   const logits = m.predict(imageToInput(ctx.getImageData(0, 0, w, h).data, w, h, m));
 *   topK(logits, 5, m.labels);   // [{ index, label, probability }, …]
 *   m.backend;                   // { name: 'wasm-simd', threads: 1, … }
 *
 * The WebAssembly files (`onebit-simd.wasm`, `onebit.wasm`, and for threads
 * `onebit-simd-threads.wasm` + `onebit-kernels-worker.js`) are fetched from next to this module
 * (`import.meta.url`) unless `wasmUrl` says where they are. Threads: on a cross-origin isolated
 * page (COOP `same-origin` + COEP `require-corp`: SharedArrayBuffer) the SIMD kernels run on
 * min(4, hardwareConcurrency) threads — this one plus Web Workers sharing the module's memory;
 * elsewhere on one. `model.backend.threads` reports which.
 */
import { fail, OnebitError } from '../core/errors.js';
import { decodeOnebit } from '../deploy/format_core.js';
import type { InferBackend } from '../infer/backend.js';
import { InferenceModel } from '../infer/model.js';
import { instantiateWasmKernels, instantiateWasmKernelsThreaded, wasmSimdSupported, wasmThreadsSupported, type KernelWorker } from '../infer/wasm/index.js';
import { jsInferBackend, wasmInferBackend } from '../infer/web_backend.js';

export { InferenceModel } from '../infer/model.js';
export type { InferBackend } from '../infer/backend.js';
export { imageToInput, preprocessOf, topK, type Preprocess, type ImageModel } from '../infer/preprocess.js';
export { decodeOnebit } from '../deploy/format_core.js';
export { OnebitError } from '../core/errors.js';

/** Which kernels to run on: 'auto' picks WebAssembly SIMD, then scalar WebAssembly, then TypeScript. */
export type WebBackendName = 'auto' | 'wasm-simd' | 'wasm' | 'js';

export interface LoadOptions {
  /** Default 'auto'. */
  backend?: WebBackendName;
  /** The folder (URL) holding onebit-simd.wasm and onebit.wasm; default: next to this module. */
  wasmUrl?: string | URL;
  /**
   * Threads for the SIMD kernels: default min(4, navigator.hardwareConcurrency) where the page is
   * cross-origin isolated, else 1 (no SharedArrayBuffer). 1 forces single-threaded; more than 1 on
   * a page that cannot run threads falls back to 1 with a console warning.
   */
  threads?: number;
}

/** What `model.backend` reports in the browser build. */
export interface WebBackendInfo {
  name: string;
  threads: number;
  /** Whether the page is cross-origin isolated (SharedArrayBuffer available: the precondition for WebAssembly threads). */
  crossOriginIsolated: boolean;
}

/** A model as `loadModel` returns it: the engine's InferenceModel, with `backend` describing where it runs. */
export type WebModel = InferenceModel & { readonly backend: InferBackend & WebBackendInfo };

const kernelCache = new Map<string, Promise<InferBackend>>();

function wasmFile(file: string, base: string | URL | undefined): URL {
  if (base === undefined) return new URL(file, import.meta.url);
  const b = String(base);
  return new URL(file, b.endsWith('/') ? b : `${b}/`);
}

async function fetchBytes(url: URL | string, what: string, hint: string): Promise<ArrayBuffer> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new OnebitError(`${what}: expected to fetch ${String(url)}, but got ${(e as Error).message}. ${hint}`);
  }
  if (!res.ok) throw new OnebitError(`${what}: expected HTTP 200 for ${String(url)}, but got ${res.status} ${res.statusText}. ${hint}`);
  return res.arrayBuffer();
}

function wasmBackend(kind: 'wasm-simd' | 'wasm', base: string | URL | undefined, threads = 1): Promise<InferBackend> {
  const url = wasmFile(threads > 1 ? 'onebit-simd-threads.wasm' : kind === 'wasm-simd' ? 'onebit-simd.wasm' : 'onebit.wasm', base);
  const key = `${kind} ${threads} ${url.href}`;
  let p = kernelCache.get(key);
  if (!p) {
    p = (async () => {
      const bytes = await fetchBytes(url, `loadModel (${kind} kernels)`, 'Serve the .wasm files next to onebit.js or pass { wasmUrl }.');
      if (threads === 1) return wasmInferBackend(await instantiateWasmKernels(bytes, kind));
      const worker = wasmFile('onebit-kernels-worker.js', base);
      const spawn = (): KernelWorker => new Worker(worker, { type: 'module' }) as unknown as KernelWorker;
      return wasmInferBackend(await instantiateWasmKernelsThreaded(bytes, spawn, threads));
    })();
    kernelCache.set(key, p);
    p.catch(() => kernelCache.delete(key));
  }
  return p;
}

/** Threads for the SIMD kernels (see LoadOptions.threads). */
function threadCount(asked: number | undefined): number {
  if (asked !== undefined && (!Number.isInteger(asked) || asked < 1 || asked > 64)) fail('loadModel threads', 'an integer from 1 to 64', String(asked));
  const can = wasmThreadsSupported() && typeof Worker === 'function';
  if (asked !== undefined && asked > 1 && !can) {
    console.warn('onebit: threads need a cross-origin isolated page (COOP same-origin + COEP require-corp); running single-threaded.');
    return 1;
  }
  if (!can) return 1;
  const cores = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1;
  return asked ?? Math.max(1, Math.min(4, cores));
}

/** The kernels for an option ('auto': the best that loads; a failed threaded or SIMD load falls back to single-threaded SIMD, scalar, then TypeScript). */
async function pickBackend(want: WebBackendName, base: string | URL | undefined, asked: number | undefined): Promise<InferBackend> {
  if (want === 'js') return jsInferBackend;
  if (want === 'wasm-simd' && !wasmSimdSupported()) fail('loadModel backend', 'a JavaScript engine with WebAssembly SIMD for "wasm-simd"', 'one without it', 'Use "wasm" or "auto".');
  if (want === 'wasm') return wasmBackend('wasm', base);
  if (typeof WebAssembly !== 'object') return jsInferBackend;
  const order: ['wasm-simd' | 'wasm', number][] = [];
  if (wasmSimdSupported()) {
    const threads = threadCount(asked);
    if (threads > 1) order.push(['wasm-simd', threads]);
    order.push(['wasm-simd', 1]);
  }
  if (want === 'auto') order.push(['wasm', 1]);
  for (const [kind, t] of order) {
    try {
      return await wasmBackend(kind, base, t);
    } catch (e) {
      if (want !== 'auto' && t === 1) throw e;
      console.warn(`onebit: ${kind} kernels${t > 1 ? ` on ${t} threads` : ''} unavailable (${(e as Error).message}); trying the next backend.`);
    }
  }
  return jsInferBackend;
}

/**
 * Load a `.onebit` model from a URL or its bytes, validating everything up front (a bad file fails
 * with one OnebitError), on the kernels `opts.backend` names (default 'auto').
 */
export async function loadModel(src: string | URL | Uint8Array | ArrayBuffer, opts: LoadOptions = {}): Promise<WebModel> {
  const want = opts.backend ?? 'auto';
  if (!['auto', 'wasm-simd', 'wasm', 'js'].includes(want)) fail('loadModel backend', '"auto", "wasm-simd", "wasm" or "js"', JSON.stringify(want));
  let bytes: Uint8Array, source = 'model';
  if (src instanceof Uint8Array) bytes = src;
  else if (src instanceof ArrayBuffer) bytes = new Uint8Array(src);
  else if (typeof src === 'string' || src instanceof URL) {
    source = String(src);
    bytes = new Uint8Array(await fetchBytes(src, source, 'Check the model URL.'));
  } else {
    return fail('loadModel', 'a URL or the bytes of a .onebit file (Uint8Array or ArrayBuffer)', src === null ? 'null' : typeof src);
  }
  const graph = decodeOnebit(bytes, source);
  const be = await pickBackend(want, opts.wasmUrl, opts.threads);
  const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
  const info: InferBackend & WebBackendInfo = { ...be, crossOriginIsolated: isolated };
  return new InferenceModel(graph, source, info, bytes.length) as WebModel;
}
