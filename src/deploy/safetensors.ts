import { endianness } from 'node:os';
import { fail, fmtShape } from '../core/errors.js';
import { sizeOf } from '../core/shape.js';
import { Tensor, type DType } from '../core/tensor.js';
import type { Module } from '../nn/module.js';
import { writeFileAtomic } from '../train/checkpoint.js';

/**
 * safetensors export of a model's state dict: the LATENT (real-valued) weights, the quantizers'
 * learnable state and every buffer (batch-norm running statistics, …), under the state-dict names
 * ("0.weight", "stage1.0.bn.runningMean"), so a model rebuilt from the same config loads them with
 * `loadStateDict`. Binarization is not applied here: this is the training state, not the deployed
 * 1-bit form (use the ONNX export for that).
 *
 * Format (https://github.com/huggingface/safetensors), all integers little-endian:
 *
 *   | 8 bytes | u64 N, byte length of the header                                           |
 *   | N bytes | UTF-8 JSON { "__metadata__": {string: string},                              |
 *   |         |   "<name>": { "dtype": "F32", "shape": [...], "data_offsets": [begin, end] } } |
 *   |         | padded with spaces so that 8 + N is a multiple of 8                          |
 *   | rest    | tensor data, row-major, little-endian; offsets relative to the byte 8 + N    |
 *
 * Tensors are laid out in state-dict order, back to back (no holes, as the format requires).
 * dtypes: F32 (every onebit parameter and buffer), I32 and U8 for int32/uint8 buffers.
 */

/** What `readSafetensors` returns: the `__metadata__` strings and the tensors by name (file order). */
export interface SafetensorsFile {
  metadata: Record<string, string>;
  tensors: Map<string, Tensor>;
}

const DTYPES: Readonly<Record<DType, { name: string; bytes: number }>> = {
  float32: { name: 'F32', bytes: 4 },
  int32: { name: 'I32', bytes: 4 },
  uint8: { name: 'U8', bytes: 1 },
};

function hostLittleEndian(what: string): void {
  if (endianness() !== 'LE') fail(what, 'a little-endian host', 'a big-endian one', 'safetensors data is little-endian; onebit writes native typed arrays.');
}

function checkMetadata(metadata: Record<string, string>): void {
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') fail('exportSafetensors metadata', `string values (safetensors' __metadata__ is string → string)`, `${k}: ${typeof v}`, 'JSON.stringify objects first.');
  }
}

/**
 * The model's state dict (latent weights + buffers) as safetensors bytes. `metadata` (string →
 * string, e.g. { arch, method, config: JSON.stringify(config) }) goes into `__metadata__`, after a
 * default `format: "pt"` (what PyTorch's safetensors helpers write) and `producer: "onebit"`.
 */
export function exportSafetensors(model: Module, metadata: Record<string, string> = {}): Uint8Array {
  hostLittleEndian('exportSafetensors');
  const meta = { format: 'pt', producer: 'onebit', ...metadata };
  checkMetadata(meta);
  const header: Record<string, unknown> = { __metadata__: meta };
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of model.stateDict()) {
    if (name === '__metadata__') fail('exportSafetensors', 'no tensor named "__metadata__"', 'one', 'Rename the parameter.');
    const v = t.values();
    const bytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    header[name] = { dtype: DTYPES[t.dtype].name, shape: [...t.shape], data_offsets: [offset, offset + bytes.length] };
    blobs.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json, 'utf8')) % 8)) % 8);
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let pos = 8 + head.length;
  for (const b of blobs) {
    out.set(b, pos);
    pos += b.length;
  }
  return out;
}

/** Write `exportSafetensors(model, metadata)` to `file` atomically (temp file, fsync, rename). */
export function saveSafetensors(file: string, model: Module, metadata: Record<string, string> = {}): void {
  writeFileAtomic(file, exportSafetensors(model, metadata));
}

/**
 * Parse safetensors bytes (any writer's, for the dtypes F32, I32, U8). Checks the header length,
 * the JSON, every entry's dtype, shape and offsets (in range, size = prod(shape)·itemsize) and that
 * the entries tile the data section with no hole or overlap; any violation throws one OnebitError.
 * The tensors are copies (safe to keep after `bytes` is reused); `model.loadStateDict(file.tensors)`
 * loads an onebit export back.
 */
export function readSafetensors(bytes: Uint8Array): SafetensorsFile {
  const what = 'readSafetensors';
  hostLittleEndian(what);
  if (bytes.length < 8) fail(what, 'at least 8 bytes (the header length)', `${bytes.length} bytes`, 'Is the file truncated?');
  const n = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true);
  if (n > BigInt(bytes.length - 8)) fail(what, `a header length of at most ${bytes.length - 8} bytes`, `${n}`, 'Is the file truncated or not safetensors?');
  const dataStart = 8 + Number(n);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, dataStart)));
  } catch (e) {
    fail(what, 'a UTF-8 JSON header', `unparseable text (${(e as Error).message})`, 'Is this a safetensors file?');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail(what, 'a JSON object header', typeof header);
  const dataLen = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: DType; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null) fail(what, '__metadata__ to be an object of strings', JSON.stringify(raw));
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(what, `__metadata__ values to be strings`, `${k}: ${JSON.stringify(v)}`);
        metadata[k] = v;
      }
      continue;
    }
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const dtype = (Object.keys(DTYPES) as DType[]).find((d) => DTYPES[d].name === e?.dtype);
    if (!dtype) fail(what, `tensor "${name}" of dtype F32, I32 or U8`, JSON.stringify(e?.dtype), 'onebit reads only the dtypes it writes; convert the file to float32 first.');
    const shape = e.shape, offs = e.data_offsets;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) fail(what, `tensor "${name}" with a shape of non-negative integers`, JSON.stringify(shape));
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isSafeInteger(d) && d >= 0) || offs[0] > offs[1] || offs[1] > dataLen) {
      fail(what, `tensor "${name}" with data_offsets [begin, end] inside the ${dataLen}-byte data section`, JSON.stringify(offs), 'Is the file truncated?');
    }
    const size = sizeOf(shape as number[]) * DTYPES[dtype].bytes;
    if (offs[1] - offs[0] !== size) fail(what, `tensor "${name}" of ${size} bytes (shape ${fmtShape(shape as number[])}, ${e.dtype})`, `${offs[1] - offs[0]} bytes`);
    entries.push({ name, dtype, shape: shape as number[], begin: offs[0], end: offs[1] });
  }
  const byOffset = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  for (const e of byOffset) {
    if (e.begin !== covered) fail(what, `tensor data that tiles the data section (next byte ${covered})`, `"${e.name}" at [${e.begin}, ${e.end}]`, e.begin < covered ? 'Two tensors overlap.' : 'There is a hole.');
    covered = e.end;
  }
  if (covered !== dataLen) fail(what, `tensor data covering all ${dataLen} data bytes`, `${covered} bytes`, 'The file has trailing bytes.');
  const tensors = new Map<string, Tensor>();
  for (const e of entries) {
    const copy = bytes.slice(dataStart + e.begin, dataStart + e.end); // fresh, aligned buffer
    const storage = e.dtype === 'float32' ? new Float32Array(copy.buffer) : e.dtype === 'int32' ? new Int32Array(copy.buffer) : copy;
    tensors.set(e.name, new Tensor(storage, e.shape));
  }
  return { metadata, tensors };
}
