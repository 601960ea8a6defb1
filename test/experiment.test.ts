import '../src/index.js';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { OnebitError } from '../src/core/errors.js';
import { parseMethods, parseSeeds } from '../src/experiment/command.js';
import { buildReport, writeReport, type ExperimentReport } from '../src/experiment/report.js';
import { planCell, readManifest, runExperiment, shellQuote, trainArgs, type TrainSettings } from '../src/experiment/runner.js';
import { meanStd } from '../src/experiment/summary.js';
import { resolveConfig } from '../src/train/config.js';
import { train, type EpochStats } from '../src/train/trainer.js';

const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');
const TINY = ['--epochs', '1', '--train-subset', '200', '--test-subset', '100', '--hidden', '32'];
const tinyTrain: TrainSettings = { epochs: 1, trainSubset: 200, testSubset: 100, hidden: 32 };
const tmp = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `onebit-exp-${name}-`));
const pct = (x: number) => (100 * x).toFixed(2);

interface Run { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Start the CLI (with --no-concurrent-recompilation, see src/cli/main.ts); `onStderr` sees stderr as it comes. */
function runCli(args: string[], onStderr?: (all: string, child: ReturnType<typeof spawn>) => void): Promise<Run> {
  return new Promise((resolve) => {
    const ch = spawn(process.execPath, ['--no-concurrent-recompilation', cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    ch.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    ch.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      onStderr?.(stderr, ch);
    });
    ch.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

const metrics = (dir: string): EpochStats[] =>
  fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as EpochStats);

/** Mean and sample std written out independently of src/experiment/summary.ts. */
function stats(v: number[]) {
  const m = v.reduce((a, b) => a + b, 0) / v.length;
  return { mean: m, std: Math.sqrt(v.reduce((a, x) => a + (x - m) ** 2, 0) / (v.length - 1)) };
}

function checkNumbers(out: string, report: ExperimentReport, methods: string[], seeds: number[]) {
  const md = fs.readFileSync(path.join(out, 'results.md'), 'utf8');
  for (const method of methods) {
    const runs = seeds.map((s) => metrics(path.join(out, `${method}-s${s}`)));
    const best = stats(runs.map((r) => Math.max(...r.map((e) => e.testAcc))));
    const last = stats(runs.map((r) => r[r.length - 1]!.testAcc));
    const ips = runs.map((r) => r.reduce((a, e) => a + e.imagesPerSec, 0) / r.length).reduce((a, b) => a + b, 0) / runs.length;
    const s = report.summary.find((x) => x.method === method)!;
    assert.deepEqual(s.seeds, seeds);
    assert.ok(Math.abs(s.bestAcc.mean - best.mean) < 1e-12 && Math.abs(s.bestAcc.std! - best.std) < 1e-12, `${method} best`);
    assert.ok(Math.abs(s.lastAcc.mean - last.mean) < 1e-12 && Math.abs(s.lastAcc.std! - last.std) < 1e-12, `${method} last`);
    assert.ok(Math.abs(s.imagesPerSec - ips) < 1e-9, `${method} images/s`);
    assert.ok(md.includes(`| ${method} | ${seeds.length} | ${runs[0]!.length} | ${pct(best.mean)} ± ${pct(best.std)} | ${pct(last.mean)} ± ${pct(last.std)} |`), `${method} row in results.md`);
  }
}

test('experiment: unit pieces — sample std, train flags, method and seed parsing, quoting', () => {
  assert.deepEqual(meanStd([1, 2, 3, 4]), { mean: 2.5, std: Math.sqrt(5 / 3), n: 4 });
  assert.equal(meanStd([0.5]).std, null);
  assert.deepEqual(trainArgs({ epochs: 3, batchSize: 64, augment: false, dataDir: '', weightDecay: 1e-4 }), ['--epochs', '3', '--batch-size', '64', '--no-augment', '--weight-decay', '0.0001']);
  assert.deepEqual(parseMethods('ste, bireal,ste'), ['ste', 'bireal']);
  assert.throws(() => parseMethods('ste,magic'), (e: Error) => e instanceof OnebitError && /--methods: expected names from .*"magic"/.test(e.message));
  assert.deepEqual(parseSeeds({ seeds: 3 }), [0, 1, 2]);
  assert.deepEqual(parseSeeds({ seeds: 3, seedList: '7,2' }), [7, 2]);
  assert.throws(() => parseSeeds({ seedList: '1,x' }), OnebitError);
  assert.equal(shellQuote('--lr'), '--lr');
  assert.equal(shellQuote("it's"), `'it'\\''s'`);
});

test('experiment: a 2 × 2 MNIST grid writes results.json / .md / report.html / plots with the right numbers', async () => {
  const out = tmp('grid');
  const r = await runCli(['experiment', '--methods', 'ste,bireal', '--seeds', '2', ...TINY, '--jobs', '2', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /\[ste s0\] epoch 1\/1 .*test acc/);
  assert.match(r.stderr, /4\/4 cells finished/);
  assert.match(r.stdout, /\| method \| seeds \| epochs \| best-epoch test acc/);
  const report = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')) as ExperimentReport;
  checkNumbers(out, report, ['ste', 'bireal'], [0, 1]);
  assert.match(report.command, /^onebit experiment --methods ste,bireal --seeds 2 /);
  assert.ok(fs.readFileSync(path.join(out, 'results.md'), 'utf8').includes(report.command));

  const html = fs.readFileSync(path.join(out, 'report.html'), 'utf8');
  const stems = ['accuracy', 'loss', 'flip-rate', 'flip-layers-ste'];
  assert.equal((html.match(/<svg /g) ?? []).length, stems.length);
  assert.ok(html.includes('onebit experiment --methods ste,bireal'));
  assert.doesNotMatch(html, /<script|<link|src="http/, 'self-contained');
  for (const s of stems) {
    assert.ok(fs.existsSync(path.join(out, 'plots', `${s}.svg`)), s);
    assert.ok(report.plots.includes(`plots/${s}.svg`));
    if (report.plots.includes(`plots/${s}.png`)) assert.equal(fs.readFileSync(path.join(out, 'plots', `${s}.png`)).subarray(1, 4).toString(), 'PNG');
  }
  const manifest = readManifest(out)!;
  assert.deepEqual(manifest.cells.map((c) => `${c.method}-s${c.seed}:${c.status}:${c.attempts}`), ['ste-s0:done:1', 'bireal-s0:done:1', 'ste-s1:done:1', 'bireal-s1:done:1']);

  // --report-only without a manifest: the run folders are discovered and give the same numbers.
  fs.rmSync(path.join(out, 'experiment.json'));
  fs.rmSync(path.join(out, 'results.md'));
  const again = await runCli(['experiment', '--report-only', '--out', out]);
  assert.equal(again.code, 0, again.stderr);
  const rerendered = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')) as ExperimentReport;
  checkNumbers(out, rerendered, ['bireal', 'ste'], [0, 1]);
  fs.rmSync(out, { recursive: true, force: true });
});

test('experiment: Ctrl-C mid-grid stops cleanly; the same command then runs only the missing cells', async () => {
  const out = tmp('kill');
  const args = ['experiment', '--methods', 'ste,bireal', '--seeds', '2', ...TINY, '--epochs', '2', '--out', out];
  let sent = false;
  const first = await runCli(args, (err, ch) => {
    if (!sent && /\] done:/.test(err)) {
      sent = true;
      ch.kill('SIGINT');
    }
  });
  assert.ok(sent, first.stderr);
  assert.equal(first.code, 130, first.stderr);
  assert.match(first.stderr, /SIGINT, stopping/);
  const m1 = readManifest(out)!;
  assert.ok(m1.cells.every((c) => ['done', 'interrupted', 'pending'].includes(c.status)), JSON.stringify(m1.cells));
  const doneBefore = m1.cells.filter((c) => c.status === 'done');
  assert.ok(doneBefore.length >= 1 && doneBefore.length < 4, `${doneBefore.length} done`);
  const mtimes = new Map(doneBefore.map((c) => [c.dir, fs.statSync(path.join(out, c.dir, 'metrics.jsonl')).mtimeMs]));
  assert.ok(!fs.existsSync(path.join(out, 'results.json')), 'no report after an interruption');

  const second = await runCli(args);
  assert.equal(second.code, 0, second.stderr);
  const skipped = [...second.stderr.matchAll(/\[(\w+) s(\d)\] skip: finished/g)].map((m) => `${m[1]}-s${m[2]}`).sort();
  assert.deepEqual(skipped, doneBefore.map((c) => c.dir).sort());
  const started = [...second.stderr.matchAll(/\[(\w+) s(\d)\] (start|resume) /g)].length;
  assert.equal(started, 4 - doneBefore.length);
  for (const [dir, t] of mtimes) assert.equal(fs.statSync(path.join(out, dir, 'metrics.jsonl')).mtimeMs, t, `${dir} was retrained`);
  for (const c of readManifest(out)!.cells) {
    assert.equal(c.status, 'done');
    assert.equal(metrics(path.join(out, c.dir)).length, 2);
    if (mtimes.has(c.dir)) assert.equal(c.attempts, 1);
  }
  fs.rmSync(out, { recursive: true, force: true });
});

test('experiment: a failing cell is reported with its stderr tail and the others complete', async () => {
  const out = tmp('fail');
  // ste-s1 looks like a partial run of the same settings, but its checkpoint is garbage: the resume fails.
  const cell = path.join(out, 'ste-s1');
  fs.mkdirSync(cell, { recursive: true });
  fs.writeFileSync(path.join(cell, 'config.json'), JSON.stringify(resolveConfig({ ...tinyTrain, method: 'ste', seed: 1 })));
  fs.writeFileSync(path.join(cell, 'last.ckpt'), 'not a checkpoint at all, just some bytes to fail on');
  const log: string[] = [];
  const result = await runExperiment({ methods: ['ste', 'bireal'], seeds: [0, 1], train: tinyTrain, out, jobs: 2, log: (l) => log.push(l), handleSignals: false });
  assert.equal(result.interrupted, false);
  assert.deepEqual(result.failed.map((c) => c.dir), ['ste-s1']);
  assert.match(result.failed[0]!.error!, /last\.ckpt: expected/);
  const text = log.join('\n');
  assert.match(text, /\[ste s1\] resume /);
  assert.match(text, /\[ste s1\] FAILED \(exit 2\):\n {4}error: .*last\.ckpt: expected/);
  assert.match(text, /3\/4 cells finished, 1 failed \(ste s1\)/);
  for (const d of ['ste-s0', 'bireal-s0', 'bireal-s1']) assert.equal(metrics(path.join(out, d)).length, 1, d);

  const report = writeReport({ out, epochs: 1 });
  const ste = report.summary.find((s) => s.method === 'ste')!;
  assert.deepEqual(ste.seeds, [0]);
  assert.equal(ste.lastAcc.std, null);
  assert.equal(report.cells.find((c) => c.dir === 'ste-s1')!.status, 'failed');
  const md = fs.readFileSync(path.join(out, 'results.md'), 'utf8');
  assert.match(md, new RegExp(`\\| ste \\| 1 \\| 1 \\| ${pct(ste.bestAcc.mean)} \\| ${pct(ste.lastAcc.mean)} \\|`));
  assert.match(md, /- ste seed 1 \(ste-s1\): failed: .*last\.ckpt/);

  // An invalid train flag fails every cell (one line each), exit status 1.
  const bad = await runCli(['experiment', '--methods', 'ste', '--seeds', '1', ...TINY, '--out', path.join(out, 'bad'), '--', '--bogus']);
  assert.equal(bad.code, 1, bad.stderr);
  assert.match(bad.stderr, /\[ste s0\] FAILED \(exit 2\):\n.*unknown option '--bogus'/);
  fs.rmSync(out, { recursive: true, force: true });
});

test('experiment: partial cells resume, a torn metrics file is repaired, other settings are refused, --extend continues', async () => {
  const out = tmp('resume');
  const two: TrainSettings = { ...tinyTrain, epochs: 2 };
  // A run killed after epoch 1 of 2 (trained in-process).
  train({ ...two, method: 'ste', seed: 0 }, { outDir: path.join(out, 'ste-s0'), stopAfterEpochs: 1 });
  const epoch1 = fs.readFileSync(path.join(out, 'ste-s0', 'metrics.jsonl'), 'utf8');
  assert.equal(planCell(path.join(out, 'ste-s0'), resolveConfig({ ...two, method: 'ste', seed: 0 })).kind, 'resume');
  const log: string[] = [];
  const opts = { methods: ['ste'], seeds: [0], out, log: (l: string) => log.push(l), handleSignals: false };
  const r1 = await runExperiment({ ...opts, train: two });
  assert.equal(r1.ran, 1);
  assert.match(log.join('\n'), /\[ste s0\] resume /);
  const m = metrics(path.join(out, 'ste-s0'));
  assert.equal(m.length, 2);
  assert.ok(fs.readFileSync(path.join(out, 'ste-s0', 'metrics.jsonl'), 'utf8').startsWith(epoch1), 'epoch 1 kept');

  // Killed between the checkpoint and the metrics write: metrics.jsonl is rebuilt from last.ckpt, nothing retrains.
  fs.writeFileSync(path.join(out, 'ste-s0', 'metrics.jsonl'), epoch1);
  log.length = 0;
  const r2 = await runExperiment({ ...opts, train: two });
  assert.deepEqual([r2.ran, r2.skipped], [0, 1]);
  assert.match(log.join('\n'), /skip: finished/);
  assert.deepEqual(metrics(path.join(out, 'ste-s0')), m);

  // Other settings in the same folder: refused with the differing key; more epochs need --extend.
  const r3 = await runExperiment({ ...opts, train: { ...two, lr: 0.01 } });
  assert.match(r3.failed[0]?.error ?? '', /other settings: lr 0\.003 \(grid: 0\.01\)/);
  const r4 = await runExperiment({ ...opts, train: { ...two, epochs: 3 } });
  assert.match(r4.failed[0]?.error ?? '', /2-epoch run, but the grid asks 3 epochs\. Pass --extend/);
  log.length = 0;
  const r5 = await runExperiment({ ...opts, train: { ...two, epochs: 3 }, extend: true });
  assert.equal(r5.failed.length, 0, log.join('\n'));
  assert.match(log.join('\n'), /extend 2 → 3 epochs/);
  assert.equal(metrics(path.join(out, 'ste-s0')).length, 3);
  assert.equal(buildReport({ out }).summary[0]!.epochs, 3);
  fs.rmSync(out, { recursive: true, force: true });
});
