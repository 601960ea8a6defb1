/**
 * CIFAR-10 in its official binary layout (https://www.cs.toronto.edu/~kriz/cifar.html,
 * `cifar-10-binary.tar.gz`): `data_batch_1.bin` … `data_batch_5.bin` (train) and `test_batch.bin`,
 * each 10,000 records of 1 label byte + 3,072 pixel bytes (1,024 red, 1,024 green, 1,024 blue;
 * 32×32 row-major planes). The record layout is already channels-first, so images are returned as
 * a view-free copy `[count, 3, 32, 32]` of bytes, ready for the DataLoader.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fail } from '../core/errors.js';
import type { Dataset } from './dataset.js';

/** Bytes per record: 1 label + 3·32·32 pixels. */
export const CIFAR10_RECORD_BYTES = 3073;
/** Records per official batch file. */
export const CIFAR10_RECORDS_PER_FILE = 10000;
/** Label order of the official release (`batches.meta.txt`). */
export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
/** Per-channel mean of the CIFAR-10 training pixels scaled to [0,1] (125.307, 122.950, 113.865 / 255). */
export const CIFAR10_MEAN = [0.4914, 0.4822, 0.4465];
/** Per-channel standard deviation of the CIFAR-10 training pixels scaled to [0,1] (62.993, 62.089, 66.705 / 255). */
export const CIFAR10_STD = [0.247, 0.2435, 0.2616];
/** The files of each split, in order. */
export const CIFAR10_FILES = {
  train: ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'],
  test: ['test_batch.bin'],
} as const;

/** Options of loadCifar10 / checkCifar10Dir. */
export interface Cifar10FileOptions {
  /**
   * Records each .bin file must hold (default 10,000, the official release). Only tests and
   * hand-made subsets change it; a real download is always checked against 10,000.
   */
  recordsPerFile?: number;
}

function recordsOf(what: string, opts: Cifar10FileOptions | undefined): number {
  const n = opts?.recordsPerFile ?? CIFAR10_RECORDS_PER_FILE;
  if (!Number.isInteger(n) || n < 1) fail(what, 'recordsPerFile a positive integer', String(n));
  return n;
}

/**
 * Check that `file` (the CIFAR-10 batch `name`) exists and holds exactly `records` records;
 * returns its size. A missing or wrongly sized file gives one error naming the file and the
 * expected size.
 */
export function checkCifar10File(what: string, file: string, name: string, records: number = CIFAR10_RECORDS_PER_FILE): number {
  const expected = CIFAR10_RECORD_BYTES * records;
  if (!existsSync(file)) {
    fail(`${what}(${file})`, `the CIFAR-10 file ${name} (${expected} bytes)`, 'no such file',
      'Pass --data-dir with the folder of cifar-10-batches-bin, or omit it to download the dataset.');
  }
  const st = statSync(file);
  if (!st.isFile()) fail(`${what}(${file})`, `the CIFAR-10 file ${name} (${expected} bytes)`, 'a folder or special file');
  const size = st.size;
  if (size !== expected) {
    fail(`${what}(${file})`, `${expected} bytes (${records} records of ${CIFAR10_RECORD_BYTES})`, `${size} bytes`,
      size < expected ? 'The file is truncated; download it again.' : 'Is this the binary version of CIFAR-10 (not the Python or MATLAB one)?');
  }
  return size;
}

/**
 * Check that `dir` holds all six CIFAR-10 batch files (train and test) at their exact sizes,
 * without reading them. Returns `dir`.
 */
export function checkCifar10Dir(dir: string, opts?: Cifar10FileOptions): string {
  if (typeof dir !== 'string' || !dir) fail('checkCifar10Dir', 'the folder holding the CIFAR-10 .bin files', JSON.stringify(dir));
  const records = recordsOf('checkCifar10Dir', opts);
  for (const name of [...CIFAR10_FILES.train, ...CIFAR10_FILES.test]) checkCifar10File('checkCifar10Dir', join(dir, name), name, records);
  return dir;
}

/**
 * Load a CIFAR-10 split from `dir` (the folder holding the `.bin` files, e.g.
 * `../shared/datasets/cifar-10-batches-bin`). Every file must be exactly 10,000 records
 * (30,730,000 bytes) with labels in 0..9; a missing, truncated or foreign file gives one error
 * naming the file and the expected size. Use `ensureCifar10` (data/download.ts) to find or
 * download the folder.
 */
export function loadCifar10(split: 'train' | 'test', dir: string, opts?: Cifar10FileOptions): Dataset {
  if (split !== 'train' && split !== 'test') fail('loadCifar10', "split 'train' or 'test'", JSON.stringify(split));
  if (typeof dir !== 'string' || !dir) fail('loadCifar10', 'the folder holding the CIFAR-10 .bin files', JSON.stringify(dir));
  const records = recordsOf('loadCifar10', opts);
  const files = CIFAR10_FILES[split];
  const per = 3 * 32 * 32;
  const count = files.length * records;
  const images = new Uint8Array(count * per);
  const labels = new Uint8Array(count);
  files.forEach((name, f) => {
    const file = join(dir, name);
    checkCifar10File('loadCifar10', file, name, records);
    const bytes = readFileSync(file);
    if (bytes.length !== CIFAR10_RECORD_BYTES * records) {
      fail(`loadCifar10(${file})`, `${CIFAR10_RECORD_BYTES * records} bytes (${records} records of ${CIFAR10_RECORD_BYTES})`, `${bytes.length} bytes`, 'The file changed while it was read.');
    }
    for (let r = 0; r < records; r++) {
      const src = r * CIFAR10_RECORD_BYTES;
      const label = bytes[src]!;
      if (label > 9) {
        fail(`loadCifar10(${file})`, 'label bytes in 0..9', `${label} in record ${r}`, 'Is this a CIFAR-10 binary batch (CIFAR-100 has two label bytes)?');
      }
      const i = f * records + r;
      labels[i] = label;
      images.set(bytes.subarray(src + 1, src + CIFAR10_RECORD_BYTES), i * per);
    }
  });
  return { name: `cifar10-${split}`, images, labels, count, shape: [3, 32, 32], numClasses: 10, classNames: [...CIFAR10_CLASSES] };
}
