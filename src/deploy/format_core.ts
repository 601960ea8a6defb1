import { sha256 } from '@noble/hashes/sha2.js';
import { fail } from '../core/errors.js';
import {
  attrSpecs, DTYPE_BYTES, inferShapes, isOpName, LIMITS, OPS, sizeOfShape,
  type AttrValue, type DTypeName, type GraphNode, type GraphTensor, type OnebitGraph, type TypedData,
} from '../infer/graph.js';

/**
 * The `.onebit` deployment file, version 1 (docs/onebit-format.md is the full description).
 * All integers little-endian.
 *
 *   offset  size  field
 *   0       8     magic "ONEBITNN"
 *   8       4     u32 format version (1)
 *   12      4     u32 flags (0; reserved)
 *   16      4     u32 L, the file's length in bytes (checksum included)
 *   20      4     u32 J, byte length of the JSON graph
 *   24      4     u32 B, offset of the tensor blob (a multiple of 64)
 *   28      4     u32 blob length (= L − 32 − B)
 *   32      J     UTF-8 JSON graph (see `GraphJson`), then zero bytes up to B
 *   B       …     tensors, each at B + offset (offset a multiple of 64, so every tensor is 64-byte aligned
 *                 in the file), little-endian, row-major; gaps are zero
 *   L − 32  32    SHA-256 of bytes [0, L − 32)
 *
 * `decodeOnebit` validates everything before it returns — sizes, magic, version, checksum, JSON
 * schema, tensor ranges, every node's inputs (only earlier values: no cycles), attributes and shapes,
 * and the engine's peak memory (LIMITS) — and a bad file fails with ONE OnebitError naming what
 * was wrong. Nothing is allocated from a size in the file before that size is checked against the
 * file's actual length.
 */

export const ONEBIT_MAGIC = 'ONEBITNN';
export const ONEBIT_VERSION = 1;
const HEADER_BYTES = 32;
const HASH_BYTES = 32;
const ALIGN = 64;
/** Largest file and JSON graph accepted. */
export const MAX_FILE_BYTES = 1 << 30;
export const MAX_JSON_BYTES = 1 << 24;
const MAX_TENSORS = 4 * LIMITS.maxNodes;

/** One tensor entry of the JSON table. */
interface TensorJson {
  dtype: DTypeName;
  shape: number[];
  /** Byte offset from the blob start (a multiple of 64). */
  offset: number;
  bytes: number;
}

/** The JSON graph as stored (tensor attributes are `{ "tensor": index }`). */
interface GraphJson {
  format: 'onebit-model';
  input: { shape: number[] };
  classes: number;
  labels?: string[];
  metadata: Record<string, unknown>;
  tensors: TensorJson[];
  nodes: { op: string; name?: string; inputs: number[]; attrs: Record<string, number | number[] | { tensor: number }> }[];
  output: number;
}

const align = (n: number): number => Math.ceil(n / ALIGN) * ALIGN;
const LITTLE = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

/** Bytes of a typed array in little-endian order (a view when the host is little-endian). */
function leBytes(d: TypedData): Uint8Array {
  const b = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  if (LITTLE || d.BYTES_PER_ELEMENT === 1) return b;
  const out = new Uint8Array(b.length);
  for (let i = 0; i < b.length; i += 4) for (let j = 0; j < 4; j++) out[i + j] = b[i + 3 - j]!;
  return out;
}

