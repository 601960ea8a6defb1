import '../src/index.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { noGrad } from '../src/autograd/tape.js';
import { OnebitError } from '../src/core/errors.js';
import { manualSeed, Rng } from '../src/core/rng.js';
import { tensor } from '../src/core/tensor.js';
import { exportSafetensors, readSafetensors, saveSafetensors } from '../src/deploy/safetensors.js';
import { methodPreset, mnistModel } from '../src/models/index.js';
import { BatchNorm1d, Linear } from '../src/nn/layers.js';
import type { Module } from '../src/nn/module.js';
import { Sequential } from '../src/nn/module.js';

/** Give every parameter and buffer distinct random values (so a swapped or shifted tensor shows). */
function scramble(model: Module, seed: number): void {
  const r = new Rng(seed);
  for (const [, t] of model.stateDict()) {
    const s = t.storage as Float32Array;
    for (let i = 0; i < s.length; i++) s[i] = r.uniform(0.1, 2);
  }
}

function headerOf(bytes: Uint8Array): { n: number; json: string } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { n, json: new TextDecoder().decode(bytes.subarray(8, 8 + n)) };
}

test('safetensors: byte layout of a tiny model (header length, JSON, padding, little-endian data)', () => {
  manualSeed(1);
  const m = new Sequential(new Linear(2, 3), new BatchNorm1d(3));
  scramble(m, 2);
  const bytes = exportSafetensors(m, { arch: 'tiny', config: '{"a":1}' });
  const { n, json } = headerOf(bytes);
  assert.equal((8 + n) % 8, 0, 'data section starts 8-byte aligned');
  assert.match(json, /^\{.*\} *$/, 'JSON object, padded with spaces only');
  assert.ok(json.length - json.trimEnd().length < 8);
  const header = JSON.parse(json) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  assert.deepEqual(header.__metadata__, { format: 'pt', producer: 'onebit', arch: 'tiny', config: '{"a":1}' });
  const names = ['0.weight', '0.bias', '1.weight', '1.bias', '1.runningMean', '1.runningVar'];
  assert.deepEqual(Object.keys(header), ['__metadata__', ...names]);
  const shapes = [[3, 2], [3], [3], [3], [3], [3]];
  let off = 0;
  const sd = m.stateDict();
  names.forEach((name, i) => {
    const e = header[name]!;
    assert.equal(e.dtype, 'F32');
    assert.deepEqual(e.shape, shapes[i]);
    const len = shapes[i]!.reduce((a, b) => a * b, 1) * 4;
    assert.deepEqual(e.data_offsets, [off, off + len], `${name}: back to back, no hole`);
    const dv = new DataView(bytes.buffer, bytes.byteOffset + 8 + n + off, len);
    const want = sd.get(name)!.f32();
    for (let j = 0; j < want.length; j++) assert.equal(dv.getFloat32(4 * j, true), want[j], `${name}[${j}] little-endian float32`);
    off += len;
  });
  assert.equal(bytes.length, 8 + n + off, 'no trailing bytes');
});

test('safetensors: round trip of a model with quantizer state (reactnet cnn, rebnn mlp) restores the forward exactly', () => {
  for (const [arch, method] of [['cnn', 'reactnet'], ['mlp', 'rebnn'], ['mlp', 'adabin']] as const) {
    manualSeed(3);
    const m = mnistModel(arch, methodPreset(method), { hidden: 16 });
    const x = tensor(Array.from({ length: 2 * 784 }, (_, i) => Math.sin(i * 0.37)), [2, 1, 28, 28]);
    noGrad(() => m.eval().forward(x)); // lazily created quantizer state (ReBNN prevSign) exists after a forward
    scramble(m, 4);
    const bytes = exportSafetensors(m, { arch, method });
    const file = readSafetensors(bytes);
    assert.equal(file.metadata.method, method);
    const sd = m.stateDict();
    assert.deepEqual([...file.tensors.keys()], [...sd.keys()], 'same names, same order');
    for (const [name, t] of sd) {
      const got = file.tensors.get(name)!;
      assert.deepEqual(got.shape, t.shape, name);
      assert.deepEqual(got.f32(), t.f32(), `${name}: bit-identical`);
    }
    manualSeed(99);
    const fresh = mnistModel(arch, methodPreset(method), { hidden: 16 });
    noGrad(() => fresh.eval().forward(x));
    fresh.loadStateDict(file.tensors);
    assert.deepEqual(noGrad(() => fresh.forward(x)).f32(), noGrad(() => m.forward(x)).f32(), `${arch}/${method}: same logits after loading`);
  }
});

