/**
 * Debug log, on with ONEBIT_DEBUG=1 (stderr). Used wherever a fast path hands work to a slower one
 * (a native kernel falling back to the reference for a shape it does not handle), so no fallback is
 * silent. Each distinct message is printed once.
 */
const seen = new Set<string>();

export function debugEnabled(): boolean {
  return process.env.ONEBIT_DEBUG === '1';
}

export function debugLog(msg: string): void {
  if (!debugEnabled() || seen.has(msg)) return;
  seen.add(msg);
  process.stderr.write(`onebit debug: ${msg}\n`);
}
