/**
 * The experiment grid: methods × seeds, one `onebit train` child process per cell, `jobs` at a time,
 * one run folder per cell (`<out>/<method>-s<seed>`). Resumable: a finished cell (metrics.jsonl has
 * every epoch) is skipped, a partial one continues with `--resume`, and a failed one is reported
 * (stderr tail in the log) without stopping the others. SIGINT/SIGTERM stop the children and leave
 * every folder resumable; running the same command again finishes only what is missing.
 *
 * `<out>/experiment.json` (the manifest) records the grid, the command lines that ran it and each
 * cell's status, attempts and wall time. Progress goes to the `log` callback (stderr by default).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { fail } from '../core/errors.js';
import { methodNames } from '../models/methods.js';
import { loadCheckpoint, writeFileAtomic } from '../train/checkpoint.js';
import { resolveConfig, type TrainConfig } from '../train/config.js';
import type { EpochStats } from '../train/trainer.js';
import { isComplete, readMetrics, readRunConfig } from './summary.js';

/** Train settings shared by every cell; only the given ones are passed on (the rest: `onebit train`'s defaults). */
export type TrainSettings = Partial<Omit<TrainConfig, 'method' | 'seed'>>;

export interface ExperimentOptions {
  methods: string[];
  seeds: number[];
  train: TrainSettings;
  /** Further `onebit train` flags, appended verbatim to every fresh run (not to resumed ones). */
  extraArgs?: string[];
  /** Folder of the run folders and the manifest. */
  out: string;
  /** Cells trained at the same time (default 1). Each child gets ONEBIT_THREADS = CPUs / jobs unless set. */
  jobs?: number;
  /** Continue finished runs that have fewer epochs than asked (their LR schedule then stretches). */
  extend?: boolean;
  /** The command line recorded in the manifest and the report. */
  command?: string;
  /** Progress sink (default: stderr). */
  log?: (line: string) => void;
  /** Stop the children on SIGINT/SIGTERM (default true). */
  handleSignals?: boolean;
}

export type CellStatus = 'pending' | 'running' | 'done' | 'failed' | 'interrupted';

export interface CellRecord {
  method: string;
  seed: number;
  /** Run folder, relative to the experiment folder. */
  dir: string;
  status: CellStatus;
  /** `onebit train` processes started for this cell, over all invocations. */
  attempts: number;
  /** Wall time of those processes, seconds. */
  wallSeconds: number;
  /** Why the last attempt failed (stderr tail). */
  error?: string;
}

export interface Manifest {
  kind: 'onebit-experiment';
  version: 1;
  created: string;
  updated: string;
  /** The latest command line that finished cells; `commands` holds every invocation. */
  command: string;
  commands: string[];
  /** Methods and seeds of every invocation so far (a grid may grow); `train`, `extraArgs`, `jobs`: the latest. */
  methods: string[];
  seeds: number[];
  train: TrainSettings;
  extraArgs: string[];
  jobs: number;
  cells: CellRecord[];
}

export interface ExperimentResult {
  manifest: Manifest;
  /** Cells trained (fully or partly) by this invocation. */
  ran: number;
  /** Cells found finished and skipped. */
  skipped: number;
  failed: CellRecord[];
  interrupted: boolean;
}

/** What a cell needs: nothing, a fresh run, a resume, or a stop because its folder holds another run. */
export type CellPlan =
  | { kind: 'skip' }
  | { kind: 'fresh' }
  | { kind: 'resume'; fromEpochs?: number }
  | { kind: 'conflict'; message: string };

export const MANIFEST = 'experiment.json';
const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'cli', 'main.js');

/** Run-folder name of a cell. */
export const cellDir = (method: string, seed: number) => `${method}-s${seed}`;

const kebab = (s: string) => s.replace(/[A-Z]/g, (m) => '-' + m.toLowerCase());
const camel = (s: string) => s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** `onebit train` flags for the given settings (`augment: false` → --no-augment; empty data dir left out). */
export function trainArgs(train: TrainSettings): string[] {
  const args: string[] = [];
  for (const [k, v] of Object.entries(train)) {
    if (v === undefined || v === '') continue;
    if (typeof v === 'boolean') {
      if (!v) args.push(`--no-${kebab(k)}`);
    } else args.push(`--${kebab(k)}`, String(v));
  }
  return args;
}

