/**
 * onebit: train, observe and deploy binary neural networks in TypeScript.
 * Importing the package registers the reference backend.
 */
import { setBackend } from './core/tensor.js';
import { refBackend } from './backends/ref/index.js';

setBackend(refBackend);

export * from './core/tensor.js';
export * from './core/errors.js';
export * from './core/rng.js';
export type * from './core/backend.js';
export { backward, noGrad, isRecording } from './autograd/tape.js';
export * as ops from './ops/index.js';
export { refBackend };
