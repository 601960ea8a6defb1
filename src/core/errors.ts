/**
 * One error type for bad input anywhere in onebit. Messages follow the house shape:
 * `<what>: expected <x>, but got <y>. <hint>`.
 */
export class OnebitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OnebitError';
  }
}

/** Build and throw an OnebitError with the standard message shape. */
export function fail(what: string, expected: string, got: string, hint = ''): never {
  throw new OnebitError(`${what}: expected ${expected}, but got ${got}.${hint ? ' ' + hint : ''}`);
}

export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}
