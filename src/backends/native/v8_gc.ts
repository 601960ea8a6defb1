import v8 from 'node:v8';
import { debugLog } from '../../core/debug.js';
import { envVar } from '../../core/env.js';

/**
 * V8's background GC work against the kernels' thread team.
 *
 * The native kernels run one OpenMP team with a thread per core and static work splits, so a
 * parallel region ends when its slowest thread does. A training step allocates a few hundred MB of
 * ArrayBuffers, and V8 answers that external-memory pressure with several major GCs per step whose
 * marking runs concurrently on V8's helper threads: on a machine whose cores the team already
 * fills, each helper preempts one kernel thread and the whole team waits for it. Measured on the
 * 2-core host (`npm run bench:train-profile`, ResNet-20 batch 128, three interleaved runs each):
 * mean step 350–384 ms with V8's defaults, 289–305 ms with concurrent marking and parallel
 * scavenges off (the GC then runs on the main thread, while the kernel threads are idle anyway).
 *
 * So the native backend turns those two off when it loads. They are V8 flags, process-wide, set at
 * run time with `v8.setFlagsFromString` (both are read at each GC start; `--single-threaded-gc`, by
 * contrast, is not safe to set after start-up and is not used). `ONEBIT_GC_TUNE=0` leaves V8 alone.
 */
export const GC_TUNE_FLAGS = ['--no-concurrent-marking', '--no-parallel-scavenge'] as const;

let tuned = false;

/** Apply GC_TUNE_FLAGS once (unless ONEBIT_GC_TUNE=0); whether they are in effect. */
export function tuneV8Gc(): boolean {
  if (tuned) return true;
  if (envVar('ONEBIT_GC_TUNE') === '0') return false;
  for (const f of GC_TUNE_FLAGS) v8.setFlagsFromString(f);
  tuned = true;
  debugLog(`V8 GC: ${GC_TUNE_FLAGS.join(' ')} (helper threads would preempt the kernel threads; ONEBIT_GC_TUNE=0 keeps the defaults)`);
  return true;
}
