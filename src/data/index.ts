/** Datasets, IDX parsing and mini-batch loading. */
export * from './idx.js';
export * from './dataset.js';
export * from './loader.js';
export * from './cifar.js';
export * from './augment.js';
export * from './download.js';
export * from './prefetch.js';
