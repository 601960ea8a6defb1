#!/usr/bin/env node
// Builds onebit's WebAssembly kernels (native/wasm/*.c, freestanding C: no libc, no emscripten):
//   build/wasm/onebit-simd.wasm   with 128-bit SIMD (Chrome 91+, Firefox 89+, Safari 16.4+, Node 16.4+)
//   build/wasm/onebit.wasm        scalar, for engines without SIMD
//   build/wasm/onebit-simd-threads.wasm   SIMD on an imported shared memory (env.memory, max 1 GiB),
//                                 for Web Workers / worker_threads (src/infer/wasm/pool.ts); same C
//                                 (-matomics -mbulk-memory; each instance's __stack_pointer is set
//                                 by its loader, the kernels take [begin, end) work ranges)
// Each is one clang call (clang ≥ 13 with the wasm32 target, and wasm-ld from lld):
//   clang --target=wasm32 -O3 -ffreestanding -nostdlib -ffp-contract=off [-msimd128] \
//     -Wl,--no-entry -Wl,--export=__heap_base -Wl,-z,stack-size=65536 -o OUT native/wasm/*.c
// Usage: node native/build-wasm.cjs   (env CC_WASM picks the compiler, default clang). Without clang or
// wasm-ld it warns once and exits 0 (the engine then runs on its other backends), unless
// ONEBIT_REQUIRE_WASM=1, where it exits 1.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const srcDir = path.join(__dirname, 'wasm');
const outDir = path.join(root, 'build', 'wasm');
const cc = process.env.CC_WASM || 'clang';
const sources = fs.readdirSync(srcDir).filter((f) => f.endsWith('.c')).sort().map((f) => path.join(srcDir, f));
const flags = ['--target=wasm32', '-O3', '-ffreestanding', '-nostdlib', '-ffp-contract=off', '-Wall', '-Wextra',
  '-Wl,--no-entry', '-Wl,--export=__heap_base', '-Wl,-z,stack-size=65536'];

function giveUp(why) {
  const msg = `onebit: the WebAssembly kernels were not built (${why}); the browser/wasm backend will be unavailable. ` +
    'Install clang and lld (Debian/Ubuntu: sudo apt-get install -y clang lld) and run node native/build-wasm.cjs.';
  if (process.env.ONEBIT_REQUIRE_WASM === '1') {
    console.error(msg);
    process.exit(1);
  }
  console.warn(msg);
  process.exit(0);
}

fs.mkdirSync(outDir, { recursive: true });
const THREADS = ['-msimd128', '-matomics', '-mbulk-memory', '-mmutable-globals', '-Wl,--import-memory', '-Wl,--shared-memory',
  '-Wl,--initial-memory=2097152', '-Wl,--max-memory=1073741824', '-Wl,--export=__stack_pointer'];
for (const [file, extra] of [['onebit-simd.wasm', ['-msimd128']], ['onebit.wasm', []], ['onebit-simd-threads.wasm', THREADS]]) {
  const out = path.join(outDir, file);
  const r = spawnSync(cc, [...flags, ...extra, '-o', out, ...sources], { stdio: ['ignore', 'inherit', 'pipe'], encoding: 'utf8' });
  if (r.error) giveUp(`${cc}: ${r.error.code === 'ENOENT' ? 'not found' : r.error.message}`);
  if (r.status !== 0) {
    process.stderr.write(r.stderr);
    giveUp(/wasm-ld|unable to execute|No available targets|unknown target/i.test(r.stderr) ? 'clang cannot target wasm32 or wasm-ld is missing' : `${cc} failed`);
  }
  if (r.stderr) process.stderr.write(r.stderr);
  // The module must be self-contained: a libc call the compiler emitted would show up as an import.
  // (The threaded build imports its shared memory as env.memory, nothing else.)
  const imports = WebAssembly.Module.imports(new WebAssembly.Module(fs.readFileSync(out)))
    .filter((i) => !(extra === THREADS && i.module === 'env' && i.name === 'memory' && i.kind === 'memory'));
  if (imports.length) giveUp(`${file} imports ${imports.map((i) => i.name).join(', ')}`);
  console.log(`onebit: built ${path.relative(root, out)} (${fs.statSync(out).size} bytes)`);
}
