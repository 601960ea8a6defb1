import '../src/index.js';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { manualSeed } from '../src/core/rng.js';
import { OnebitError } from '../src/core/errors.js';
import { BinaryConv2d, BinaryLinear } from '../src/nn/binary.js';
import { BatchNorm1d, BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d } from '../src/nn/layers.js';
import { Sequential } from '../src/nn/module.js';
import { Maxout } from '../src/nn/react.js';
import { methodPreset } from '../src/models/methods.js';
import { exportModel } from '../src/deploy/export.js';
import { decodeOnebit, encodeOnebit, readOnebit, saveOnebit } from '../src/deploy/format.js';
import { loadModelSync } from '../src/infer/engine.js';

/** A tiny model that uses most ops and attributes (AdaBin: offset levels, border terms, fused thresholds). */
function tinyModelBytes(): Uint8Array {
  manualSeed(21);
  const ada = methodPreset('adabin'), re = methodPreset('reactnet');
  const model = new Sequential(
    new Conv2d(1, 2, 3, { padding: 1 }), new BatchNorm2d(2),
    new BinaryConv2d(2, 4, 3, { inputQuantizer: ada.inputQuantizer, kernelQuantizer: ada.kernelQuantizer, padding: 1 }), new BatchNorm2d(4), new Maxout(4),
    new MaxPool2d(2), new Flatten(),
    new BinaryLinear(16, 8, { inputQuantizer: re.inputQuantizer, kernelQuantizer: re.kernelQuantizer }), new BatchNorm1d(8),
    new BinaryLinear(8, 6, { inputQuantizer: re.inputQuantizer, kernelQuantizer: re.kernelQuantizer }), new BatchNorm1d(6),
    new Linear(6, 3),
  );
  return exportModel(model, { inputShape: [1, 4, 4], labels: ['a', 'b', 'c'], metadata: { note: 'fuzz' } });
}

const BYTES = tinyModelBytes();

interface Parts { header: Buffer; json: Record<string, unknown>; blob: Buffer }

/** Split a valid file into its header, JSON and blob. */
function split(bytes: Uint8Array): Parts {
  const b = Buffer.from(bytes);
  const J = b.readUInt32LE(20), B = b.readUInt32LE(24);
  return { header: b.subarray(0, 32), json: JSON.parse(b.toString('utf8', 32, 32 + J)), blob: b.subarray(B, b.length - 32) };
}

/** Rebuild a well-formed container (lengths, alignment, checksum) around any JSON text and blob. */
function container(jsonText: string, blob: Uint8Array, patch: (h: Buffer) => void = () => {}): Uint8Array {
  const text = Buffer.from(jsonText, 'utf8');
  const B = Math.ceil((32 + text.length) / 64) * 64, L = B + blob.length + 32;
  const buf = Buffer.alloc(L);
  buf.write('ONEBITNN', 0, 'latin1');
  buf.writeUInt32LE(1, 8);
  buf.writeUInt32LE(0, 12);
  buf.writeUInt32LE(L, 16);
  buf.writeUInt32LE(text.length, 20);
  buf.writeUInt32LE(B, 24);
  buf.writeUInt32LE(blob.length, 28);
  text.copy(buf, 32);
  buf.set(blob, B);
  patch(buf);
  createHash('sha256').update(buf.subarray(0, L - 32)).digest().copy(buf, L - 32);
  return buf;
}

/** The valid file with its JSON changed by `mutate` (checksum recomputed, so validation goes deeper). */
function withJson(mutate: (j: any) => void, blobMutate: (b: Buffer) => void = () => {}): Uint8Array {
  const { json, blob } = split(BYTES);
  mutate(json);
  const b = Buffer.from(blob);
  blobMutate(b);
  return container(JSON.stringify(json), b);
}

/** Decoding (and preparing the engine) must fail with exactly one OnebitError matching `re`. */
function rejects(bytes: Uint8Array, re: RegExp): void {
  assert.throws(() => loadModelSync(bytes), (e: Error) => {
    assert.ok(e instanceof OnebitError, `expected an OnebitError, got ${e.name}: ${e.message}`);
    assert.match(e.message, re);
    return true;
  });
}

