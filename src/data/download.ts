/**
 * Where CIFAR-10 lives when no --data-dir is given. (The downloader is being written; this stub
 * only resolves the cache folder.)
 */
import { homedir } from 'node:os';
import { join } from 'node:path';

/** The cache folder: $ONEBIT_CACHE/cifar-10-batches-bin, else ~/.cache/onebit/cifar-10-batches-bin. */
export function defaultCifar10Dir(): string {
  return join(process.env.ONEBIT_CACHE || join(homedir(), '.cache', 'onebit'), 'cifar-10-batches-bin');
}
