#!/usr/bin/env node
// Builds `onebit/web`: the browser ESM bundle dist/web/onebit.js (esbuild, from src/web/index.ts),
// the threads' worker dist/web/onebit-kernels-worker.js, and the WebAssembly kernels
// (build/wasm/*.wasm, from native/build-wasm.cjs) copied beside them.
// platform=browser makes any Node built-in reaching the bundle a build error, so the bundle is
// checked free of them. Prints the sizes (raw and gzip) and writes dist/web/meta.json (esbuild's
// metafile, for bundle analysis). Types: tsc emits dist/src/web/index.d.ts (package.json exports).
import * as esbuild from 'esbuild';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist', 'web');
fs.mkdirSync(out, { recursive: true });
const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: [
    { in: 'src/web/index.ts', out: 'onebit' },
    { in: 'src/infer/wasm/worker.ts', out: 'onebit-kernels-worker' }, // the threads' Web Worker
  ],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  outdir: out,
  minify: true,
  sourcemap: true,
  metafile: true,
  legalComments: 'eof',
  logLevel: 'warning',
});
fs.writeFileSync(path.join(out, 'meta.json'), JSON.stringify(result.metafile));
const sizes = [];
for (const f of ['onebit.js', 'onebit-kernels-worker.js']) {
  const js = fs.readFileSync(path.join(out, f));
  sizes.push([f, js.length, gzipSync(js).length]);
}
for (const f of ['onebit-simd.wasm', 'onebit.wasm', 'onebit-simd-threads.wasm']) {
  const src = path.join(root, 'build', 'wasm', f);
  if (!fs.existsSync(src)) {
    const msg = `build-web: expected ${path.relative(root, src)}, but got no such file. Build the WebAssembly kernels first: node native/build-wasm.cjs (needs clang and lld).`;
    if (process.env.ONEBIT_REQUIRE_WASM === '1') {
      console.error(msg);
      process.exit(1);
    }
    console.warn(msg);
    continue;
  }
  const tmp = path.join(out, `${f}.tmp`);
  fs.copyFileSync(src, tmp);
  fs.renameSync(tmp, path.join(out, f));
  const b = fs.readFileSync(path.join(out, f));
  sizes.push([f, b.length, gzipSync(b).length]);
}
for (const [f, raw, gz] of sizes) console.log(`dist/web/${f}: ${(raw / 1024).toFixed(1)} KiB (${(gz / 1024).toFixed(1)} KiB gzip)`);