test('format: round trip — decode(encode(g)) is g, re-encoding is byte-identical, files are 64-byte aligned', () => {
  const g = decodeOnebit(BYTES);
  assert.deepEqual(g.inputShape, [1, 4, 4]);
  assert.equal(g.classes, 3);
  assert.deepEqual(g.labels, ['a', 'b', 'c']);
  assert.deepEqual(g.metadata, { note: 'fuzz' });
  assert.deepEqual(Buffer.from(encodeOnebit(g)), Buffer.from(BYTES));
  const { json } = split(BYTES);
  for (const t of json.tensors as { offset: number }[]) assert.equal(t.offset % 64, 0);
  assert.equal(Buffer.from(BYTES).readUInt32LE(24) % 64, 0);
  const ops = g.nodes.map((n) => n.op);
  assert.ok(ops.includes('binary_conv2d') && ops.includes('binary_dense') && ops.includes('sign'));
  // Atomic save + read back.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'onebit-fmt-'));
  const file = path.join(dir, 'm.onebit');
  saveOnebit(file, g);
  assert.deepEqual(Buffer.from(fs.readFileSync(file)), Buffer.from(BYTES));
  assert.deepEqual(readOnebit(file).nodes.length, g.nodes.length);
  assert.deepEqual(fs.readdirSync(dir), ['m.onebit'], 'no temp file left behind');
  assert.throws(() => readOnebit(path.join(dir, 'nope.onebit')), /nope\.onebit: expected a readable \.onebit file, but got ENOENT/);
  fs.rmSync(dir, { recursive: true });
});

test('format: container rejections name what is wrong', () => {
  const b = Buffer.from(BYTES);
  rejects(new Uint8Array(0), /expected a \.onebit file of at least 64 bytes, but got 0 bytes\. The file is empty or truncated/);
  const magic = Buffer.from(b); magic.write('NOTMODEL', 0, 'latin1');
  rejects(magic, /expected the magic bytes "ONEBITNN", but got "NOTMODEL"/);
  const ck = Buffer.from(b); ck.write('ONEBITCK', 0, 'latin1');
  rejects(ck, /training checkpoint: convert it with `onebit export`/);
  const v2 = Buffer.from(b); v2.writeUInt32LE(2, 8);
  rejects(v2, /expected format version 1, but got version 2/);
  const flags = Buffer.from(b); flags.writeUInt32LE(1, 12);
  rejects(flags, /expected flags 0/);
  rejects(b.subarray(0, b.length - 1), /expected \d+ bytes \(the length in the header\), but got \d+\. The file is truncated/);
  rejects(Buffer.concat([b, Buffer.of(0)]), /trailing bytes/);
  const sum = Buffer.from(b); sum[b.readUInt32LE(24) + 3]! ^= 0x10;
  rejects(sum, /expected a matching SHA-256 checksum, but got a mismatch/);
  const { json, blob } = split(BYTES);
  rejects(container(JSON.stringify(json), blob, (h) => h.writeUInt32LE(h.readUInt32LE(20) + 64, 20)), /expected a consistent header/);
  rejects(container('{"format": "onebit-model",', blob), /expected a UTF-8 JSON graph, but got unparseable bytes/);
  rejects(container(JSON.stringify(json), blob, (h) => { h[32 + JSON.stringify(json).length] = 7; }), /zero padding after the JSON graph/);
});

