import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { OnebitError } from '../core/errors.js';

/**
 * The checkpoint file format (`*.ckpt`), version 1. All integers little-endian.
 *
 *   offset  size  field
 *   0       8     magic "ONEBITCK"
 *   8       4     u32 format version (1)
 *   12      4     u32 H = byte length of the JSON header
 *   16      H     header, UTF-8 JSON: { meta: {...}, blobBytes, tensors: [{ name, shape, offset, length }] }
 *   16+H    pad   zero bytes up to a multiple of 8 → blob start B
 *   B       …     tensor blob: float32 little-endian values; tensor i at B + offset_i, length_i values
 *   end−32  32    SHA-256 of every byte before it
 *
 * `meta` carries whatever the caller stores (the trainer: config, epoch, RNG state, optimizer
 * scalars, schedule, metric history). Files are written atomically: temp file in the same folder,
 * fsync, rename over the target, fsync the folder — a process killed mid-write leaves the previous
 * checkpoint intact. Loading checks size, magic, version, header, ranges and checksum before use,
 * and fails with one error naming the file and what is wrong.
 */
export interface CheckpointData {
  meta: Record<string, unknown>;
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
}

const MAGIC = 'ONEBITCK';
const VERSION = 1;
const HASH_BYTES = 32;

export function encodeCheckpoint(ck: CheckpointData): Buffer {
  const index: { name: string; shape: number[]; offset: number; length: number }[] = [];
  let blobBytes = 0;
  for (const [name, t] of ck.tensors) {
    index.push({ name, shape: t.shape, offset: blobBytes, length: t.data.length });
    blobBytes += t.data.length * 4;
  }
  const header = Buffer.from(JSON.stringify({ meta: ck.meta, blobBytes, tensors: index }), 'utf8');
  const blobStart = align8(16 + header.length);
  const total = blobStart + blobBytes + HASH_BYTES;
  const buf = Buffer.alloc(total);
  buf.write(MAGIC, 0, 'latin1');
  buf.writeUInt32LE(VERSION, 8);
  buf.writeUInt32LE(header.length, 12);
  header.copy(buf, 16);
  const blob = new Float32Array(buf.buffer, buf.byteOffset + blobStart, blobBytes / 4); // blobStart is 8-aligned
  for (const [i, [, t]] of [...ck.tensors].entries()) blob.set(t.data, index[i]!.offset / 4);
  createHash('sha256').update(buf.subarray(0, total - HASH_BYTES)).digest().copy(buf, total - HASH_BYTES);
  return buf;
}

export function decodeCheckpoint(buf: Uint8Array, file = 'checkpoint'): CheckpointData {
  const bad = (expected: string, got: string, hint = ''): never => {
    throw new OnebitError(`${file}: expected ${expected}, but got ${got}.${hint ? ' ' + hint : ''}`);
  };
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < 16 + HASH_BYTES) bad(`an onebit checkpoint of at least ${16 + HASH_BYTES} bytes`, `${b.length} bytes`, 'The file is empty or truncated.');
  if (b.toString('latin1', 0, 8) !== MAGIC) bad(`the magic bytes "${MAGIC}"`, JSON.stringify(b.toString('latin1', 0, 8)), 'This is not an onebit checkpoint.');
  const version = b.readUInt32LE(8);
  if (version !== VERSION) bad(`checkpoint format version ${VERSION}`, `version ${version}`, 'It was written by another onebit version.');
  const h = b.readUInt32LE(12);
  if (16 + h + HASH_BYTES > b.length) bad(`a ${h}-byte header inside a ${b.length}-byte file`, 'a shorter file', 'The file is truncated.');
  let header: { meta?: unknown; blobBytes?: unknown; tensors?: unknown };
  try {
    header = JSON.parse(b.toString('utf8', 16, 16 + h));
  } catch {
    return bad('a JSON header', 'unparseable bytes', 'The file is corrupted.');
  }
  const blobBytes = header.blobBytes;
  if (typeof blobBytes !== 'number' || !Number.isInteger(blobBytes) || blobBytes < 0 || blobBytes % 4) bad('a valid blob size', String(blobBytes));
  const blobStart = align8(16 + h);
  const total = blobStart + (blobBytes as number) + HASH_BYTES;
  if (b.length !== total) {
    bad(`${total} bytes`, `${b.length}`, b.length < total ? 'The file is truncated (was the process killed while writing it?).' : 'The file has trailing bytes.');
  }
  const digest = createHash('sha256').update(b.subarray(0, total - HASH_BYTES)).digest();
  if (!digest.equals(b.subarray(total - HASH_BYTES))) bad('a matching SHA-256 checksum', 'a mismatch', 'The file is corrupted.');
  if (!header.meta || typeof header.meta !== 'object' || !Array.isArray(header.tensors)) bad('a header with meta and tensors', 'neither');
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const e of header.tensors as { name?: unknown; shape?: unknown; offset?: unknown; length?: unknown }[]) {
    const ok =
      typeof e.name === 'string' && Array.isArray(e.shape) && e.shape.every((d) => Number.isInteger(d) && d >= 0) &&
      Number.isInteger(e.offset) && Number.isInteger(e.length) && (e.offset as number) >= 0 && (e.offset as number) % 4 === 0 &&
      (e.length as number) === (e.shape as number[]).reduce((x, y) => x * y, 1) &&
      (e.offset as number) + (e.length as number) * 4 <= (blobBytes as number);
    if (!ok) bad('tensor entries within the blob', JSON.stringify(e).slice(0, 200));
    const start = b.byteOffset + blobStart + (e.offset as number);
    const data = new Float32Array((e.length as number));
    data.set(new Float32Array(b.buffer.slice(start, start + data.length * 4)));
    tensors.set(e.name as string, { shape: e.shape as number[], data });
  }
  return { meta: header.meta as Record<string, unknown>, tensors };
}

/** Write atomically: temp file + fsync + rename + fsync of the folder. */
export function saveCheckpoint(file: string, ck: CheckpointData): void {
  writeFileAtomic(file, encodeCheckpoint(ck));
}

export function loadCheckpoint(file: string): CheckpointData {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new OnebitError(`${file}: expected a readable checkpoint file, but got ${(e as NodeJS.ErrnoException).code ?? String(e)}. Check the path.`);
  }
  return decodeCheckpoint(bytes, file);
}

export function writeFileAtomic(file: string, bytes: Uint8Array | string): void {
  const dir = path.dirname(path.resolve(file));
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeFileSync(fd, bytes);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  try {
    const dfd = fs.openSync(dir, 'r');
    fs.fsyncSync(dfd);
    fs.closeSync(dfd);
  } catch {
    // Some platforms cannot fsync a directory; the rename itself is still atomic.
  }
}

function align8(n: number): number {
  return (n + 7) & ~7;
}
