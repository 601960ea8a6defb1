/**
 * An environment variable, or undefined where there is no `process` (browsers): modules that the
 * browser build includes read settings through this instead of `process.env`.
 */
export function envVar(name: string): string | undefined {
  const p = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  return p?.env?.[name];
}
