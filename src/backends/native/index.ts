import type { Backend } from '../../core/backend.js';
import { refBackend } from '../ref/index.js';
import { loadAddon } from './addon.js';
import { binaryKernels } from './binary.js';
import { dnnlKernels } from './dnnl.js';
import { eltwiseKernels } from './eltwise.js';
import { tuneV8Gc } from './v8_gc.js';
import { nativeRecycler } from './alloc.js';

/**
 * The native backend: the reference backend with its heavy kernels replaced by the C++ addon —
 * float conv/matmul/batch-norm/pooling through oneDNN (when the addon was built with it) and our
 * own bit-packed binary kernels (AVX-512 VPOPCNTDQ / AVX2 / scalar, chosen at run time), plus the
 * hot float elementwise kernels on large arrays (sign/abs/neg/relu, add/sub/mul, the clipped STE
 * backward, the two-valued scale test; see eltwise.ts). Kernels the addon does not provide (other
 * elementwise ops, reductions, softmax) stay on the TypeScript reference. Null when the addon is not built.
 * Its large outputs can be recycled across training steps (alloc.ts, core/recycle.ts). Creating it turns V8's concurrent GC marking and parallel scavenges off (v8_gc.ts; ONEBIT_GC_TUNE=0 opts out).
 */
export function createNativeBackend(): Backend | null {
  const addon = loadAddon();
  if (!addon) return null;
  const threads = process.env.ONEBIT_THREADS;
  if (threads && /^\d+$/.test(threads) && Number(threads) > 0) addon.setThreads(Number(threads));
  tuneV8Gc();
  return {
    ...refBackend,
    ...(dnnlKernels ?? {}),
    ...(binaryKernels ?? {}),
    ...(eltwiseKernels ?? {}),
    packedBinaryForward: true,
    recycler: nativeRecycler,
    name: addon.info().dnnl ? `native (oneDNN + ${addon.info().isa})` : `native (${addon.info().isa}, no oneDNN)`,
  };
}