/** Decide what a cell's folder needs so that it ends up a finished run of `expected`. */
export function planCell(dir: string, expected: TrainConfig, extend = false, extraArgs: readonly string[] = []): CellPlan {
  const cfg = readRunConfig(dir);
  const hasCkpt = fs.existsSync(path.join(dir, 'last.ckpt'));
  if (cfg && hasCkpt) {
    // Settings given as extra flags are not in `expected`; keys an older onebit did not store are skipped.
    const unknown = new Set(extraArgs.filter((a) => a.startsWith('--')).map((a) => camel(a.replace(/^--(no-)?/, '').split('=')[0]!)));
    const diff = (Object.keys(expected) as (keyof TrainConfig)[])
      .filter((k) => k !== 'epochs' && k !== 'dataDir' && !unknown.has(k) && k in cfg && JSON.stringify(cfg[k]) !== JSON.stringify(expected[k]))
      .map((k) => `${k} ${JSON.stringify(cfg[k])} (grid: ${JSON.stringify(expected[k])})`);
    if (diff.length) {
      return { kind: 'conflict', message: `${dir} holds a run with other settings: ${diff.join(', ')}. Use another --out, or delete the folder to retrain it.` };
    }
    const have = cfg.epochs ?? expected.epochs;
    if (have > expected.epochs) {
      return { kind: 'conflict', message: `${dir} holds a ${have}-epoch run, but the grid asks ${expected.epochs} epochs. Use another --out, or delete the folder to retrain it.` };
    }
    if (have < expected.epochs) {
      if (!extend) {
        return { kind: 'conflict', message: `${dir} holds a ${have}-epoch run, but the grid asks ${expected.epochs} epochs. Pass --extend to continue it (its LR schedule then stretches to ${expected.epochs} epochs), or use another --out.` };
      }
      return { kind: 'resume', fromEpochs: have };
    }
  }
  const epochs = readMetrics(dir);
  if (cfg && hasCkpt && isComplete({ method: '', seed: 0, dir, config: cfg, epochs }, expected.epochs)) return { kind: 'skip' };
  return hasCkpt && cfg ? { kind: 'resume' } : { kind: 'fresh' };
}

/** Read `<out>/experiment.json`, or null when there is none. */
export function readManifest(out: string): Manifest | null {
  const file = path.join(out, MANIFEST);
  if (!fs.existsSync(file)) return null;
  try {
    const m = JSON.parse(fs.readFileSync(file, 'utf8')) as Manifest;
    if (m.kind !== 'onebit-experiment') throw new Error(`kind ${JSON.stringify(m.kind)}`);
    return m;
  } catch (e) {
    return fail(file, 'an onebit experiment manifest', (e as Error).message, 'Delete it to start a new manifest (the run folders are kept).');
  }
}

/** If a run's checkpoint has more epochs than metrics.jsonl (killed between the two writes), rewrite metrics.jsonl from it. */
function repairMetrics(dir: string): void {
  const ckpt = path.join(dir, 'last.ckpt');
  if (!fs.existsSync(ckpt)) return;
  let history: EpochStats[] | undefined;
  try {
    history = (loadCheckpoint(ckpt).meta as { history?: EpochStats[] }).history;
  } catch {
    return; // a damaged checkpoint: the resume attempt reports it
  }
  if (Array.isArray(history) && history.length > readMetrics(dir).length) {
    writeFileAtomic(path.join(dir, 'metrics.jsonl'), history.map((h) => JSON.stringify(h)).join('\n') + '\n');
  }
}

function validate(opts: ExperimentOptions): void {
  if (!opts.methods.length) fail('--methods', 'at least one method', 'none');
  for (const m of opts.methods) if (!methodNames().includes(m)) fail('--methods', `methods from ${methodNames().join(', ')}`, JSON.stringify(m));
  if (!opts.seeds.length) fail('--seeds', 'at least one seed', 'none');
  for (const s of opts.seeds) if (!Number.isInteger(s) || s < 0) fail('--seeds', 'non-negative integer seeds', String(s));
  const jobs = opts.jobs ?? 1;
  if (!Number.isInteger(jobs) || jobs < 1) fail('--jobs', 'a positive integer', String(jobs));
  if (fs.existsSync(opts.out) && !fs.statSync(opts.out).isDirectory()) fail('--out', 'a folder', `the file ${opts.out}`);
}

