#!/usr/bin/env node
// `npm ci` / `npm install` hook: builds the native addon (build/Release/onebit.node) with node-gyp.
// A failed build is not fatal: onebit then runs on the pure-TypeScript reference backend and says
// so once at startup. Set ONEBIT_REQUIRE_NATIVE=1 (CI does) to make a failed build fail the install.
// --nodedir points node-gyp at this Node's own headers (nothing is downloaded).
const { spawnSync } = require('child_process');
const path = require('path');

if (process.env.ONEBIT_SKIP_NATIVE === '1') {
  console.log('onebit: ONEBIT_SKIP_NATIVE=1, not building the native addon.');
  process.exit(0);
}
const nodedir = path.dirname(path.dirname(process.execPath));
const gyp = (() => {
  try {
    return require.resolve('node-gyp/bin/node-gyp.js');
  } catch {
    const npmDir = path.join(nodedir, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
    return npmDir;
  }
})();
const r = spawnSync(process.execPath, [gyp, 'rebuild', `--nodedir=${nodedir}`, '-j', 'max'], { stdio: 'inherit', cwd: path.join(__dirname, '..') });
if (r.status !== 0) {
  const msg = 'onebit: the native addon did not build; onebit will use the (much slower) TypeScript backend. ' +
    'To get the fast one install a C++ compiler and oneDNN (Debian/Ubuntu: sudo apt-get install -y g++ libdnnl-dev) and run npm rebuild onebit.';
  if (process.env.ONEBIT_REQUIRE_NATIVE === '1') {
    console.error(msg);
    process.exit(1);
  }
  console.warn(msg);
}

// node-gyp rebuild empties build/, so the WebAssembly kernels (build/wasm/, the browser backend and
// ONEBIT_BACKEND=wasm) are built after it; without clang + lld that step only warns (unless ONEBIT_REQUIRE_WASM=1).
const w = spawnSync(process.execPath, [path.join(__dirname, 'build-wasm.cjs')], { stdio: 'inherit', cwd: path.join(__dirname, '..') });
if (w.status !== 0) process.exit(w.status ?? 1);
