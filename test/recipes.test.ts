import '../src/index.js';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tensor } from '../src/core/tensor.js';
import { backward } from '../src/autograd/tape.js';
import { distillationLoss } from '../src/nn/losses.js';
import { BinaryLinear } from '../src/nn/binary.js';
import { DEFAULT_CONFIG, RECIPES, resolveConfig, type TrainConfig } from '../src/train/config.js';
import { loadCheckpoint, saveCheckpoint } from '../src/train/checkpoint.js';
import { loadTeacher, teacherLogits, trainingLoss } from '../src/train/distill.js';
import { initFromCheckpoint, type InitFromReport } from '../src/train/init_from.js';
import { loadTrainedModel, setup, train } from '../src/train/trainer.js';
import { manualSeed } from '../src/core/rng.js';
import { methodPreset } from '../src/models/methods.js';
import { resnet20 } from '../src/models/resnet20.js';
import { formatInitFrom } from '../src/cli/commands.js';
import { assertClose } from './util/gradcheck.js';

const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');
const run = (...args: string[]) => spawnSync(process.execPath, ['--no-concurrent-recompilation', cli, ...args], { encoding: 'utf8' });
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'onebit-recipes-'));
const CIFAR_DIR = '/work/shared/datasets/cifar-10-batches-bin';
// Tiny MNIST runs: 200 images, batch 50, a 16-wide MLP.
const tiny: Partial<TrainConfig> = { epochs: 2, batchSize: 50, hidden: 16, trainSubset: 200, testSubset: 100, seed: 3 };
const losses = (h: { loss: number }[]) => h.map((e) => e.loss);

// ---------------------------------------------------------------- recipes

test('recipes: fill in only what is not given; binarize picks ReActNet\'s step weight decay', () => {
  assert.deepEqual(resolveConfig({}), { ...DEFAULT_CONFIG });
  assert.deepEqual(resolveConfig({ recipe: 'default' }), { ...DEFAULT_CONFIG });
  const a = resolveConfig({ recipe: 'adabin-cifar' });
  assert.deepEqual(
    [a.dataset, a.arch, a.optimizer, a.momentum, a.lr, a.weightDecay, a.schedule, a.batchSize, a.epochs],
    ['cifar10', 'resnet20', 'sgd', 0.9, 0.1, 1e-4, 'cosine', 128, 400],
  );
  // explicit values win, one by one
  const b = resolveConfig({ recipe: 'adabin-cifar', lr: 0.05, epochs: 3, dataset: 'mnist', weightDecay: 0, arch: 'cnn' });
  assert.deepEqual([b.lr, b.epochs, b.dataset, b.weightDecay, b.arch, b.optimizer, b.batchSize], [0.05, 3, 'mnist', 0, 'cnn', 'sgd', 128]);
  const s1 = resolveConfig({ recipe: 'reactnet', binarize: 'activations' });
  const s2 = resolveConfig({ recipe: 'reactnet' });
  assert.deepEqual([s1.optimizer, s1.lr, s1.schedule, s1.weightDecay, s1.kdWeight], ['adam', 1e-3, 'linear', 1e-5, 1]);
  assert.deepEqual([s2.binarize, s2.weightDecay], ['both', 0]);
  assert.equal(resolveConfig({ recipe: 'reactnet', binarize: 'activations', weightDecay: 5e-6 }).weightDecay, 5e-6);
  // A resolved config resolves to itself: the recipe is never applied twice (resume).
  for (const c of [a, b, s1, s2]) assert.deepEqual(resolveConfig(c), c);
  assert.deepEqual(Object.keys(RECIPES), ['default', 'adabin-cifar', 'reactnet']);
  assert.throws(() => resolveConfig({ recipe: 'fast' as 'default' }), /--recipe: expected one of default, adabin-cifar, reactnet, but got "fast"/);
  assert.throws(() => resolveConfig({ binarize: 'half' as 'both' }), /--binarize: expected one of both, activations, weights/);
  assert.throws(() => resolveConfig({ kdWeight: 1.5 }), /--kd-weight: expected a value in \[0, 1\]/);
  assert.throws(() => resolveConfig({ kdTemperature: 0 }), /--kd-temperature: expected a positive number/);
});