test('format: graph rejections name the node, attribute or limit', () => {
  rejects(withJson((j) => { j.nodes[2].op = 'softmax'; }), /node 2: expected an op among conv2d, dense/);
  rejects(withJson((j) => { j.nodes[3].inputs = [7]; }), /node 3 \(.*\): expected input value indices in \[0, 3\].*acyclic/);
  rejects(withJson((j) => { j.nodes[0].inputs = [0, 0]; }), /node 0 \(conv2d.*\): expected 1 input\(s\), but got 2/);
  rejects(withJson((j) => { j.nodes[0].attrs.bogus = 1; }), /node 0 \(conv2d\): expected attributes .*, but got unknown attribute "bogus"/);
  rejects(withJson((j) => { delete j.nodes[0].attrs.stride; }), /node 0 \(conv2d "0"\): expected attribute "stride", but got none/);
  rejects(withJson((j) => { j.nodes[0].attrs.stride = [0, 1]; }), /attribute "stride": expected 2 integers in \[1, 4096\], but got \[0,1\]/);
  rejects(withJson((j) => { j.nodes[0].attrs.padding = [5000, 5000]; }), /attribute "padding": expected 2 integers in \[0, 4096\], but got \[5000,5000\]/);
  rejects(withJson((j) => { j.nodes[0].attrs.dilation = [100, 100]; }), /conv2d "0"\): expected a 3x3 window that fits the padded 4x4 input, but got output -194x-194/);
  rejects(withJson((j) => { j.nodes[0].attrs.weight = { tensor: 999 }; }), /attribute "weight": expected \{ "tensor": index < \d+ \}/);
  rejects(withJson((j) => { j.tensors[0].dtype = 'f64'; }), /tensor 0: expected dtype f32, u32, i8, but got "f64"/);
  rejects(withJson((j) => { j.tensors[0].shape = [1 << 30, 1 << 30]; }), /tensor 0: expected \d+ bytes at a 64-aligned offset inside the \d+-byte blob/);
  rejects(withJson((j) => { j.tensors[1].offset = 1 << 30; }), /tensor 1: expected \d+ bytes at a 64-aligned offset/);
  rejects(withJson((j) => { j.tensors[1].offset = j.tensors[0].offset; }), /tensor 1: expected an offset after the end of tensor 0/);
  rejects(withJson((j) => { j.tensors[0].shape = [2, 1, 9, 1]; j.tensors[0].bytes = 72; }), /conv2d "0"\) weight: expected shape \[Cout, 1\/1, kh, kw\]|window/);
  rejects(withJson((j) => { j.output = 1; }), /output: expected float logits \[3\] \(classes\), but got a float value of shape \[2,4,4\]/);
  rejects(withJson((j) => { j.output = 10_000; }), /output: expected a value index in \[1, \d+\]/);
  rejects(withJson((j) => { j.classes = 4; }), /output: expected float logits \[4\]/);
  rejects(withJson((j) => { j.labels = ['a']; }), /labels: expected 3 strings, but got 1 entries/);
  rejects(withJson((j) => { j.input.shape = [1 << 20, 1 << 20, 1]; }), /input shape: expected \[C, H, W\] or \[F\] of positive integers with at most 67108864 elements/);
  rejects(withJson((j) => { j.input.shape = [1, 4]; }), /input shape/);
  rejects(withJson((j) => { j.extra = true; }), /expected the keys format, input, .*, but got unknown key "extra"/);
  rejects(withJson((j) => { j.nodes = []; }), /nodes: expected an array of 1 to 65536 nodes/);
  // Binary ops: packed rows, tail bits, thresholds.
  const bc = (j: any) => j.nodes.findIndex((n: any) => n.op === 'binary_conv2d');
  rejects(withJson((j) => { j.nodes[bc(j)].attrs.pad = 1e30; }), /attribute "pad": expected a number in \[-16777216, 16777216\], but got 1e\+30/);
  rejects(withJson((j) => { j.nodes[bc(j)].attrs.pad = 'x'; }), /attribute "pad": expected a number or a short list of numbers, but got "x"/);
  rejects(withJson((j) => { delete j.nodes[bc(j)].attrs.mul; }), /expected attribute "mul", but got none/);
  rejects(withJson((j) => { j.nodes[bc(j)].attrs.kernel = [5, 5]; }), /binary_conv2d.*weight: expected shape \[Cout, 2\] \(50 bits per row\)/);
  const w = (j: any) => j.tensors[j.nodes[bc(j)].attrs.weight.tensor];
  rejects(withJson(() => {}, (blob) => {
    const { json } = split(BYTES);
    blob.writeUInt32LE(0x80000000, w(json).offset); // bit 31 of a row holding 18 bits
  }), /binary_conv2d.*weight: expected zero padding bits after bit 18 of each row, but got set bits in row 0/);
  const bd = (j: any) => j.nodes.findIndex((n: any) => n.op === 'binary_dense' && n.attrs.thr);
  rejects(withJson((j) => { delete j.nodes[bd(j)].attrs.dir; }), /expected attributes thr and dir together .*, but got thr only/);
  rejects(withJson(() => {}, (blob) => {
    const { json } = split(BYTES);
    const t = json.tensors as { offset: number }[];
    blob.writeFloatLE(NaN, t[(json.nodes as any[])[bd(json)].attrs.mul.tensor]!.offset);
  }), /attribute "mul": expected finite values, but got NaN or infinity/);
});

