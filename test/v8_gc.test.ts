import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadAddon } from '../src/backends/native/addon.js';

const index = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'index.js');

// A child that loads onebit (native backend), then allocates ~2 GB of short-lived ArrayBuffers and
// forces full GCs: with the flags set at run time the GC must still work (no crash, memory freed).
const child = `
const { backend } = await import(${JSON.stringify(index)});
console.log('backend', backend().name);
let keep = 0;
for (let i = 0; i < 256; i++) { const a = new Float32Array(2 << 20); a[i] = i; keep += a[i]; if (i % 64 === 0) globalThis.gc(); }
console.log('rss-mb', Math.round(process.memoryUsage().rss / 2 ** 20), 'sum', keep);
`;

function run(env: Record<string, string>): { out: string; err: string; status: number | null } {
  const p = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', child], {
    env: { ...process.env, ONEBIT_BACKEND: 'native', ONEBIT_DEBUG: '1', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { out: p.stdout, err: p.stderr, status: p.status };
}

test('the native backend turns V8 concurrent marking / parallel scavenges off, ONEBIT_GC_TUNE=0 keeps them, GC still works', { skip: loadAddon() ? false : 'native addon not built' }, () => {
  const on = run({});
  assert.equal(on.status, 0, on.err);
  assert.match(on.err, /V8 GC: --no-concurrent-marking --no-parallel-scavenge/);
  assert.match(on.out, /sum 32640/);
  const rss = Number(/rss-mb (\d+)/.exec(on.out)?.[1]);
  assert.ok(rss < 1024, `rss after 2 GB of garbage: ${rss} MB (the GC did not free it)`);
  const off = run({ ONEBIT_GC_TUNE: '0' });
  assert.equal(off.status, 0, off.err);
  assert.doesNotMatch(off.err, /V8 GC:/);
  assert.match(off.out, /sum 32640/);
});
