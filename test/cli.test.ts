import '../src/index.js';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');
// --no-concurrent-recompilation as in the CLI's shebang (Node 20 exit deadlock, see src/cli/main.ts).
const run = (...args: string[]) => spawnSync(process.execPath, ['--no-concurrent-recompilation', cli, ...args], { encoding: 'utf8' });

test('cli: --help documents every train flag', () => {
  const r = run('train', '--help');
  assert.equal(r.status, 0);
  for (const flag of ['--dataset', '--arch', '--method', '--epochs', '--batch-size', '--lr', '--optimizer', '--seed', '--out', '--resume']) {
    assert.ok(r.stdout.includes(flag), `missing ${flag}`);
  }
});

test('cli: bad flags and values → one clear error, exit status 2', () => {
  for (const args of [
    ['train', '--bogus'],
    ['train', '--epochs', 'ten'],
    ['train', '--arch', 'transformer'],
    ['train', '--method', 'magic'],
    ['train', '--lr', '-1', '--train-subset', '10'],
    ['eval', '/nonexistent.ckpt'],
    ['frobnicate'],
  ]) {
    const r = run(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: status ${r.status}, stderr ${r.stderr}`);
    assert.match(r.stderr, /error/i, args.join(' '));
    assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, `stack trace for ${args.join(' ')}`);
  }
});

test('cli: train prints per-epoch lines with test acc and flip, then eval reads the checkpoint', () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'onebit-cli-'));
  const r = run('train', '--epochs', '2', '--hidden', '16', '--lr', '0.02', '--train-subset', '300', '--test-subset', '200', '--out', out, '--no-progress');
  assert.equal(r.status, 0, r.stderr);
  const epochLines = r.stdout.split('\n').filter((l) => l.startsWith('epoch '));
  assert.equal(epochLines.length, 2);
  for (const l of epochLines) assert.match(l, /test acc \d+\.\d\d%.*flip \d\.\d\de-\d/);
  assert.match(r.stdout, /done: .*final test acc \d+\.\d\d%.*flip \d\.\d\de-\d/);
  const again = run('train', '--epochs', '2', '--out', out);
  assert.equal(again.status, 2);
  assert.match(again.stderr, /--resume/);
  const resumed = run('train', '--resume', out, '--epochs', '3', '--no-progress');
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stdout, /resuming after epoch 2/);
  assert.match(resumed.stdout, /epoch 3\/3/);
  const e = run('eval', path.join(out, 'last.ckpt'));
  assert.equal(e.status, 0, e.stderr);
  assert.match(e.stdout, /epoch 3: test acc \d+\.\d\d%/);
  fs.rmSync(out, { recursive: true, force: true });
});

test('cli: --resume of a run folder stopped before its first checkpoint starts it over from config.json', () => {
  const args = ['--epochs', '2', '--hidden', '16', '--lr', '0.02', '--train-subset', '300', '--test-subset', '200', '--no-progress', '--seed', '5'];
  const full = fs.mkdtempSync(path.join(os.tmpdir(), 'onebit-cli-'));
  assert.equal(run('train', ...args, '--out', full).status, 0);
  // What a kill inside epoch 1 leaves: config.json only.
  const early = fs.mkdtempSync(path.join(os.tmpdir(), 'onebit-cli-'));
  fs.copyFileSync(path.join(full, 'config.json'), path.join(early, 'config.json'));
  const r = run('train', '--resume', early, '--no-progress');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /no checkpoint yet .*starting it over/);
  assert.match(r.stdout, /epoch 2\/2/);
  const losses = (dir: string) => fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).loss);
  assert.deepEqual(losses(early), losses(full));
  assert.ok(fs.existsSync(path.join(early, 'last.ckpt')));
  // A folder with metrics but no checkpoint is not started over (its metrics would be lost): the usual error.
  const noCkpt = fs.mkdtempSync(path.join(os.tmpdir(), 'onebit-cli-'));
  for (const f of ['config.json', 'metrics.jsonl']) fs.copyFileSync(path.join(full, f), path.join(noCkpt, f));
  const bad = run('train', '--resume', noCkpt, '--no-progress');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /last\.ckpt: expected a readable checkpoint file/);
  // A broken config.json: one clear error naming it.
  const broken = fs.mkdtempSync(path.join(os.tmpdir(), 'onebit-cli-'));
  fs.writeFileSync(path.join(broken, 'config.json'), '{"epochs": 2,');
  const b = run('train', '--resume', broken, '--no-progress');
  assert.equal(b.status, 2);
  assert.match(b.stderr, /config\.json to hold the run's JSON config/);
  assert.doesNotMatch(b.stderr, /at .*\.js:\d+/);
  for (const d of [full, early, noCkpt, broken]) fs.rmSync(d, { recursive: true, force: true });
});

test('cli: SIGKILL mid-run, then --resume, gives the same per-epoch losses as an uninterrupted run', async () => {
  const args = ['--epochs', '4', '--hidden', '32', '--lr', '0.01', '--train-subset', '2000', '--test-subset', '200', '--no-progress', '--seed', '3'];
  const full = fs.mkdtempSync(path.join(os.tmpdir(), 'onebit-cli-'));
  assert.equal(run('train', ...args, '--out', full).status, 0);
  const killed = fs.mkdtempSync(path.join(os.tmpdir(), 'onebit-cli-'));
  const child = spawn(process.execPath, ['--no-concurrent-recompilation', cli, 'train', ...args, '--out', killed], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  await new Promise<void>((resolve) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('epoch 2/4')) resolve();
    });
  });
  child.kill('SIGKILL'); // somewhere in epoch 3 (possibly while saving)
  await new Promise((r) => child.once('exit', r));
  const resumed = run('train', '--resume', killed, '--no-progress');
  assert.equal(resumed.status, 0, resumed.stderr);
  const losses = (dir: string) => fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).loss);
  assert.equal(losses(full).length, 4);
  assert.deepEqual(losses(killed), losses(full));
  for (const d of [full, killed]) fs.rmSync(d, { recursive: true, force: true });
});