test('format: limits stop hostile graphs before any large allocation', () => {
  // 65 536 nodes pass the count limit but each one must still be valid; a long chain of adds is fine,
  // a chain whose live values exceed the engine's memory budget is not.
  const { json, blob } = split(BYTES);
  const big = structuredClone(json) as any;
  big.input.shape = [4096, 64, 64]; // 16 M elements, under the per-value limit
  // Nine values made first and all read at the end: 10 × 16 M live at once.
  big.nodes = [
    ...Array.from({ length: 9 }, () => ({ op: 'add', inputs: [0, 0], attrs: {} })),
    ...Array.from({ length: 8 }, (_, i) => ({ op: 'add', inputs: [i === 0 ? 1 : 9 + i, i + 2], attrs: {} })),
    { op: 'global_avg_pool', inputs: [17], attrs: {} },
  ];
  big.output = 18;
  big.classes = 4096;
  delete big.labels;
  rejects(container(JSON.stringify(big), blob), /graph: expected at most 134217728 live activation elements per sample, but got 167772160/);
  const huge = structuredClone(json) as any;
  huge.nodes = Array.from({ length: 70_000 }, () => ({ op: 'flatten', inputs: [0], attrs: {} }));
  rejects(container(JSON.stringify(huge), blob), /nodes: expected an array of 1 to 65536 nodes, but got 70000 entries/);
});

const isOnebitError = (e: unknown): boolean => e instanceof OnebitError;

/** Run `load` and require: success or an OnebitError — never another error type (RangeError, TypeError, …). */
function loadOrOnebitError(bytes: Uint8Array): void {
  try {
    const m = loadModelSync(bytes);
    m.predict(new Float32Array(m.inputShape.reduce((a, b) => a * b, 1)));
    outcomes.loaded++;
  } catch (e) {
    if (!isOnebitError(e)) throw e;
    outcomes.rejected++;
  }
}
const outcomes = { loaded: 0, rejected: 0 };

test('format fuzz: every truncation fails with an OnebitError', () => {
  for (let k = 0; k < Math.min(BYTES.length, 256); k++) assert.throws(() => loadModelSync(BYTES.subarray(0, k)), OnebitError);
  fc.assert(fc.property(fc.integer({ min: 0, max: BYTES.length - 1 }), (k) => {
    assert.throws(() => loadModelSync(BYTES.subarray(0, k)), OnebitError);
  }), { numRuns: 300 });
});

test('format fuzz: random bit flips fail with an OnebitError (the checksum catches them)', () => {
  fc.assert(fc.property(fc.integer({ min: 0, max: BYTES.length * 8 - 1 }), (bit) => {
    const b = Buffer.from(BYTES);
    b[bit >>> 3]! ^= 1 << (bit & 7);
    assert.throws(() => loadModelSync(b), OnebitError);
  }), { numRuns: 400 });
});