/** Serialize a graph to the bytes of a `.onebit` file (validated first, so only loadable files are written). */
export function encodeOnebit(graph: OnebitGraph): Uint8Array {
  inferShapes(graph, 'encodeOnebit');
  const tensors: TensorJson[] = [];
  const datas: TypedData[] = [];
  let blob = 0;
  const nodes = graph.nodes.map((n) => {
    const attrs: GraphJson['nodes'][number]['attrs'] = {};
    for (const [k, v] of Object.entries(n.attrs)) {
      if (typeof v === 'number' || Array.isArray(v)) {
        attrs[k] = v;
        continue;
      }
      const bytes = v.data.byteLength;
      if (bytes !== sizeOfShape(v.shape) * DTYPE_BYTES[v.dtype]) fail(`encodeOnebit: tensor ${k} of ${n.name ?? n.op}`, `${sizeOfShape(v.shape)} values`, `${v.data.length}`);
      attrs[k] = { tensor: tensors.length };
      tensors.push({ dtype: v.dtype, shape: v.shape, offset: blob, bytes });
      datas.push(v.data);
      blob = align(blob + bytes);
    }
    return { op: n.op, ...(n.name ? { name: n.name } : {}), inputs: n.inputs, attrs };
  });
  const json: GraphJson = {
    format: 'onebit-model',
    input: { shape: graph.inputShape },
    classes: graph.classes,
    ...(graph.labels ? { labels: graph.labels } : {}),
    metadata: graph.metadata,
    tensors,
    nodes,
    output: graph.output,
  };
  const text = new TextEncoder().encode(JSON.stringify(json));
  if (text.length > MAX_JSON_BYTES) fail('encodeOnebit', `a JSON graph of at most ${MAX_JSON_BYTES} bytes`, `${text.length}`, 'Is the metadata very large?');
  const B = align(HEADER_BYTES + text.length);
  const L = B + blob + HASH_BYTES;
  if (L > MAX_FILE_BYTES) fail('encodeOnebit', `a file of at most ${MAX_FILE_BYTES} bytes`, `${L}`);
  const buf = new Uint8Array(L), dv = new DataView(buf.buffer);
  for (let i = 0; i < 8; i++) buf[i] = ONEBIT_MAGIC.charCodeAt(i);
  dv.setUint32(8, ONEBIT_VERSION, true);
  dv.setUint32(12, 0, true);
  dv.setUint32(16, L, true);
  dv.setUint32(20, text.length, true);
  dv.setUint32(24, B, true);
  dv.setUint32(28, L - HASH_BYTES - B, true);
  buf.set(text, HEADER_BYTES);
  tensors.forEach((t, i) => buf.set(leBytes(datas[i]!), B + t.offset));
  buf.set(sha256(buf.subarray(0, L - HASH_BYTES)), L - HASH_BYTES);
  return buf;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isUint = (v: unknown, max = 0xffffffff): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;

/**
 * Parse and validate the bytes of a `.onebit` file into a graph whose every node, attribute and
 * shape has been checked (see the module comment). `source` names the file in errors.
 */
export function decodeOnebit(bytes: Uint8Array, source = 'model'): OnebitGraph {
  const bad = (expected: string, got: string, hint = ''): never => fail(source, expected, got, hint);
  if (!(bytes instanceof Uint8Array)) bad('the bytes of a .onebit file (Uint8Array)', typeof bytes);
  const b = bytes, dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.length < HEADER_BYTES + HASH_BYTES) bad(`a .onebit file of at least ${HEADER_BYTES + HASH_BYTES} bytes`, `${b.length} bytes`, 'The file is empty or truncated.');
  const magic = String.fromCharCode(...b.subarray(0, 8));
  if (magic !== ONEBIT_MAGIC) bad(`the magic bytes "${ONEBIT_MAGIC}"`, JSON.stringify(magic), magic === 'ONEBITCK' ? 'This is a training checkpoint: convert it with `onebit export`.' : 'This is not a .onebit model.');
  const version = dv.getUint32(8, true);
  if (version !== ONEBIT_VERSION) bad(`format version ${ONEBIT_VERSION}`, `version ${version}`, 'It was written by another onebit version; re-export it.');
  const flags = dv.getUint32(12, true);
  if (flags !== 0) bad('flags 0', `0x${flags.toString(16)}`, 'The file is corrupted or from a newer onebit.');
  const L = dv.getUint32(16, true), J = dv.getUint32(20, true), B = dv.getUint32(24, true), blobBytes = dv.getUint32(28, true);
  if (L !== b.length) bad(`${L} bytes (the length in the header)`, `${b.length}`, b.length < L ? 'The file is truncated.' : 'The file has trailing bytes (or a corrupted header).');
  if (L > MAX_FILE_BYTES) bad(`a file of at most ${MAX_FILE_BYTES} bytes`, `${L}`);
  if (J > MAX_JSON_BYTES || HEADER_BYTES + J > B || B % ALIGN || B + HASH_BYTES > L || blobBytes !== L - HASH_BYTES - B) {
    bad('a consistent header (JSON length, 64-aligned blob offset, blob length)', `J=${J}, B=${B}, blob=${blobBytes} in a ${L}-byte file`, 'The file is corrupted.');
  }
  const digest = sha256(b.subarray(0, L - HASH_BYTES)), stored = b.subarray(L - HASH_BYTES);
  if (digest.some((v, i) => v !== stored[i])) bad('a matching SHA-256 checksum', 'a mismatch', 'The file is corrupted (or was edited).');
  for (let i = HEADER_BYTES + J; i < B; i++) if (b[i] !== 0) bad('zero padding after the JSON graph', `byte ${b[i]} at ${i}`);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(b.subarray(HEADER_BYTES, HEADER_BYTES + J)));
  } catch {
    return bad('a UTF-8 JSON graph', 'unparseable bytes', 'The file is corrupted.');
  }
  const graph = parseGraph(json, b.subarray(B, B + blobBytes), source);
  inferShapes(graph, source);
  return graph;
}

