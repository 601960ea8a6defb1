import '../src/index.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { OnebitError } from '../src/core/errors.js';
import { loadModelSync } from '../src/infer/engine.js';
import { imageToInput, loadModel, topK } from '../src/web/index.js';
import { serveStatic } from '../bench/web/serve.js';

/**
 * The browser entry (`onebit/web`) in Node: loading from bytes and from a URL (a local HTTP server
 * stands in for the page's origin), the backend choice and its fallbacks, and one clear error for
 * bad options and missing files. The same models and inputs must give the Node engine's logits.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const modelFile = path.join(root, 'demo', 'models', 'cifar10-resnet20.onebit');
const wasmDir = path.join(root, 'build', 'wasm');
const haveWasm = fs.existsSync(path.join(wasmDir, 'onebit-simd.wasm')) && fs.existsSync(path.join(wasmDir, 'onebit.wasm'));

test('onebit/web: loadModel from bytes and URLs on wasm-simd, wasm and js; same logits as the Node engine', async (t) => {
  if (!haveWasm) {
    if (process.env.ONEBIT_REQUIRE_WASM === '1') assert.fail('build/wasm is missing');
    t.skip('WebAssembly kernels not built (node native/build-wasm.cjs)');
    return;
  }
  const server = await serveStatic({ mounts: { '/wasm/': wasmDir, '/models/': path.dirname(modelFile) } });
  try {
    const bytes = new Uint8Array(fs.readFileSync(modelFile));
    const node = loadModelSync(bytes);
    const rgba = new Uint8Array(32 * 32 * 4).map((_, i) => (i % 4 === 3 ? 255 : (i * 37) % 256));
    const x = imageToInput(rgba, 32, 32, node);
    const want = node.predict(x);
    for (const backend of ['wasm-simd', 'wasm', 'js'] as const) {
      const m = await loadModel(`${server.url}/models/cifar10-resnet20.onebit`, { backend, wasmUrl: `${server.url}/wasm/` });
      assert.equal(m.backend.name, backend);
      assert.equal(m.backend.threads, 1, 'no threads without a cross-origin isolated page');
      assert.equal(m.size.fileBytes, bytes.length);
      assert.ok(m.size.floatBytes > 10 * bytes.length);
      const y = m.predict(x);
      for (let i = 0; i < y.length; i++) assert.ok(Math.abs(y[i]! - want[i]!) <= 1e-4 * (1 + Math.abs(want[i]!)), `${backend}: logit ${i}`);
      assert.equal(topK(y, 1, m.labels)[0]!.index, topK(want, 1)[0]!.index);
    }
    // 'auto' picks SIMD here; bytes work as well as URLs.
    assert.equal((await loadModel(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length), { wasmUrl: `${server.url}/wasm` })).backend.name, 'wasm-simd');
    // 'auto' with unreachable kernels falls back to TypeScript (with a console warning); a named backend fails.
    const warn = console.warn;
    console.warn = () => undefined;
    try {
      assert.equal((await loadModel(bytes, { wasmUrl: `${server.url}/nowhere/` })).backend.name, 'js');
    } finally {
      console.warn = warn;
    }
    await assert.rejects(loadModel(bytes, { backend: 'wasm', wasmUrl: `${server.url}/nowhere/` }), (e) => e instanceof OnebitError && /expected HTTP 200 .*onebit\.wasm, but got 404/.test(e.message));
    await assert.rejects(loadModel(`${server.url}/models/missing.onebit`), (e) => e instanceof OnebitError && /missing\.onebit.*404.*Check the model URL/.test(e.message));
    await assert.rejects(loadModel(bytes, { backend: 'gpu' as never }), (e) => e instanceof OnebitError && /loadModel backend: expected "auto", "wasm-simd", "wasm" or "js"/.test(e.message));
    await assert.rejects(loadModel(bytes, { threads: 0 }), (e) => e instanceof OnebitError && /loadModel threads: expected an integer from 1 to 64, but got 0/.test(e.message));
    await assert.rejects(loadModel(bytes.subarray(0, 100)), (e) => e instanceof OnebitError && /truncated|bytes/.test(e.message));
    await assert.rejects(loadModel(42 as never), (e) => e instanceof OnebitError && /expected a URL or the bytes of a \.onebit file/.test(e.message));
  } finally {
    await server.close();
  }
});
