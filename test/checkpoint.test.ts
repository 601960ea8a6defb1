import '../src/index.js';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { decodeCheckpoint, encodeCheckpoint, loadCheckpoint, saveCheckpoint } from '../src/train/checkpoint.js';
import { OnebitError } from '../src/core/errors.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const sample = () => ({
  meta: { hello: 'world', epoch: 3 },
  tensors: new Map([
    ['a', { shape: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, 6) }],
    ['b', { shape: [1], data: Float32Array.of(-0.5) }],
  ]),
});

test('checkpoint: encode/decode round trip is exact', () => {
  const back = decodeCheckpoint(encodeCheckpoint(sample()));
  assert.deepEqual(back.meta, sample().meta);
  assert.deepEqual([...back.tensors.keys()], ['a', 'b']);
  assert.deepEqual(Array.from(back.tensors.get('a')!.data), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(back.tensors.get('a')!.shape, [2, 3]);
});

test('checkpoint: truncated, foreign, corrupted and wrong-version files fail with one clear error', () => {
  const buf = encodeCheckpoint(sample());
  for (const cut of [0, 10, 20, buf.length - 33, buf.length - 1]) {
    assert.throws(() => decodeCheckpoint(buf.subarray(0, cut), 'x.ckpt'), (e: Error) => e instanceof OnebitError && /x\.ckpt: expected/.test(e.message) && /truncated|magic/.test(e.message), `cut ${cut}`);
  }
  assert.throws(() => decodeCheckpoint(Buffer.from('PK\x03\x04 this is a zip file, not a checkpoint at all......................'), 'y.ckpt'), /y\.ckpt: expected the magic bytes "ONEBITCK".*not an onebit checkpoint/);
  const flipped = Buffer.from(buf);
  flipped[flipped.length - 40]! ^= 0x10;
  assert.throws(() => decodeCheckpoint(flipped), /SHA-256 checksum.*corrupted/);
  const v2 = Buffer.from(buf);
  v2.writeUInt32LE(2, 8);
  assert.throws(() => decodeCheckpoint(v2), /format version 1, but got version 2/);
  assert.throws(() => decodeCheckpoint(Buffer.concat([buf, Buffer.from([0])])), /trailing bytes/);
  assert.throws(() => loadCheckpoint('/nonexistent/dir/x.ckpt'), /expected a readable checkpoint file, but got ENOENT/);
});

test('checkpoint: every single-byte corruption or truncation is rejected with an OnebitError', () => {
  const buf = encodeCheckpoint(sample());
  for (let i = 0; i < buf.length; i += 7) {
    const c = Buffer.from(buf);
    c[i]! ^= 0xff;
    assert.throws(() => decodeCheckpoint(c), OnebitError, `flip at ${i}`);
    assert.throws(() => decodeCheckpoint(buf.subarray(0, i)), OnebitError, `cut at ${i}`);
  }
});

test('checkpoint: SIGKILL during saves always leaves a loadable previous checkpoint', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'onebit-ckpt-'));
  const file = path.join(dir, 'last.ckpt');
  for (let round = 0; round < 8; round++) {
    const child = spawn(process.execPath, [path.join(here, 'fixtures', 'ckpt_writer.js'), file], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    await new Promise((r) => setTimeout(r, 5 + round * 13));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const ck = loadCheckpoint(file); // must not throw
    const v = (ck.meta as { version: number }).version;
    assert.ok(ck.tensors.get('w')!.data.every((x) => x === v), `round ${round}: content mixes versions`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

test('saveCheckpoint writes atomically into a new folder', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'onebit-ckpt-'));
  const file = path.join(dir, 'sub', 'a.ckpt');
  saveCheckpoint(file, sample());
  assert.deepEqual(loadCheckpoint(file).meta, sample().meta);
  assert.deepEqual(fs.readdirSync(path.join(dir, 'sub')), ['a.ckpt']); // no temp file left behind
  fs.rmSync(dir, { recursive: true, force: true });
});