test('recipes (CLI): defaults shown in --help do not count as given; explicit flags win; config.json records all', () => {
  const out = tmp();
  const r = run('train', '--recipe', 'adabin-cifar', '--dataset', 'mnist', '--epochs', '1', '--lr', '0.05', '--hidden', '16',
    '--train-subset', '128', '--test-subset', '64', '--out', out, '--no-progress');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /sgd lr=0\.05 wd=0\.0001 cosine .*recipe=adabin-cifar/);
  const c = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')) as TrainConfig;
  assert.deepEqual(
    [c.recipe, c.dataset, c.arch, c.optimizer, c.momentum, c.lr, c.weightDecay, c.schedule, c.batchSize, c.epochs, c.binarize, c.teacher, c.initFrom],
    ['adabin-cifar', 'mnist', 'mlp', 'sgd', 0.9, 0.05, 1e-4, 'cosine', 128, 1, 'both', '', ''],
  );
  const ck = loadCheckpoint(path.join(out, 'last.ckpt')).meta as { config: TrainConfig };
  assert.deepEqual(ck.config, c);
  // --kd-weight without a teacher is a mistake, not a no-op
  const kd = run('train', '--kd-weight', '0.5', '--train-subset', '10');
  assert.equal(kd.status, 2);
  assert.match(kd.stderr, /^error: --kd-weight: expected a --teacher checkpoint to distil from, but got none/);
  fs.rmSync(out, { recursive: true, force: true });
});

test('old checkpoints: a config without the new fields loads and resumes bit-identically', () => {
  const cfg = { ...tiny, lr: 0.01 };
  const full = train(cfg, {});
  const out = tmp();
  train(cfg, { outDir: out, stopAfterEpochs: 1 });
  // Rewrite the checkpoint as an older onebit wrote it: no recipe/binarize/teacher/kd*/initFrom.
  const file = path.join(out, 'last.ckpt');
  const ck = loadCheckpoint(file);
  const meta = ck.meta as { config: Record<string, unknown> };
  for (const k of ['recipe', 'binarize', 'teacher', 'kdWeight', 'kdTemperature', 'initFrom']) delete meta.config[k];
  saveCheckpoint(file, ck);
  const { config } = loadTrainedModel(file);
  assert.deepEqual([config.recipe, config.binarize, config.teacher, config.kdWeight, config.initFrom], ['default', 'both', '', 1, '']);
  const rest = train({}, { outDir: out, resume: file });
  assert.deepEqual(losses(rest.history), losses(full.history));
  fs.rmSync(out, { recursive: true, force: true });
});

// ---------------------------------------------------------------- knowledge distillation

test('KD loss (§1.6): hand-computed values for T = 1 and 2, the CE mix, and the gradient', () => {
  const zs = tensor([1, 2, 0, 0, 0, 1], [2, 3]), zt = tensor([2, 0, 1, 1, 1, 1], [2, 3]);
  // Row 1: p_T = softmax(2, 0, 1) = (0.66524, 0.09003, 0.24473); log q_S = (1, 2, 0) − ln(e + e² + 1)
  //        = (−1.40761, −0.40761, −2.40761) → −Σ p_T·log q_S = 1.56223.
  // Row 2: p_T = (1/3, 1/3, 1/3); log q_S = (0, 0, 1) − ln(2 + e) = (−1.55144, −1.55144, −0.55144) → 1.21811.
  // mean = 1.39017 (to float precision: 1.3902076).
  assertClose(distillationLoss(zs, zt).f32(), [1.3902076214637573], 1e-6, 1e-6, 'KD T=1');
  // T = 2: T²·mean(−Σ softmax(z_T/2)·log_softmax(z_S/2)), computed the same way in double precision.
  assertClose(distillationLoss(zs, zt, { temperature: 2 }).f32(), [4.736831709278073], 1e-5, 1e-6, 'KD T=2');
  // CE with labels (1, 2): (−log q_S[0][1] − log q_S[1][2]) / 2 = (0.40761 + 0.55144) / 2 = 0.47953
  const y = Int32Array.of(1, 2);
  const opts = { kdWeight: 1, kdTemperature: 1, labelSmoothing: 0 };
  assertClose(trainingLoss(zs, y, { ...opts, teacherLogits: null }).f32(), [0.4795253391882155], 1e-6, 1e-6, 'CE');
  assertClose(trainingLoss(zs, y, { ...opts, teacherLogits: zt }).f32(), [1.3902076214637573], 1e-6, 1e-6, 'pure KD');
  assertClose(trainingLoss(zs, y, { ...opts, kdWeight: 0, teacherLogits: zt }).f32(), [0.4795253391882155], 1e-6, 1e-6, 'kdWeight 0');
  assertClose(trainingLoss(zs, y, { ...opts, kdWeight: 0.25, teacherLogits: zt }).f32(), [0.25 * 1.3902076214637573 + 0.75 * 0.4795253391882155], 1e-6, 1e-6, 'mix');
  // dKD/dz_S = (softmax(z_S) − softmax(z_T)) / N; the teacher gets no gradient.
  const s = tensor([1, 2, 0, 0, 0, 1], [2, 3]);
  s.requiresGrad = true;
  const t = tensor([2, 0, 1, 1, 1, 1], [2, 3]);
  t.requiresGrad = true;
  backward(distillationLoss(s, t));
  assertClose(s.grad!.f32(), [-0.2102562423600121, 0.28760519130222073, -0.07734894894220859, -0.06069588785812392, -0.06069588785812392, 0.1213917757162479], 1e-6, 1e-5, 'grad');
  assert.equal(t.grad, null);
});

