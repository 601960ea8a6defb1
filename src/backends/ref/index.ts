import type { Backend } from '../../core/backend.js';
import { binary, clamp, contiguous, unary } from './elementwise.js';
import { argmax, max, spread, sum } from './reduce.js';
import { matmul } from './matmul.js';
import './threads.js'; // registers the worker pool's parallel matmul (Node only)
import { conv2d, conv2dBackwardFilter, conv2dBackwardInput } from './conv2d.js';
import { pad2d } from './pad2d.js';
import { avgPool2d, avgPool2dBackward, maxPool2d, maxPool2dBackward } from './pool2d.js';
import { batchNormApply, batchNormBackward, batchNormStats } from './batch_norm.js';
import { logSoftmax } from './log_softmax.js';
import { packSigns, popcountXor } from './pack_signs.js';
import { binaryConv2d, binaryMatmul, bitpack } from './binary.js';
import { shortcutA } from './shortcut.js';

/**
 * The pure-TypeScript reference backend: every kernel of the contract, one file per kernel family.
 * It is the fallback where no native addon is available and the oracle the fast backends are
 * tested against.
 */
export const refBackend: Backend = {
  name: 'ref',
  contiguous, binary, unary, clamp,
  sum, spread, max, argmax,
  matmul,
  conv2d, conv2dBackwardInput, conv2dBackwardFilter,
  pad2d,
  maxPool2d, maxPool2dBackward, avgPool2d, avgPool2dBackward,
  batchNormStats, batchNormApply, batchNormBackward,
  logSoftmax,
  packSigns, popcountXor,
  bitpack, binaryMatmul, binaryConv2d,
  shortcutA,
};
