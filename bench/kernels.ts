/**
 * Kernel benchmark: the binary GEMM of a 3x3 binary conv (M = Cout, K = Cin·9, N = 128·H·W,
 * binary ops counted as 2 per bit of the logical K: XOR + popcount) on ResNet-20/18 CIFAR layer
 * shapes, every ISA variant this CPU runs, 1 and 2 threads; then the whole binary conv2d (sign +
 * pack + bit-im2col + GEMM) and the active backend's float conv2d forward on the same layers.
 * Validates first (native == TypeScript reference, exactly), then times. Each figure is the best
 * of several calls (the host is shared: the best call is the one least disturbed). Ends with
 * RESULT lines, the selected variant's: the last two are bgemm_gops_r20_64x64x8x8_2t and _1t.
 * Two-thread figures need an otherwise idle machine: with another CPU-bound job on a 2-core host
 * every OpenMP join waits for a preempted thread (several ms), so 2T can fall far below 1T.
 *
 *   npm run bench:kernels
 */
import '../src/index.js';
import { backend } from '../src/core/tensor.js';
import { Rng } from '../src/core/rng.js';
import { bestMs } from './timing.js';
import type { Conv2dParams } from '../src/core/backend.js';
import { binaryMatmul as refBinaryMatmul, bitpack as refBitpack } from '../src/backends/ref/binary.js';
import { binaryAddon, binaryKernels, type BinaryIsa } from '../src/backends/native/binary.js';

interface Layer { net: 'r20' | 'r18'; cin: number; cout: number; h: number; w: number }
const layers: Layer[] = [
  { net: 'r20', cin: 16, cout: 16, h: 32, w: 32 },
  { net: 'r20', cin: 32, cout: 32, h: 16, w: 16 },
  { net: 'r20', cin: 64, cout: 64, h: 8, w: 8 },
  { net: 'r18', cin: 128, cout: 128, h: 16, w: 16 },
  { net: 'r18', cin: 256, cout: 256, h: 8, w: 8 },
];
const BATCH = 128;
const label = (l: Layer): string => `${l.cin}x${l.cout}x${l.h}x${l.w}`;

function values(n: number, seed: number): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => r.uniform(-1, 1));
}

const best = bestMs;

const fmt = (v: number, width = 8): string => (Number.isFinite(v) ? v.toFixed(0) : '–').padStart(width);

const addon = binaryAddon();
const native = binaryKernels;
if (!addon || !native) {
  console.error('bench:kernels: the native addon is not built (build/Release/onebit.node); run `node native/build.cjs` first.');
  process.exit(1);
}
const isas = addon.binaryIsas();
const selected = addon.info().isa;
const startThreads = addon.info().threads;
console.log(`binary variants on this CPU: ${isas.join(', ')} (selected: ${selected}); backend: ${backend().name}`);
console.log('other processes on this host lower (and scatter) these figures, two-thread ones most.\n');

// ---- validate ----
const data = layers.map((l, i) => {
  const M = l.cout, K = l.cin * 9, N = BATCH * l.h * l.w;
  const a = refBitpack(values(M * K, 2 * i + 1), M, K);
  const b = native.bitpack(values(N * K, 2 * i + 2), N, K); // large: the native packer (tested in conformance)
  return { l, M, K, N, a, b, out: new Float32Array(M * N) };
});
for (const { l, M, K, N, a, b, out } of data) {
  const cols = Math.min(N, 1024), words = Math.ceil(K / 32);
  const want = refBinaryMatmul(a, b.subarray(0, cols * words), M, cols, K);
  for (const isa of isas) {
    out.fill(NaN);
    addon.binaryMatmulIsa(isa, out, a, b, M, N, K);
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < cols; j++) {
        if (out[i * N + j] !== want[i * cols + j]) throw new Error(`${label(l)} ${isa}: C[${i}, ${j}] = ${out[i * N + j]}, reference ${want[i * cols + j]}`);
      }
    }
  }
}
console.log(`validated: every variant == TypeScript reference on the first 1024 columns of each shape\n`);