test('KD training: a float teacher distils into a binary student; resume is bit-identical; a changed teacher is refused', () => {
  const dT = tmp();
  const teacherRun = train({ ...tiny, method: 'float', epochs: 1, lr: 0.01 }, { outDir: dT });
  assert.ok(Number.isFinite(teacherRun.history[0]!.loss));
  const tfile = path.join(dT, 'last.ckpt');
  // The teacher: eval mode, logits with no tape.
  const teacher = loadTeacher(tfile, 'mnist', loadTrainedModel);
  assert.equal(teacher.model.training, false);
  assert.equal(teacher.config.method, 'float');
  const x = tensor(new Float32Array(2 * 784).fill(0.5), [2, 1, 28, 28]);
  const zt = teacherLogits(teacher, x);
  assert.deepEqual(zt.shape, [2, 10]);
  assert.equal(zt.node, null);

  const cfg: Partial<TrainConfig> = { ...tiny, method: 'reactnet', lr: 0.01, teacher: tfile, kdWeight: 0.5, kdTemperature: 2 };
  let seen: string | null = null;
  const a = train(cfg, { callbacks: { onTeacher: (i) => (seen = i.file) } });
  assert.equal(seen, tfile);
  assert.ok(a.history.every((h) => Number.isFinite(h.loss)));
  const ce = train({ ...cfg, teacher: '' }, {});
  assert.notDeepEqual(losses(a.history), losses(ce.history)); // the teacher changes the loss
  const out = tmp();
  train(cfg, { outDir: out, stopAfterEpochs: 1 });
  const meta = loadCheckpoint(path.join(out, 'last.ckpt')).meta as { config: TrainConfig; teacherSha256: string };
  assert.equal(meta.config.teacher, tfile);
  assert.equal(meta.teacherSha256, teacher.sha256);
  const b = train({}, { outDir: out, resume: path.join(out, 'last.ckpt') });
  assert.deepEqual(losses(b.history), losses(a.history));
  // Replace the teacher file with another checkpoint: resuming must refuse, not silently distil from it.
  fs.copyFileSync(path.join(out, 'last.ckpt'), tfile);
  assert.throws(() => train({ epochs: 3 }, { outDir: out, resume: path.join(out, 'last.ckpt') }), /--resume: expected the teacher checkpoint the run started with/);
  for (const d of [dT, out]) fs.rmSync(d, { recursive: true, force: true });
});

