import * as fs from 'node:fs';
import { OnebitError } from '../core/errors.js';
import { writeFileAtomic } from '../train/checkpoint.js';
import type { OnebitGraph } from '../infer/graph.js';
import { decodeOnebit, encodeOnebit } from './format_core.js';

/** The `.onebit` file on disk; the format itself (encode, decode, validation) is format_core.ts, which runs in browsers too. */
export * from './format_core.js';

/** Write a graph as a `.onebit` file atomically (temp file + fsync + rename). */
export function saveOnebit(file: string, graph: OnebitGraph): void {
  writeFileAtomic(file, encodeOnebit(graph));
}

/** Read and validate a `.onebit` file (one OnebitError naming the file and the problem when it is bad). */
export function readOnebit(file: string): OnebitGraph {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new OnebitError(`${file}: expected a readable .onebit file, but got ${(e as NodeJS.ErrnoException).code ?? String(e)}. Check the path.`);
  }
  return decodeOnebit(bytes, file);
}