test('format fuzz: random headers and random bytes fail with an OnebitError', () => {
  fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 300 }), fc.boolean(), (bytes, magic) => {
    const b = Buffer.from(bytes);
    if (magic && b.length >= 8) b.write('ONEBITNN', 0, 'latin1');
    assert.throws(() => loadModelSync(b), OnebitError);
  }), { numRuns: 300 });
  // Random header fields around a valid body (lengths, offsets), checksum recomputed.
  const { json, blob } = split(BYTES);
  fc.assert(fc.property(fc.array(fc.tuple(fc.constantFrom(8, 12, 16, 20, 24, 28), fc.oneof(fc.nat(), fc.constant(0xffffffff), fc.integer({ min: 0, max: 4096 }))), { minLength: 1, maxLength: 4 }), (fields) => {
    const bytes = container(JSON.stringify(json), blob, (h) => { for (const [at, v] of fields) h.writeUInt32LE(v >>> 0, at); });
    loadOrOnebitError(bytes);
  }), { numRuns: 300 });
});

/** Every JSON path of a value (arrays and objects), for targeted mutation. */
function paths(v: unknown, prefix: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(prefix);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...prefix, i], out));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) paths(x, [...prefix, k], out);
  return out;
}

/** Seed of the fuzz runs whose outcome counts are asserted (see below). */
const FUZZ_SEED = 20261124;

test('format fuzz: random JSON edits (valid checksum) load or fail with one OnebitError — never a crash or hang', () => {
  const { json, blob } = split(BYTES);
  outcomes.loaded = outcomes.rejected = 0;
  const all = paths(json).filter((p) => p.length > 0);
  const hostile = fc.oneof(
    fc.jsonValue({ maxDepth: 2 }),
    fc.constantFrom(-1, 0, 1, 2, 3, 63, 64, 65, 2 ** 31, 2 ** 32, 2 ** 53, 1e308, -0.5, 0.5, null, true, 'x', [], {}, [1, 1], [0, 0], [1 << 20, 1 << 20], { tensor: 0 }, { tensor: -1 }),
  );
  fc.assert(fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: all.length - 1 }), hostile), { minLength: 1, maxLength: 3 }), fc.boolean(), (edits, del) => {
    const j = structuredClone(json) as any;
    for (const [pi, value] of edits) {
      const p = all[pi]!;
      let o = j;
      for (const k of p.slice(0, -1)) { o = o?.[k]; if (o === null || typeof o !== 'object') return; }
      if (del && !Array.isArray(o)) delete o[p[p.length - 1]!];
      else o[p[p.length - 1]!] = value;
    }
    const t0 = Date.now();
    loadOrOnebitError(container(JSON.stringify(j), blob));
    assert.ok(Date.now() - t0 < 2000, 'load + predict within 2 s');
  }), { numRuns: 400, seed: FUZZ_SEED });
  // A fixed seed: the property holds for any seed, but how many random edits still load varies
  // (2 of 400 in one CI run), so the non-vacuity count below is checked on a known sequence.
  assert.ok(outcomes.loaded >= 3 && outcomes.rejected > 100, `the edits reach both outcomes (${JSON.stringify(outcomes)})`);
  // Small integer edits of the geometry attributes: many stay valid, so the engine runs odd geometries.
  outcomes.loaded = outcomes.rejected = 0;
  const geo = all.filter((p) => p[0] === 'nodes' && p[2] === 'attrs' && ['stride', 'padding', 'dilation', 'kernel', 'pad', 'groups', 'outChannels'].includes(String(p[3])) &&
    typeof p.reduce((o: any, k) => o[k], json) === 'number');
  fc.assert(fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: geo.length - 1 }), fc.integer({ min: -1, max: 4 })), { minLength: 1, maxLength: 4 }), (edits) => {
    const j = structuredClone(json) as any;
    for (const [pi, value] of edits) {
      const p = geo[pi]!;
      let o = j;
      for (const k of p.slice(0, -1)) o = o[k];
      o[p[p.length - 1]!] = value;
    }
    loadOrOnebitError(container(JSON.stringify(j), blob));
  }), { numRuns: 300, seed: FUZZ_SEED });
  assert.ok(outcomes.loaded >= 5, `geometry edits that load and run: ${JSON.stringify(outcomes)}`);
  // Entirely random JSON documents.
  fc.assert(fc.property(fc.jsonValue({ maxDepth: 4 }), (v) => {
    assert.throws(() => loadModelSync(container(JSON.stringify(v) ?? 'null', blob)), OnebitError);
  }), { numRuns: 200 });
});