const TOP_KEYS = ['format', 'input', 'classes', 'labels', 'metadata', 'tensors', 'nodes', 'output'];

/** The JSON graph → an in-memory graph with tensors copied out of the blob (schema checks only; shapes follow). */
function parseGraph(j: unknown, blob: Uint8Array, source: string): OnebitGraph {
  const bad = (what: string, expected: string, got: unknown): never => fail(what ? `${source}: ${what}` : source, expected, typeof got === 'string' ? got : (JSON.stringify(got)?.slice(0, 80) ?? String(got)));
  if (!isObj(j)) return bad('JSON graph', 'an object', j);
  for (const k of Object.keys(j)) if (!TOP_KEYS.includes(k)) bad('JSON graph', `the keys ${TOP_KEYS.join(', ')}`, `unknown key ${JSON.stringify(k)}`);
  if (j.format !== 'onebit-model') bad('format', '"onebit-model"', JSON.stringify(j.format) ?? 'none');
  if (!isObj(j.input) || !Array.isArray(j.input.shape)) bad('input', '{ "shape": [...] }', j.input);
  if (!isUint(j.classes, 1 << 24) || j.classes < 1) bad('classes', 'a positive integer', j.classes);
  if (j.labels !== undefined && !(Array.isArray(j.labels) && j.labels.every((l) => typeof l === 'string'))) bad('labels', 'an array of strings', j.labels);
  if (!isObj(j.metadata)) bad('metadata', 'an object', j.metadata);
  if (!Array.isArray(j.tensors) || j.tensors.length > MAX_TENSORS) bad('tensors', `an array of at most ${MAX_TENSORS} entries`, Array.isArray(j.tensors) ? `${j.tensors.length} entries` : j.tensors);
  if (!Array.isArray(j.nodes) || j.nodes.length < 1 || j.nodes.length > LIMITS.maxNodes) bad('nodes', `an array of 1 to ${LIMITS.maxNodes} nodes`, Array.isArray(j.nodes) ? `${j.nodes.length} entries` : j.nodes);
  if (!isUint(j.output)) bad('output', 'a value index', j.output);

  const tensors = (j.tensors as unknown[]).map((e, i): GraphTensor => {
    const what = `tensor ${i}`;
    if (!isObj(e) || Object.keys(e).some((k) => !['dtype', 'shape', 'offset', 'bytes'].includes(k))) return bad(what, '{ dtype, shape, offset, bytes }', e);
    const { dtype, shape, offset, bytes } = e;
    if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_BYTES, dtype)) return bad(what, `dtype ${Object.keys(DTYPE_BYTES).join(', ')}`, JSON.stringify(dtype) ?? 'none');
    if (!Array.isArray(shape) || shape.length < 1 || shape.length > LIMITS.maxRank || !shape.every((d) => isUint(d, 0x7fffffff) && d >= 1)) return bad(what, `a shape of 1 to ${LIMITS.maxRank} positive dimensions`, shape);
    const size = (shape as number[]).reduce((a, d) => a * d, 1);
    const need = size * DTYPE_BYTES[dtype as DTypeName];
    if (!isUint(offset) || offset % ALIGN || !isUint(bytes) || bytes !== need || offset + bytes > blob.length) {
      return bad(what, `${need} bytes at a 64-aligned offset inside the ${blob.length}-byte blob`, `offset ${JSON.stringify(offset)}, ${JSON.stringify(bytes)} bytes`);
    }
    return { dtype: dtype as DTypeName, shape: shape as number[], data: readTensor(blob, offset, dtype as DTypeName, size) };
  });
  // Tensors in blob order and non-overlapping.
  (j.tensors as TensorJson[]).forEach((t, i, all) => {
    if (i && t.offset < all[i - 1]!.offset + all[i - 1]!.bytes) bad(`tensor ${i}`, `an offset after the end of tensor ${i - 1}`, `${t.offset}`);
  });

  const nodes = (j.nodes as unknown[]).map((n, i): GraphNode => {
    const what = `node ${i}`;
    if (!isObj(n) || Object.keys(n).some((k) => !['op', 'name', 'inputs', 'attrs'].includes(k))) return bad(what, '{ op, name?, inputs, attrs }', n);
    if (!isOpName(n.op)) return bad(what, `an op among ${Object.keys(OPS).join(', ')}`, JSON.stringify(n.op) ?? 'none');
    if (n.name !== undefined && typeof n.name !== 'string') bad(what, 'a string name', n.name);
    if (!Array.isArray(n.inputs) || n.inputs.length > 2 || !n.inputs.every((v) => isUint(v))) return bad(what, 'a list of value indices', n.inputs);
    if (!isObj(n.attrs)) return bad(what, 'an attrs object', n.attrs);
    const specs = attrSpecs(n.op);
    const attrs: Record<string, AttrValue> = {};
    for (const [k, v] of Object.entries(n.attrs)) {
      const spec = Object.hasOwn(specs, k) ? specs[k] : undefined;
      if (!spec) return bad(`${what} (${n.op})`, `attributes ${Object.keys(specs).join(', ') || '(none)'}`, `unknown attribute ${JSON.stringify(k)}`);
      if (spec.kind === 'tensor') {
        if (!isObj(v) || Object.keys(v).length !== 1 || !isUint(v.tensor) || v.tensor >= tensors.length) return bad(`${what} (${n.op}) attribute ${JSON.stringify(k)}`, `{ "tensor": index < ${tensors.length} }`, v);
        attrs[k] = tensors[v.tensor as number]!;
      } else {
        if (!(typeof v === 'number' || (Array.isArray(v) && v.length <= 4 && v.every((d) => typeof d === 'number')))) return bad(`${what} (${n.op}) attribute ${JSON.stringify(k)}`, 'a number or a short list of numbers', JSON.stringify(v)?.slice(0, 80) ?? 'none');
        attrs[k] = v as number | number[];
      }
    }
    return { op: n.op, inputs: n.inputs as number[], attrs, ...(typeof n.name === 'string' ? { name: n.name } : {}) };
  });
  return {
    inputShape: (j.input as { shape: number[] }).shape,
    classes: j.classes as number,
    ...(j.labels ? { labels: j.labels as string[] } : {}),
    metadata: j.metadata as Record<string, unknown>,
    nodes,
    output: j.output as number,
  };
}

/** Copy a tensor out of the blob (little-endian on disk → host order). */
function readTensor(blob: Uint8Array, offset: number, dtype: DTypeName, size: number): TypedData {
  const out = dtype === 'f32' ? new Float32Array(size) : dtype === 'u32' ? new Uint32Array(size) : new Int8Array(size);
  const dst = new Uint8Array(out.buffer);
  dst.set(blob.subarray(offset, offset + dst.length));
  if (!LITTLE && dtype !== 'i8') for (let i = 0; i < dst.length; i += 4) { const t0 = dst[i]!, t1 = dst[i + 1]!; dst[i] = dst[i + 3]!; dst[i + 1] = dst[i + 2]!; dst[i + 2] = t1; dst[i + 3] = t0; }
  return out;
}
