/**
 * `onebit export`, `onebit predict`, `onebit bench`: the deployment commands (issue 6).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { fail, OnebitError } from '../core/errors.js';
import { loadAddon } from '../backends/native/addon.js';
import { exportCheckpoint } from '../deploy/export.js';
import { saveOnnx } from '../deploy/onnx.js';
import { saveSafetensors } from '../deploy/safetensors.js';
import { loadModel, type InferenceModel } from '../infer/engine.js';
import { imageToInput, topK, type ImageModel } from '../infer/preprocess.js';
import { loadTrainedModel } from '../train/trainer.js';

function resolveCheckpoint(p: string): string {
  return fs.existsSync(p) && fs.statSync(p).isDirectory() ? path.join(p, 'best.ckpt') : p;
}

/** Input shape of one sample for a training config's dataset. */
function sampleShape(dataset: string): number[] {
  return dataset === 'cifar10' ? [3, 32, 32] : [1, 28, 28];
}

/** `onebit export CKPT -o FILE [--format onebit|onnx|safetensors]`. */
export function runExport(ckptArg: string, flags: { output?: string; format: string; exact?: boolean }): void {
  const file = resolveCheckpoint(ckptArg);
  const format = flags.format;
  const ext = format === 'onebit' ? '.onebit' : format === 'onnx' ? '.onnx' : '.safetensors';
  const out = flags.output ?? path.join(path.dirname(file), path.basename(file, path.extname(file)) + ext);
  if (format === 'onebit') {
    const { bytes, graph } = exportCheckpoint(file, out, { exact: flags.exact === true });
    const binary = graph.nodes.filter((n) => n.op === 'binary_conv2d' || n.op === 'binary_dense').length;
    console.log(`${out}: ${bytes.length} bytes, ${graph.nodes.length} nodes (${binary} binary), input [${graph.inputShape.join(', ')}], ${graph.classes} classes`);
    return;
  }
  const { config, model, meta } = loadTrainedModel(file);
  const metadata = { producer: 'onebit', arch: config.arch, method: config.method, dataset: config.dataset, epoch: String(meta.epoch), config: JSON.stringify(config) };
  if (format === 'onnx') saveOnnx(out, model, { inputShape: [1, ...sampleShape(config.dataset)], metadata });
  else saveSafetensors(out, model, metadata);
  console.log(`${out}: ${fs.statSync(out).size} bytes (${format}, ${config.arch} method=${config.method}, epoch ${meta.epoch})`);
}

/**
 * A PNG as one model input [C, H, W] (imageToInput on its decoded RGBA pixels: channel conversion,
 * resize, optional inversion, the model's normalization).
 */
export function pngToInput(bytes: Buffer, file: string, model: ImageModel, invert: boolean): Float32Array {
  let png: PNG;
  try {
    png = PNG.sync.read(bytes);
  } catch (e) {
    throw new OnebitError(`${file}: expected a PNG image, but got an unreadable file (${(e as Error).message}). Convert it to PNG first.`);
  }
  return imageToInput(png.data, png.width, png.height, model, { invert });
}

/** `onebit predict MODEL IMAGE…`: top-k classes per image. */
export async function runPredict(modelFile: string, images: string[], flags: { top: number; invert?: boolean; json?: boolean }): Promise<void> {
  const m = await loadModel(modelFile);
  if (m.inputShape.length !== 3) fail('predict', 'a model with image input [C, H, W]', `input [${m.inputShape.join(', ')}]`);
  const per = m.inputShape.reduce((a, b) => a * b, 1);
  const x = new Float32Array(images.length * per);
  images.forEach((f, i) => {
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(f);
    } catch (e) {
      throw new OnebitError(`${f}: expected a readable PNG file, but got ${(e as NodeJS.ErrnoException).code ?? String(e)}. Check the path.`);
    }
    x.set(pngToInput(bytes, f, m, flags.invert ?? false), i * per);
  });
  const t0 = performance.now();
  const logits = m.predict(x, [images.length, ...m.inputShape]);
  const ms = performance.now() - t0;
  const k = Math.min(Math.max(1, flags.top), m.classes);
  const results = images.map((file, i) => {
    const top = topK(logits.subarray(i * m.classes, (i + 1) * m.classes), k, m.labels);
    return { file, top: top.map((t) => ({ class: t.index, label: t.label, prob: t.probability })) };
  });
  if (flags.json) {
    console.log(JSON.stringify({ model: modelFile, backend: m.backend.name, ms, results }, null, 2));
    return;
  }
  for (const r of results) console.log(`${r.file}: ${r.top.map((t) => `${t.label} ${(100 * t.prob).toFixed(1)}%`).join(', ')}`);
  console.log(`(${images.length} image${images.length > 1 ? 's' : ''} in ${ms.toFixed(2)} ms on ${m.backend.name})`);
}

/** `onebit bench MODEL`: median latency at batch 1 and N, 1 and 2 threads. */
export async function runBench(modelFile: string, flags: { batch: number; iters: number }): Promise<void> {
  const m = await loadModel(modelFile);
  const per = m.inputShape.reduce((a, b) => a * b, 1);
  const addon = loadAddon();
  const size = fs.statSync(modelFile).size;
  console.log(`${modelFile}: ${size} bytes, input [${m.inputShape.join(', ')}], ${m.classes} classes, backend ${m.backend.name}`);
  console.log('| batch | threads | median ms | ms / image | images/s |');
  console.log('|---:|---:|---:|---:|---:|');
  // Thread counts only change the native kernels (the WebAssembly ones run on what they were loaded with).
  const native = m.backend.name.startsWith('native');
  for (const threads of native && addon ? [1, 2] : [m.backend.threads]) {
    if (native) addon?.setThreads(threads);
    for (const b of [1, flags.batch]) {
      const x = Float32Array.from({ length: b * per }, (_, i) => Math.sin(i));
      m.predict(x, [b, ...m.inputShape]);
      const times: number[] = [];
      const n = Math.max(3, Math.round(flags.iters / Math.sqrt(b)));
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        m.predict(x, [b, ...m.inputShape]);
        times.push(performance.now() - t0);
      }
      const med = times.sort((p, q) => p - q)[Math.floor(n / 2)]!;
      console.log(`| ${b} | ${addon ? threads : 'TS'} | ${med.toFixed(3)} | ${(med / b).toFixed(3)} | ${Math.round((1000 * b) / med)} |`);
    }
  }
}