test('safetensors: saveSafetensors writes the file atomically (no temp file left)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'onebit-st-'));
  try {
    const m = new Sequential(new Linear(3, 2));
    const file = path.join(dir, 'model.safetensors');
    saveSafetensors(file, m, { arch: 'x' });
    assert.deepEqual(fs.readdirSync(dir), ['model.safetensors']);
    assert.deepEqual(new Uint8Array(fs.readFileSync(file)), exportSafetensors(m, { arch: 'x' }));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('safetensors: readSafetensors rejects malformed files with one clear error', () => {
  const m = new Sequential(new Linear(2, 2));
  const good = exportSafetensors(m);
  const { n, json } = headerOf(good);
  const withHeader = (h: string, data = good.subarray(8 + n)): Uint8Array => {
    const hb = new TextEncoder().encode(h);
    const out = new Uint8Array(8 + hb.length + data.length);
    new DataView(out.buffer).setBigUint64(0, BigInt(hb.length), true);
    out.set(hb, 8);
    out.set(data, 8 + hb.length);
    return out;
  };
  const h = JSON.parse(json) as Record<string, { dtype: string; data_offsets: number[] }>;
  const edit = (f: (o: typeof h) => void): string => {
    const c = structuredClone(h);
    f(c);
    return JSON.stringify(c);
  };
  const cases: [string, Uint8Array, RegExp][] = [
    ['too short', good.subarray(0, 5), /at least 8 bytes/],
    ['header past the end', good.subarray(0, 8 + n - 1), /header length/],
    ['not JSON', withHeader('{"a":'), /JSON header/],
    ['truncated data', good.subarray(0, good.length - 4), /data_offsets|tiles|covering/],
    ['unknown dtype', withHeader(edit((o) => (o['0.weight']!.dtype = 'BF16'))), /dtype F32, I32 or U8/],
    ['wrong size', withHeader(edit((o) => (o['0.weight']!.data_offsets = [0, 12]))), /16 bytes/],
    ['trailing bytes', withHeader(json, new Uint8Array([...good.subarray(8 + n), 0, 0, 0, 0])), /covering all/],
    ['overlap', withHeader(edit((o) => (o['0.bias']!.data_offsets = [8, 16])), good.subarray(8 + n, 8 + n + 16)), /overlap|tiles/],
    ['non-string metadata', withHeader(edit((o) => ((o as Record<string, unknown>).__metadata__ = { a: 1 }))), /strings/],
  ];
  for (const [what, bytes, re] of cases) {
    assert.throws(() => readSafetensors(bytes), (e: unknown) => e instanceof OnebitError && re.test(e.message), what);
  }
  assert.throws(() => exportSafetensors(m, { config: { a: 1 } as unknown as string }), /string values/);
});

/** Python 3 at /usr/bin/python3, or null. */
function python(): string | null {
  const r = spawnSync('/usr/bin/python3', ['-c', 'print(1)'], { encoding: 'utf8' });
  return r.status === 0 ? '/usr/bin/python3' : null;
}

/** Run a Python snippet with argv = [file]; returns stdout (throws with stderr on failure). */
function runPython(py: string, code: string, file: string): string {
  const r = spawnSync(py, ['-c', code, file], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`python failed: ${r.stderr}`);
  return r.stdout;
}

/** A small export (cnn reactnet) written to a temp file, with the sum and count of every tensor. */
function sampleFile(dir: string): { file: string; expect: Record<string, { shape: number[]; sum: number }> } {
  manualSeed(5);
  const m = mnistModel('cnn', methodPreset('reactnet'));
  scramble(m, 6);
  const file = path.join(dir, 'm.safetensors');
  saveSafetensors(file, m, { arch: 'cnn', method: 'reactnet', config: JSON.stringify({ hidden: 256 }) });
  const expect: Record<string, { shape: number[]; sum: number }> = {};
  for (const [name, t] of m.stateDict()) expect[name] = { shape: [...t.shape], sum: t.f32().reduce((a, b) => a + b, 0) };
  return { file, expect };
}

function checkPythonView(out: string, expect: Record<string, { shape: number[]; sum: number }>): void {
  const got = JSON.parse(out) as { metadata: Record<string, string>; tensors: Record<string, { shape: number[]; sum: number; dtype: string }> };
  assert.equal(got.metadata.method, 'reactnet');
  assert.deepEqual(JSON.parse(got.metadata.config!), { hidden: 256 });
  assert.deepEqual(Object.keys(got.tensors).sort(), Object.keys(expect).sort());
  for (const [name, e] of Object.entries(expect)) {
    const t = got.tensors[name]!;
    assert.deepEqual(t.shape, e.shape, name);
    assert.ok(Math.abs(t.sum - e.sum) <= 1e-6 * Math.max(1, Math.abs(e.sum)) * Math.sqrt(e.shape.reduce((a, b) => a * b, 1)), `${name}: sum ${t.sum} vs ${e.sum}`);
  }
}

const PY = python();
const HAS_SAFETENSORS = PY !== null && spawnSync(PY, ['-c', 'import safetensors, numpy'], { encoding: 'utf8' }).status === 0;

test('safetensors: loads in Python with the safetensors package', {
  skip: HAS_SAFETENSORS ? false : 'Python package "safetensors" (with numpy) is not importable by /usr/bin/python3; install it (pip install safetensors numpy) to run this check',
}, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'onebit-st-'));
  try {
    const { file, expect } = sampleFile(dir);
    const code = `
import sys, json
from safetensors import safe_open
out = {"tensors": {}}
with safe_open(sys.argv[1], framework="numpy") as f:
    out["metadata"] = f.metadata()
    for k in f.keys():
        a = f.get_tensor(k)
        out["tensors"][k] = {"shape": list(a.shape), "sum": float(a.astype("float64").sum()), "dtype": str(a.dtype)}
print(json.dumps(out))`;
    checkPythonView(runPython(PY!, code, file), expect);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('safetensors: an independent Python reader (struct + json, no onebit code) sees the same file', {
  skip: PY ? false : '/usr/bin/python3 is not available',
}, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'onebit-st-'));
  try {
    const { file, expect } = sampleFile(dir);
    // The format rules as the reference implementation checks them: u64 LE length, JSON, offsets
    // tiling the data section; F32 little-endian.
    const code = `
import sys, json, struct
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8+n].decode("utf-8"))
data = b[8+n:]
meta = h.pop("__metadata__")
spans = sorted(tuple(v["data_offsets"]) for v in h.values())
pos = 0
for s, e in spans:
    assert s == pos, (s, pos)
    pos = e
assert pos == len(data), (pos, len(data))
out = {"metadata": meta, "tensors": {}}
for k, v in h.items():
    assert v["dtype"] == "F32"
    s, e = v["data_offsets"]
    count = 1
    for d in v["shape"]: count *= d
    assert e - s == 4 * count
    vals = struct.unpack("<%df" % count, data[s:e])
    out["tensors"][k] = {"shape": v["shape"], "sum": float(sum(vals)), "dtype": "float32"}
print(json.dumps(out))`;
    checkPythonView(runPython(PY!, code, file), expect);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
