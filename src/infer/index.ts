/**
 * The `.onebit` inference engine (no autograd): `loadModel(path | bytes)` → `InferenceModel`
 * with `predict(input, [N, ...inputShape])` → logits [N, classes]. The graph and op table are in
 * graph.ts, the engine in model.ts, the float kernels in kernels.ts, the binary ops in binary.ts,
 * the kernel sets it runs on in backend.ts (Node: node_backend.ts; browsers: web_backend.ts).
 */
export { InferenceModel, loadModel, loadModelSync } from './engine.js';
export type { InferBackend, PreparedBinaryConv2d, PreparedConv2d } from './backend.js';
export { nodeInferBackend } from './node_backend.js';
export { imageToInput, preprocessOf, topK, type Preprocess } from './preprocess.js';
export { OPS, LIMITS, inferShapes, type OnebitGraph, type GraphNode, type GraphTensor, type ValueInfo, type OpName } from './graph.js';
