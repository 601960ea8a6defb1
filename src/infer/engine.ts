import { readFile } from 'node:fs/promises';
import * as fs from 'node:fs';
import { fail, OnebitError } from '../core/errors.js';
import { decodeOnebit } from '../deploy/format.js';
import { InferenceModel } from './model.js';
import { nodeInferBackend } from './node_backend.js';

export { InferenceModel } from './model.js';

/**
 * Load a `.onebit` model from a file path or its bytes, validating everything up front (a bad file
 * fails with one OnebitError). `const m = await loadModel('model.onebit'); m.predict(x, [1, 3, 32, 32])`.
 */
export async function loadModel(src: string | Uint8Array): Promise<InferenceModel> {
  if (typeof src === 'string') {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(src);
    } catch (e) {
      throw new OnebitError(`${src}: expected a readable .onebit file, but got ${(e as NodeJS.ErrnoException).code ?? String(e)}. Check the path.`);
    }
    return new InferenceModel(decodeOnebit(bytes, src), src, nodeInferBackend(), bytes.length);
  }
  return loadModelSync(src);
}

/** `loadModel` without the promise (reads the file synchronously). */
export function loadModelSync(src: string | Uint8Array): InferenceModel {
  if (typeof src === 'string') {
    let bytes: Uint8Array;
    try {
      bytes = fs.readFileSync(src);
    } catch (e) {
      throw new OnebitError(`${src}: expected a readable .onebit file, but got ${(e as NodeJS.ErrnoException).code ?? String(e)}. Check the path.`);
    }
    return new InferenceModel(decodeOnebit(bytes, src), src, nodeInferBackend(), bytes.length);
  }
  if (!(src instanceof Uint8Array)) fail('loadModel', 'a file path or the bytes of a .onebit file (Uint8Array)', typeof src);
  return new InferenceModel(decodeOnebit(src, 'model'), 'model', nodeInferBackend(), src.length);
}
