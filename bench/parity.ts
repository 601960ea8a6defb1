/**
 * `npm run parity -- CKPT [--data-dir DIR]`: exported-model parity on a whole test set. Runs the
 * training graph in eval mode (no tape), the `.onebit` engine, and ONNX Runtime on the ONNX export,
 * over every test image, and reports top-1 agreement with the training graph, the largest logit
 * difference (absolute, and relative to the batch's largest logit), and each one's test accuracy.
 * The folded `.onebit` graph also runs on the WebAssembly backend (the browser's kernels, here in
 * Node) and is compared with the native engine on the same file (top-1 must be identical).
 * Ends with RESULT lines:
 *   RESULT parity_top1_mismatches_onebit=<count>   RESULT parity_top1_mismatches_onnx=<count>
 *   RESULT parity_max_rel_logit_diff_onebit=<x>   RESULT parity_top1_mismatches_wasm_vs_native=<count>
 */
import { Command } from 'commander';
import * as ort from 'onnxruntime-node';
import { noGrad, Tensor } from '../src/index.js';
import { DataLoader } from '../src/data/loader.js';
import { exportCheckpoint } from '../src/deploy/export.js';
import { exportOnnx } from '../src/deploy/onnx.js';
import { InferenceModel } from '../src/infer/engine.js';
import { nodeInferBackend } from '../src/infer/node_backend.js';
import { wasmInferBackend } from '../src/infer/web_backend.js';
import { loadWasmKernelsNode } from '../src/infer/wasm/node.js';
import { datasetNorm, loadData, loadTrainedModel } from '../src/train/trainer.js';
import { backend } from '../src/core/tensor.js';

const program = new Command('parity')
  .argument('<checkpoint>', 'training checkpoint (.ckpt)')
  .option('--data-dir <dir>', 'dataset folder (default: the one the checkpoint was trained with)')
  .option('--batch <n>', 'batch size', '250')
  .parse();
const file = program.args[0]!;
const o = program.opts();

const { config, model, meta } = loadTrainedModel(file);
model.eval();
const { test } = loadData({ ...config, dataDir: o.dataDir ?? config.dataDir, trainSubset: 0, testSubset: 0 }, 'test');
const { graph } = exportCheckpoint(file);
const be = nodeInferBackend();
const engine = new InferenceModel(graph, file, be);
const exact = new InferenceModel(exportCheckpoint(file, undefined, { exact: true }).graph, file, be);
const wasm = new InferenceModel(graph, file, wasmInferBackend(loadWasmKernelsNode()));
const shape = graph.inputShape;
const onnx = exportOnnx(model, { inputShape: [1, ...shape] });
const sess = await ort.InferenceSession.create(onnx);
const loader = new DataLoader(test, { batchSize: Number(o.batch), shuffle: false, normalize: datasetNorm(config.dataset) });

const argmax = (v: Float32Array, r: number, C: number): number => {
  let b = 0;
  for (let c = 1; c < C; c++) if (v[r * C + c]! > v[r * C + b]!) b = c;
  return b;
};
const C = graph.classes;
let seen = 0, mismatchOnebit = 0, mismatchOnnx = 0, maxAbs = 0, maxRel = 0, maxAbsOnnx = 0;
let correctRef = 0, correctOnebit = 0, correctOnnx = 0, mismatchExact = 0, maxAbsExact = 0;
let correctWasm = 0, mismatchWasm = 0, mismatchWasmRef = 0, maxAbsWasm = 0;
const t0 = performance.now();
for (const { x, y } of loader.batches()) {
  const n = y.length, data = x.f32();
  const ref = noGrad(() => model.forward(new Tensor(data, [n, ...shape]))).f32();
  const ob = engine.predict(data, [n, ...shape]);
  const oe = exact.predict(data, [n, ...shape]);
  const ow = wasm.predict(data, [n, ...shape]);
  const ox = (await sess.run({ [sess.inputNames[0]!]: new ort.Tensor('float32', data, [n, ...shape]) }))[sess.outputNames[0]!]!.data as Float32Array;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) scale = Math.max(scale, Math.abs(ref[i]!));
  for (let r = 0; r < n; r++) {
    const a = argmax(ref, r, C), b = argmax(ob, r, C), c = argmax(ox, r, C);
    if (a !== b) mismatchOnebit++;
    if (a !== argmax(oe, r, C)) mismatchExact++;
    if (a !== c) mismatchOnnx++;
    if (a === y[r]) correctRef++;
    if (b === y[r]) correctOnebit++;
    if (c === y[r]) correctOnnx++;
    const w = argmax(ow, r, C);
    if (w !== b) mismatchWasm++;
    if (w !== a) mismatchWasmRef++;
    if (w === y[r]) correctWasm++;
  }
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(ref[i]! - ob[i]!);
    maxAbs = Math.max(maxAbs, d);
    maxRel = Math.max(maxRel, d / Math.max(1, scale));
    maxAbsOnnx = Math.max(maxAbsOnnx, Math.abs(ref[i]! - ox[i]!));
    maxAbsExact = Math.max(maxAbsExact, Math.abs(ref[i]! - oe[i]!));
    maxAbsWasm = Math.max(maxAbsWasm, Math.abs(ob[i]! - ow[i]!));
  }
  seen += n;
}
const pct = (k: number) => `${((100 * k) / seen).toFixed(2)}%`;
console.log(`parity: ${file} (${config.dataset} ${config.arch} method=${config.method}, epoch ${meta.epoch}), ${seen} test images, backend ${backend().name}, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
console.log(`| graph | test acc | top-1 ≠ training graph | max |Δ logit| |`);
console.log(`|---|---:|---:|---:|`);
console.log(`| training graph (eval) | ${pct(correctRef)} | – | – |`);
console.log(`| .onebit engine, --exact | – | ${mismatchExact} | ${maxAbsExact.toExponential(2)} |`);
console.log(`| .onebit engine (folded, default) | ${pct(correctOnebit)} | ${mismatchOnebit} | ${maxAbs.toExponential(2)} (rel ${maxRel.toExponential(2)}) |`);
console.log(`| ONNX Runtime | ${pct(correctOnnx)} | ${mismatchOnnx} | ${maxAbsOnnx.toExponential(2)} |`);
console.log(`| .onebit engine on ${wasm.backend.name} (folded) | ${pct(correctWasm)} | ${mismatchWasmRef} | – |`);
console.log(`${wasm.backend.name} vs the ${be.name} engine on the same .onebit graph: ${mismatchWasm} top-1 differences, max |Δ logit| ${maxAbsWasm.toExponential(2)}`);
console.log(`RESULT parity_top1_mismatches_onebit_exact=${mismatchExact}`);
console.log(`RESULT parity_max_abs_logit_diff_onebit_exact=${maxAbsExact}`);
console.log(`RESULT parity_top1_mismatches_onebit=${mismatchOnebit}`);
console.log(`RESULT parity_top1_mismatches_onnx=${mismatchOnnx}`);
console.log(`RESULT parity_max_rel_logit_diff_onebit=${maxRel.toExponential(3)}`);
console.log(`RESULT parity_top1_mismatches_wasm_vs_native=${mismatchWasm}`);
console.log(`RESULT parity_max_abs_logit_diff_wasm_vs_native=${maxAbsWasm}`);
