import type { Backend } from '../core/backend.js';
import { OnebitError } from '../core/errors.js';
import { refBackend } from './ref/index.js';
import { createNativeBackend } from './native/index.js';
import { loadAddon, nativeLoadError } from './native/addon.js';

/**
 * Which backend `import 'onebit'` registers. ONEBIT_BACKEND=ref forces the TypeScript reference;
 * ONEBIT_BACKEND=native requires the addon (an error if it is missing); unset picks native when
 * built, else the reference — and then says once, on stderr, how to get the fast one.
 */
export function selectBackend(): Backend {
  const want = process.env.ONEBIT_BACKEND ?? '';
  if (want && want !== 'ref' && want !== 'native') {
    throw new OnebitError(`ONEBIT_BACKEND: expected "ref" or "native", but got "${want}". Unset it to pick automatically.`);
  }
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