// ---- binary GEMM ----
const gops = new Map<string, number>(); // `${shape} ${isa} ${threads}`
console.log(`binary GEMM, binary GOP/s (2 ops per bit of K), batch ${BATCH}, best of several calls`);
console.log(`${'layer'.padEnd(18)}${'M x K x N'.padEnd(20)}${isas.map((i) => `${i} 1T`.padStart(11) + `${i} 2T`.padStart(11)).join('')}`);
for (const { l, M, K, N, a, b, out } of data) {
  const ops = 2 * M * N * K;
  const cells: string[] = [];
  for (const isa of isas) {
    for (const threads of [1, 2]) {
      addon.setThreads(threads);
      const ms = best(() => addon.binaryMatmulIsa(isa as BinaryIsa, out, a, b, M, N, K));
      const v = ops / ms / 1e6;
      gops.set(`${label(l)} ${isa} ${threads}`, v);
      cells.push(fmt(v, 11));
    }
  }
  console.log(`${`${l.net} ${label(l)}`.padEnd(18)}${`${M}x${K}x${N}`.padEnd(20)}${cells.join('')}`);
}

// ---- whole binary conv and float conv ----
console.log(`\nwhole 3x3 conv forward (pad 1), batch ${BATCH} unless noted:`);
console.log(`  binary conv2d = sign + pack + bit-im2col + GEMM from float NCHW (${selected}), binary GOP/s`);
console.log(`  float conv2d  = ${backend().name} conv2d, GFLOP/s (2 per multiply-add)`);
console.log(`${'layer'.padEnd(18)}${'binary 1T'.padStart(11)}${'binary 2T'.padStart(11)}${'float 1T'.padStart(11)}${'float 2T'.padStart(11)}${'float batch'.padStart(13)}`);
const conv: Conv2dParams = { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };
const floatBackend = backend();
for (const [i, l] of layers.entries()) {
  const xShape = [BATCH, l.cin, l.h, l.w], wShape = [l.cout, l.cin, 3, 3];
  const x = values(BATCH * l.cin * l.h * l.w, 50 + i), w = values(l.cout * l.cin * 9, 60 + i);
  const ops = 2 * BATCH * l.cout * l.h * l.w * l.cin * 9;
  const cells: string[] = [];
  for (const threads of [1, 2]) {
    addon.setThreads(threads);
    cells.push(fmt(ops / best(() => native.binaryConv2d(x, xShape, w, wShape, conv, -1)) / 1e6, 11));
  }
  // The TypeScript reference conv is ~1000x slower: time it on a smaller batch (GFLOP/s is per op).
  const probe = 2;
  addon.setThreads(1);
  const xp = x.subarray(0, probe * l.cin * l.h * l.w);
  const perImage = best(() => floatBackend.conv2d(xp, [probe, l.cin, l.h, l.w], w, wShape, conv), 0, 1) / probe;
  const fb = Math.max(1, Math.min(BATCH, Math.floor(100 / Math.max(perImage, 1e-3))));
  const xf = x.subarray(0, fb * l.cin * l.h * l.w);
  for (const threads of [1, 2]) {
    addon.setThreads(threads);
    const ms = best(() => floatBackend.conv2d(xf, [fb, l.cin, l.h, l.w], w, wShape, conv), 150, 2);
    cells.push(fmt((ops * fb) / BATCH / ms / 1e6, 11));
  }
  console.log(`${`${l.net} ${label(l)}`.padEnd(18)}${cells.join('')}${String(fb).padStart(13)}`);
}
addon.setThreads(startThreads);

console.log('\nreference peaks (engine study, docs/engine-study.md, a 2-vCPU Zen 4 with AVX-512): FP32 112–117 GFLOP/s per core,');
console.log('220–232 on two; binary (vpxord + vpopcntd + vpaddd) 2,100–2,430 GOP/s per core. No peak is measured here.');
for (const l of layers) {
  if (label(l) === '64x64x8x8') continue;
  for (const t of [1, 2]) console.log(`RESULT bgemm_gops_${l.net}_${label(l)}_${t}t=${gops.get(`${label(l)} ${selected} ${t}`)!.toFixed(0)}`);
}
console.log(`RESULT bgemm_gops_r20_64x64x8x8_2t=${gops.get(`64x64x8x8 ${selected} 2`)!.toFixed(0)}`);
console.log(`RESULT bgemm_gops_r20_64x64x8x8_1t=${gops.get(`64x64x8x8 ${selected} 1`)!.toFixed(0)}`);