test('bad --teacher: one clear error (missing file, not a checkpoint, another dataset; API and CLI)', () => {
  const d = tmp();
  const junk = path.join(d, 'junk.ckpt');
  fs.writeFileSync(junk, 'not a checkpoint at all, just some text that is long enough to have a header');
  assert.throws(() => train({ ...tiny, teacher: path.join(d, 'missing.ckpt') }), /^OnebitError: --teacher: .*missing\.ckpt: expected a readable checkpoint file, but got ENOENT/);
  assert.throws(() => train({ ...tiny, teacher: junk }), /^OnebitError: --teacher: .*junk\.ckpt: expected the magic bytes "ONEBITCK"/);
  // A teacher of another dataset (loader stubbed: a real CIFAR teacher would take minutes to make).
  const cifarTeacher = () => ({ config: resolveConfig({ dataset: 'cifar10' }), model: setup(resolveConfig({ ...tiny })).model });
  assert.throws(() => loadTeacher(junk, 'mnist', cifarTeacher), /--teacher: expected a checkpoint trained on mnist \(the student's dataset\), but got .*junk\.ckpt, trained on cifar10/);
  const r = run('train', '--teacher', junk, '--train-subset', '10', '--out', path.join(d, 'o'));
  assert.equal(r.status, 2);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /^error: --teacher: .*junk\.ckpt: expected the magic bytes/);
  fs.rmSync(d, { recursive: true, force: true });
});

// ---------------------------------------------------------------- two-step recipe

test('two-step: step 2 (binary weights) starts from step 1 (real weights): right tensors loaded, skipped ones reported', () => {
  const d1 = tmp(), d2 = tmp();
  // Step 1: ReActNet, binary activations, real weights (ReBNN's stage 1 too).
  const s1 = train({ ...tiny, epochs: 1, method: 'reactnet', recipe: 'reactnet', binarize: 'activations' }, { outDir: d1 });
  assert.deepEqual([s1.config.weightDecay, s1.config.optimizer, s1.config.schedule, s1.config.lr], [1e-5, 'adam', 'linear', 1e-3]);
  const bins1 = s1.model.namedModules().filter(([, m]) => m instanceof BinaryLinear).map(([, m]) => m as BinaryLinear);
  assert.deepEqual(bins1.map((b) => [b.inputQuantizer?.alias, b.kernelQuantizer?.alias]), [['rsign', 'identity'], ['rsign', 'identity']]);
  const ck1 = path.join(d1, 'last.ckpt');
  const step1 = new Map([...loadCheckpoint(ck1).tensors].filter(([n]) => n.startsWith('model.')).map(([n, t]) => [n.slice(6), t.data]));

  // Step 2 (ReBNN stage 2): binary weights with a learned scale the step-1 net does not have.
  let report: InitFromReport | null = null;
  const cfg2: Partial<TrainConfig> = { ...tiny, method: 'rebnn', recipe: 'reactnet', initFrom: ck1 };
  const s2 = train(cfg2, { stopAfterEpochs: 0, callbacks: { onInitFrom: (r) => (report = r) } });
  assert.equal(s2.config.weightDecay, 0);
  const r = report as InitFromReport | null;
  assert.ok(r);
  assert.deepEqual(r.unexpected, []);
  const binNames = s2.model.namedModules().filter(([, m]) => m instanceof BinaryLinear).map(([n]) => n);
  assert.deepEqual([...r.missing].sort(), binNames.flatMap((n) => ['initialized', 'prevSign', 's'].map((k) => `${n}.kernelQuantizer.${k}`)).sort());
  assert.equal(r.loaded.length, step1.size);
  const sd = s2.model.stateDict();
  for (const name of r.loaded) assert.deepEqual(Array.from(sd.get(name)!.f32()), Array.from(step1.get(name)!), name); // latent W, RSign b, BN, RPReLU
  // The API gives the same report; a shape mismatch or a foreign architecture fails clearly.
  const fresh = setup(resolveConfig(cfg2)).model;
  assert.deepEqual(initFromCheckpoint(fresh, ck1), r);
  assert.throws(() => initFromCheckpoint(setup(resolveConfig({ ...tiny, hidden: 32 })).model, ck1), /--init-from .*: expected tensors of the same shape as the model for every shared name, but got \d+ mismatches \(1\.weight \[16,784\] vs \[32,784\]/);

  // Step 2 trains and resumes bit-identically (the init is not re-applied on resume).
  const full = train({ ...cfg2, lr: 0.01 }, {});
  train({ ...cfg2, lr: 0.01 }, { outDir: d2, stopAfterEpochs: 1 });
  const resumed = train({}, { outDir: d2, resume: path.join(d2, 'last.ckpt') });
  assert.deepEqual(losses(resumed.history), losses(full.history));

  // CLI: the report is printed.
  const out = path.join(d2, 'cli');
  const c = run('train', '--method', 'rebnn', '--recipe', 'reactnet', '--init-from', d1, '--hidden', '16', '--epochs', '1', '--batch-size', '50',
    '--train-subset', '100', '--test-subset', '50', '--out', out, '--no-progress');
  assert.equal(c.status, 0, c.stderr);
  assert.match(c.stdout, new RegExp(`init-from ${ck1.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: loaded ${step1.size} tensors`));
  assert.match(c.stdout, /kept at initialisation \(not in the checkpoint\) 6: .*kernelQuantizer\.s/);
  assert.match(c.stdout, /ignored \(not in this model\) 0/);
  for (const d of [d1, d2]) fs.rmSync(d, { recursive: true, force: true });
});

test('init-from across presets whose layer indices differ (bireal ResNet-20 → reactnet): layers matched by position, reported', () => {
  const d = tmp();
  manualSeed(11);
  const src = resnet20(methodPreset('bireal'));
  const ck = path.join(d, 'bireal.ckpt');
  saveCheckpoint(ck, { meta: {}, tensors: new Map([...src.stateDict()].map(([n, t]) => [`model.${n}`, { shape: [...t.shape], data: Float32Array.from(t.f32()) }])) });
  const dst = resnet20(methodPreset('reactnet'));
  const r = initFromCheckpoint(dst, ck);
  // The stem's activation is layer 2 of the reactnet net: bireal's layers 2… land one index later.
  assert.deepEqual(r.renamed.slice(0, 4), [['0', '0'], ['1', '1'], ['2', '3'], ['3', '4']]);
  assert.deepEqual(r.renamed.at(-1), ['13', '14']);
  assert.deepEqual(r.unexpected, []);
  const srcSd = src.stateDict(), dstSd = dst.stateDict();
  assert.equal(r.loaded.length, srcSd.size);
  for (const [n, t] of srcSd) {
    const m = /^(\d+)(.*)$/.exec(n)!;
    const to = `${+m[1]! >= 2 ? +m[1]! + 1 : +m[1]!}${m[2]}`;
    assert.deepEqual(Array.from(dstSd.get(to)!.f32()), Array.from(t.f32()), `${n} → ${to}`);
  }
  // What stays at init: the activations and RSign thresholds the bireal net does not have.
  assert.ok(r.missing.length > 0 && r.missing.every((n) => /(^2\.|act\d|inputQuantizer\.bias)/.test(n)), r.missing.join(' '));
  assert.match(formatInitFrom(r), /layers matched by position \(checkpoint → model\): 2 → 3, 3 → 4, .*13 → 14/);
  // The other way round the reactnet layers have tensors the bireal ones lack: no silent partial
  // load, the name-mismatch error stands.
  const back = path.join(d, 'reactnet.ckpt');
  saveCheckpoint(back, { meta: {}, tensors: new Map([...dstSd].map(([n, t]) => [`model.${n}`, { shape: [...t.shape], data: Float32Array.from(t.f32()) }])) });
  assert.throws(() => initFromCheckpoint(resnet20(methodPreset('bireal')), back), /--init-from .*: expected tensors of the same shape as the model for every shared name/);
  fs.rmSync(d, { recursive: true, force: true });
});

// ---------------------------------------------------------------- CIFAR-shaped kill-and-resume

test('cli (CIFAR-10, recipe adabin-cifar): SIGKILL mid-run, then --resume, equals the uninterrupted run', { skip: !fs.existsSync(path.join(CIFAR_DIR, 'data_batch_1.bin')) && 'no CIFAR-10 files' }, async () => {
  const args = ['--dataset', 'cifar10', '--data-dir', CIFAR_DIR, '--train-subset', '256', '--test-subset', '128', '--batch-size', '64',
    '--recipe', 'adabin-cifar', '--epochs', '2', '--lr', '0.05', '--no-progress', '--seed', '4'];
  const full = tmp(), killed = tmp();
  const f = run('train', ...args, '--out', full);
  assert.equal(f.status, 0, f.stderr);
  const child = spawn(process.execPath, ['--no-concurrent-recompilation', cli, 'train', ...args, '--out', killed], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  await new Promise<void>((resolve) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('epoch 1/2')) resolve();
    });
  });
  child.kill('SIGKILL'); // in epoch 2, after epoch 1's checkpoint
  await new Promise((r) => child.once('exit', r));
  const resumed = run('train', '--resume', killed, '--no-progress');
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stdout, /resuming after epoch 1/);
  const metrics = (dir: string) => fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { loss: number; flipRate: number; testAcc: number });
  assert.equal(metrics(full).length, 2);
  for (const k of ['loss', 'flipRate', 'testAcc'] as const) assert.deepEqual(metrics(killed).map((m) => m[k]), metrics(full).map((m) => m[k]), k);
  assert.deepEqual(fs.readFileSync(path.join(killed, 'config.json'), 'utf8'), fs.readFileSync(path.join(full, 'config.json'), 'utf8'));
  for (const d of [full, killed]) fs.rmSync(d, { recursive: true, force: true });
});
