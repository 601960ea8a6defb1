/**
 * The `.onebit` inference engine (no autograd): `loadModel(path | bytes)` → `InferenceModel`
 * with `predict(input, [N, ...inputShape])` → logits [N, classes]. The graph and op table are in
 * graph.ts, the float kernels in kernels.ts, the binary ops in binary.ts.
 */
export { InferenceModel, loadModel, loadModelSync } from './engine.js';
export { OPS, LIMITS, inferShapes, type OnebitGraph, type GraphNode, type GraphTensor, type ValueInfo, type OpName } from './graph.js';