/**
 * Run the grid (seed-major, so an interrupted grid has every method's first seeds), skipping
 * finished cells. Resolves when every cell has finished or failed, or after an interruption;
 * invalid settings throw before anything starts.
 */
export async function runExperiment(opts: ExperimentOptions): Promise<ExperimentResult> {
  validate(opts);
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const jobs = opts.jobs ?? 1;
  const extraArgs = opts.extraArgs ?? [];
  const expected = new Map<string, TrainConfig>();
  for (const method of opts.methods) for (const seed of opts.seeds) expected.set(cellDir(method, seed), resolveConfig({ ...opts.train, method, seed }));

  fs.mkdirSync(opts.out, { recursive: true });
  const prev = readManifest(opts.out);
  const now = new Date().toISOString();
  const command = opts.command ?? ['onebit', ...process.argv.slice(2)].map(shellQuote).join(' ');
  const cells: CellRecord[] = opts.seeds.flatMap((seed) =>
    opts.methods.map((method) => {
      const old = prev?.cells.find((c) => c.method === method && c.seed === seed);
      return { method, seed, dir: cellDir(method, seed), status: 'pending' as CellStatus, attempts: old?.attempts ?? 0, wallSeconds: old?.wallSeconds ?? 0 };
    }),
  );
  // Cells of earlier invocations outside this grid stay in the manifest (and so in the report).
  const kept = prev?.cells.filter((c) => !(opts.methods.includes(c.method) && opts.seeds.includes(c.seed))) ?? [];
  const manifest: Manifest = {
    kind: 'onebit-experiment', version: 1, created: prev?.created ?? now, updated: now, command,
    commands: [...(prev?.commands ?? []), command],
    methods: [...new Set([...(prev?.methods ?? []), ...opts.methods])],
    seeds: [...new Set([...(prev?.seeds ?? []), ...opts.seeds])],
    train: opts.train, extraArgs, jobs, cells: [...cells, ...kept],
  };
  const save = () => {
    manifest.updated = new Date().toISOString();
    writeFileAtomic(path.join(opts.out, MANIFEST), JSON.stringify(manifest, null, 2) + '\n');
  };

  const plans = new Map<CellRecord, CellPlan>();
  for (const c of cells) {
    const dir = path.join(opts.out, c.dir);
    let plan = planCell(dir, expected.get(c.dir)!, opts.extend, extraArgs);
    if (plan.kind === 'resume') {
      repairMetrics(dir); // a run killed between its checkpoint and metrics writes may already be complete
      const again = planCell(dir, expected.get(c.dir)!, opts.extend, extraArgs);
      if (again.kind === 'skip') plan = again;
    }
    plans.set(c, plan);
    if (plan.kind === 'skip') c.status = 'done';
    if (plan.kind === 'conflict') Object.assign(c, { status: 'failed', error: plan.message });
  }
  const todo = cells.filter((c) => c.status === 'pending');
  const skipped = cells.filter((c) => c.status === 'done').length;
  log(`experiment: ${opts.methods.length} method(s) × ${opts.seeds.length} seed(s) = ${cells.length} cells in ${opts.out}: ` +
    `${skipped} finished, ${todo.length} to run, ${jobs} at a time`);
  for (const c of cells) {
    const plan = plans.get(c)!;
    if (plan.kind === 'skip') log(`[${tag(c)}] skip: finished`);
    if (plan.kind === 'conflict') log(`[${tag(c)}] FAILED: ${plan.message}`);
  }
  save();

  const children = new Set<ChildProcess>();
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) {
      for (const ch of children) ch.kill('SIGKILL');
      return;
    }
    interrupted = true;
    log(`experiment: ${sig}, stopping ${children.size} run(s); run the same command again to resume`);
    for (const ch of children) ch.kill('SIGTERM');
  };
  const handle = opts.handleSignals ?? true;
  if (handle) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  const threads = process.env.ONEBIT_THREADS ?? String(Math.max(1, Math.floor(os.availableParallelism() / jobs)));

  const runCell = async (c: CellRecord, index: number): Promise<void> => {
    const dir = path.join(opts.out, c.dir);
    const plan = plans.get(c)!;
    const exp = expected.get(c.dir)!;
    const args = plan.kind === 'resume'
      ? ['train', '--resume', dir, '--epochs', String(exp.epochs), '--no-progress']
      : ['train', '--method', c.method, '--seed', String(c.seed), ...trainArgs(opts.train), ...extraArgs, '--out', dir, '--force', '--no-progress'];
    const how = plan.kind === 'resume' ? (plan.fromEpochs ? `extend ${plan.fromEpochs} → ${exp.epochs} epochs` : 'resume') : 'start';
    log(`[${tag(c)}] ${how} (${index + 1}/${todo.length}) → ${dir}`);
    c.status = 'running';
    c.attempts++;
    delete c.error;
    save();
    const t0 = performance.now();
    const { code, signal, stderr } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => {
      const ch = spawn(process.execPath, ['--no-concurrent-recompilation', CLI, ...args], {
        env: { ...process.env, ONEBIT_THREADS: threads },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.add(ch);
      let err = '';
      readline.createInterface({ input: ch.stdout! }).on('line', (l) => {
        if (l.startsWith('epoch ') || l.startsWith('nothing to do')) log(`[${tag(c)}] ${l}`);
      });
      ch.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
      ch.on('error', (e) => (err += `\n${e.message}`));
      ch.on('close', (code, signal) => {
        children.delete(ch);
        resolve({ code, signal, stderr: err });
      });
    });
    c.wallSeconds += (performance.now() - t0) / 1000;
    const killed = signal === 'SIGINT' || signal === 'SIGTERM' || signal === 'SIGKILL';
    if (code === 0) {
      const complete = () => isComplete({ method: c.method, seed: c.seed, dir, config: exp, epochs: readMetrics(dir) }, exp.epochs);
      if (!complete()) repairMetrics(dir);
      const epochs = readMetrics(dir);
      if (complete()) {
        c.status = 'done';
        const best = Math.max(...epochs.map((e) => e.testAcc));
        log(`[${tag(c)}] done: last test acc ${pct(epochs[epochs.length - 1]!.testAcc)}, best ${pct(best)} (${c.wallSeconds.toFixed(1)} s)`);
      } else {
        c.status = 'failed';
        c.error = `onebit train exited 0 but ${path.join(dir, 'metrics.jsonl')} has ${epochs.length} of ${exp.epochs} epochs`;
        log(`[${tag(c)}] FAILED: ${c.error}`);
      }
    } else if (interrupted || killed) {
      c.status = 'interrupted';
      log(`[${tag(c)}] interrupted (${signal ?? `exit ${code}`}); resumable`);
    } else {
      c.status = 'failed';
      const tail = stderr.trim().split('\n').slice(-15);
      c.error = tail.join('\n');
      log(`[${tag(c)}] FAILED (${signal ?? `exit ${code}`}):\n${tail.map((l) => `    ${l}`).join('\n')}`);
    }
    save();
  };

  const queue = todo.map((c, i) => [c, i] as const);
  try {
    await Promise.all(Array.from({ length: Math.min(jobs, queue.length) }, async () => {
      while (!interrupted) {
        const next = queue.shift();
        if (!next) break;
        await runCell(...next);
      }
    }));
  } finally {
    if (handle) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }
  // An invocation that finished nothing (e.g. every cell refused its folder) does not become "the" command of the results.
  if (prev && !cells.some((c) => c.status === 'done')) manifest.command = prev.command;
  save();
  const failed = cells.filter((c) => c.status === 'failed');
  const done = cells.filter((c) => c.status === 'done').length;
  log(`experiment: ${done}/${cells.length} cells finished` +
    (failed.length ? `, ${failed.length} failed (${failed.map(tag).join(', ')})` : '') +
    (interrupted ? ', interrupted' : ''));
  return { manifest, ran: todo.length - queue.length, skipped, failed, interrupted };
}

const tag = (c: { method: string; seed: number }) => `${c.method} s${c.seed}`;
const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

/** Quote a command-line word for a POSIX shell when it needs it. */
export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
