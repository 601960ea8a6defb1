import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The functions the C++ addon (build/Release/onebit.node) exports; dnnl kernels only when built with oneDNN. */
export interface NativeAddon {
  info(): { dnnl: boolean; isa: 'avx512' | 'avx2' | 'ref'; threads: number };
  setThreads(n: number): void;
  [kernel: string]: unknown;
}

let cached: NativeAddon | null | undefined;
let loadError = '';

/** The addon, or null when it is not built (see `nativeLoadError()`). Loaded once. */
export function loadAddon(): NativeAddon | null {
  if (cached !== undefined) return cached;
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
  const require = createRequire(import.meta.url);
  for (const candidate of [path.join(root, 'build', 'Release', 'onebit.node'), path.join(root, 'build', 'Debug', 'onebit.node')]) {
    try {
      cached = require(candidate) as NativeAddon;
      return cached;
    } catch (e) {
      loadError = (e as Error).message.split('\n')[0]!;
    }
  }
  cached = null;
  return cached;
}

export function nativeLoadError(): string {
  return loadError;
}
