import type { Backend } from '../core/backend.js';
import { OnebitError } from '../core/errors.js';
import { refBackend } from './ref/index.js';
import { createNativeBackend } from './native/index.js';
import { loadAddon, nativeLoadError } from './native/addon.js';

/**
 * Which backend `import 'onebit'` registers. ONEBIT_BACKEND=ref forces the TypeScript reference;
 * ONEBIT_BACKEND=native requires the addon (an error if it is missing); unset picks native when
 * built, else the reference — and then says once, on stderr, how to get the fast one.
 * ONEBIT_BACKEND=wasm (wasm-simd, wasm-scalar) runs the inference engine on the WebAssembly kernels
 * (infer/node_backend.ts); training kernels then pick as if it were unset.
 */
export function selectBackend(): Backend {
  let want = process.env.ONEBIT_BACKEND ?? '';
  if (want && !['ref', 'native', 'wasm', 'wasm-simd', 'wasm-scalar'].includes(want)) {
    throw new OnebitError(`ONEBIT_BACKEND: expected "ref", "native", "wasm", "wasm-simd" or "wasm-scalar", but got "${want}". Unset it to pick automatically.`);
  }
  if (want.startsWith('wasm')) want = '';
  if (want === 'ref') return refBackend;
  const native = createNativeBackend();
  if (native) {
    if (!loadAddon()?.info().dnnl) {
      process.stderr.write('onebit: the native addon was built without oneDNN; float convolutions use the TypeScript kernels. Install oneDNN (Debian/Ubuntu: sudo apt-get install -y libdnnl-dev) and run `npm rebuild onebit`.\n');
    }
    return native;
  }
  if (want === 'native') {
    throw new OnebitError(`ONEBIT_BACKEND: expected the native addon (build/Release/onebit.node), but got none (${nativeLoadError() || 'not built'}). Run \`npm rebuild onebit\` after installing g++ and libdnnl-dev.`);
  }
  process.stderr.write(
    'onebit: native addon not built; using the (much slower) TypeScript reference backend. ' +
      'For the fast one: sudo apt-get install -y g++ libdnnl-dev && npm rebuild onebit\n',
  );
  return refBackend;
}
