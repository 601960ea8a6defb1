/**
 * Best time in ms of `fn` over at least `minCalls` calls and `minMs` of wall time, after `warmup`
 * untimed calls (the benchmarks' shared timer: the best call is the least disturbed by a noisy host).
 */
export function bestMs(fn: () => void, minMs = 150, minCalls = 3, warmup = 1): number {
  for (let i = 0; i < warmup; i++) fn();
  let best = Infinity, calls = 0;
  const t0 = performance.now();
  while (calls < minCalls || performance.now() - t0 < minMs) {
    const t = performance.now();
    fn();
    best = Math.min(best, performance.now() - t);
    calls++;
  }
  return best;
}
