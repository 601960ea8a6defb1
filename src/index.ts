/**
 * onebit: train, observe and deploy binary neural networks in TypeScript.
 * Importing the package registers the backend: the native addon when built (ONEBIT_BACKEND=ref|native
 * forces one), else the TypeScript reference.
 */
import { setBackend } from './core/tensor.js';
import { refBackend } from './backends/ref/index.js';
import { selectBackend } from './backends/select.js';

setBackend(selectBackend());

export * from './core/tensor.js';
export * from './core/errors.js';
export * from './core/rng.js';
export type * from './core/backend.js';
export { backward, noGrad, isRecording } from './autograd/tape.js';
export { recycling, clearRecyclePool, type Keep } from './core/recycle.js';
export * as ops from './ops/index.js';
export { refBackend };
export { threadCount, threadStats } from './backends/ref/threads.js';
export { Module, Sequential } from './nn/module.js';
export * from './nn/layers.js';
export * from './nn/binary.js';
export * from './nn/react.js';
export * from './nn/losses.js';
export * from './quantizers/index.js';
export * from './optim/index.js';
export * from './data/index.js';
export { FlipTracker } from './metrics/flips.js';
export { summary, formatSummary, type ModelSummary, type LayerSummary } from './metrics/summary.js';
export { resnet18, ResNet18, BiRealBlock, type ResNet18Options } from './models/resnet18.js';
export { buildModel, methodNames, methodPreset, methodActivation, mnistModel, withBinarize, type Binarize, type MethodPreset } from './models/index.js';
export { resnet20, vggSmall, VggSmall, reactnetA, ReActNetA, type ReActNetAOptions } from './models/index.js';
export { initFromCheckpoint, type InitFromReport } from './train/init_from.js';
export * from './deploy/index.js';
export { exportOnnx, saveOnnx, type OnnxExportOptions } from './deploy/onnx.js';
export { exportSafetensors, saveSafetensors, readSafetensors, type SafetensorsFile } from './deploy/safetensors.js';
export * from './infer/index.js';
export { train, evaluate, persistentTensors, loadTrainedModel, type EpochStats, type TrainCallbacks, type TrainOptions, type TrainResult } from './train/trainer.js';
export { DEFAULT_CONFIG, resolveConfig, type TrainConfig } from './train/config.js';
export { saveCheckpoint, loadCheckpoint, encodeCheckpoint, decodeCheckpoint, type CheckpointData } from './train/checkpoint.js';
