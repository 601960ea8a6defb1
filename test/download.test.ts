import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tar from 'tar';
import { OnebitError } from '../src/core/errors.js';
import { CIFAR10_FILES, CIFAR10_RECORD_BYTES, loadCifar10 } from '../src/data/cifar.js';
import { CIFAR10_FOLDER, CIFAR10_SHA256, ensureCifar10, type EnsureCifar10Options } from '../src/data/download.js';

/** Records per fake batch file. */
const RECORDS = 2;
const ALL = [...CIFAR10_FILES.train, ...CIFAR10_FILES.test];
const root = mkdtempSync(join(tmpdir(), 'onebit-download-'));

let archive: Buffer; // the fake cifar-10-binary.tar.gz
let otherArchive: Buffer; // a valid archive with other contents
let md5: string;
const sha256: Record<string, string> = {};
let base = ''; // http://127.0.0.1:<port>
const hits = new Map<string, number>();
let server: http.Server;

/** Write the six batch files (+ the meta file of the release) under dir/cifar-10-batches-bin, tar.gz them. */
async function makeArchive(dir: string, file: string, salt: number): Promise<Buffer> {
  const folder = join(dir, CIFAR10_FOLDER);
  mkdirSync(folder, { recursive: true });
  ALL.forEach((name, f) => {
    const b = new Uint8Array(RECORDS * CIFAR10_RECORD_BYTES);
    for (let i = 0; i < b.length; i++) b[i] = i % CIFAR10_RECORD_BYTES === 0 ? (f + i + salt) % 10 : (i * 13 + f + salt) & 255;
    writeFileSync(join(folder, name), b);
  });
  writeFileSync(join(folder, 'batches.meta.txt'), 'airplane\nautomobile\n');
  await tar.c({ gzip: true, file, cwd: dir, portable: true }, [CIFAR10_FOLDER]);
  return readFileSync(file);
}

before(async () => {
  archive = await makeArchive(join(root, 'src'), join(root, 'cifar-10-binary.tar.gz'), 0);
  otherArchive = await makeArchive(join(root, 'src2'), join(root, 'other.tar.gz'), 1);
  md5 = createHash('md5').update(archive).digest('hex');
  for (const name of ALL) sha256[name] = createHash('sha256').update(readFileSync(join(root, 'src', CIFAR10_FOLDER, name))).digest('hex');

  server = http.createServer((req, res) => {
    hits.set(req.url ?? '', (hits.get(req.url ?? '') ?? 0) + 1);
    const path = (req.url ?? '').split('?')[0]!;
    const send = (body: Buffer): void => {
      res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': body.length });
      res.end(body);
    };
    if (path === '/cifar.tar.gz') send(archive);
    else if (path === '/other.tar.gz') send(otherArchive);
    else if (path === '/r1') res.writeHead(302, { location: '/r2' }).end();
    else if (path === '/r2') res.writeHead(301, { location: `${base}/cifar.tar.gz` }).end();
    else if (path.startsWith('/loop')) res.writeHead(307, { location: `/loop${Number(path.slice(5) || 0) + 1}` }).end();
    else if (path === '/truncated' || path === '/stall') {
      res.writeHead(200, { 'content-length': archive.length });
      res.write(archive.subarray(0, archive.length >> 1), () => {
        if (path === '/truncated') res.socket?.destroy(); // close early; /stall keeps the connection open
      });
    } else res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => {
  server.closeAllConnections();
  server.close();
  rmSync(root, { recursive: true, force: true });
});

let n = 0;
/** Options for a fresh cache folder and the fake archive's checksums. */
function opts(path: string, extra: EnsureCifar10Options = {}): EnsureCifar10Options & { cacheDir: string } {
  return { cacheDir: join(root, `cache${n++}`), url: base + path, md5, sha256, recordsPerFile: RECORDS, progress: false, ...extra };
}

async function rejectsOnebit(p: Promise<unknown>, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof OnebitError, `expected OnebitError, got ${String(e)}`);
    for (const re of patterns) assert.match(e.message, re);
    return true;
  });
}

/** No final folder and no temp file or folder left in the cache. */
function assertNothingLeft(cacheDir: string): void {
  assert.equal(existsSync(join(cacheDir, CIFAR10_FOLDER)), false, 'no final folder');
  assert.deepEqual(existsSync(cacheDir) ? readdirSync(cacheDir) : [], [], 'no temp files');
}

test('ensureCifar10: downloads, checks and unpacks into the cache; a second call makes no request', async () => {
  const o = opts('/cifar.tar.gz');
  const dir = await ensureCifar10(o);
  assert.equal(dir, join(o.cacheDir, CIFAR10_FOLDER));
  assert.deepEqual(readdirSync(o.cacheDir), [CIFAR10_FOLDER], 'only the final folder, no temp files');
  const train = loadCifar10('train', dir, { recordsPerFile: RECORDS });
  assert.equal(train.count, 5 * RECORDS);
  assert.equal(hits.get('/cifar.tar.gz'), 1);
  assert.equal(await ensureCifar10(o), dir);
  assert.equal(hits.get('/cifar.tar.gz'), 1, 'the cached copy was used');
  // A damaged cached copy is reported, not silently used or re-downloaded.
  writeFileSync(join(dir, 'test_batch.bin'), 'x');
  await rejectsOnebit(ensureCifar10(o), /test_batch\.bin/, /6146 bytes/, /delete .*cifar-10-batches-bin to download it again/);
});

test('ensureCifar10: dataDir is only checked, never downloaded into', async () => {
  const real = join(root, 'src', CIFAR10_FOLDER);
  assert.equal(await ensureCifar10({ dataDir: real, recordsPerFile: RECORDS, url: `${base}/nothing` }), real);
  await rejectsOnebit(ensureCifar10({ dataDir: real }), /data_batch_1\.bin/, /30730000 bytes/);
  await rejectsOnebit(ensureCifar10({ dataDir: join(root, 'nope'), recordsPerFile: RECORDS }), /data_batch_1\.bin \(6146 bytes\)/, /no such file/);
  assert.equal(hits.get('/nothing'), undefined);
});

test('ensureCifar10: follows up to 5 redirects (relative and absolute), not more', async () => {
  const o = opts('/r1');
  assert.equal(await ensureCifar10(o), join(o.cacheDir, CIFAR10_FOLDER));
  assert.equal(hits.get('/r1'), 1);
  assert.equal(hits.get('/r2'), 1);
  const loop = opts('/loop');
  await rejectsOnebit(ensureCifar10(loop), new RegExp(`ensureCifar10\\(${base}/loop\\)`), /at most 5 redirects/, /loop6/);
  assertNothingLeft(loop.cacheDir);
});

test('ensureCifar10: HTTP 404, a truncated body and a refused connection each give one error', async () => {
  const o404 = opts('/missing');
  await rejectsOnebit(ensureCifar10(o404), new RegExp(`${base}/missing`), /expected HTTP status 200, but got 404 Not Found/);
  assertNothingLeft(o404.cacheDir);

  const trunc = opts('/truncated');
  await rejectsOnebit(ensureCifar10(trunc), new RegExp(`${base}/truncated`), new RegExp(`expected ${archive.length} bytes`),
    new RegExp(`got ${archive.length >> 1} bytes before the connection ended`), /cut short/);
  assertNothingLeft(trunc.cacheDir);

  const closed = http.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  const refused = opts('', { url: `http://127.0.0.1:${port}/x.tar.gz` });
  await rejectsOnebit(ensureCifar10(refused), new RegExp(`127\\.0\\.0\\.1:${port}/x\\.tar\\.gz`), /network error \(ECONNREFUSED\)/);
  assertNothingLeft(refused.cacheDir);
  await rejectsOnebit(ensureCifar10(opts('', { url: 'ftp://example.org/a.tgz' })), /an http or https URL/);
});

test('ensureCifar10: an MD5 or SHA-256 mismatch leaves no folder (the rename into place is the last step)', async () => {
  const bad = opts('/other.tar.gz');
  await rejectsOnebit(ensureCifar10(bad), new RegExp(`${base}/other\\.tar\\.gz`), new RegExp(`expected an archive with MD5 ${md5}`),
    new RegExp(`MD5 ${createHash('md5').update(otherArchive).digest('hex')} \\(${otherArchive.length} bytes\\)`));
  assertNothingLeft(bad.cacheDir);

  // The archive passes MD5, one extracted file fails SHA-256: checked after unpacking, before the rename.
  const wrong = opts('/cifar.tar.gz', { sha256: { ...sha256, 'data_batch_3.bin': '0'.repeat(64) } });
  await rejectsOnebit(ensureCifar10(wrong), /data_batch_3\.bin/, new RegExp(`expected SHA-256 ${'0'.repeat(64)}, but got SHA-256 ${sha256['data_batch_3.bin']}`));
  assertNothingLeft(wrong.cacheDir);

  // Checksums pass but the files have 2 records, not the official 10,000.
  const small = opts('/cifar.tar.gz', { recordsPerFile: undefined });
  await rejectsOnebit(ensureCifar10(small), /the six CIFAR-10 batch files/, /data_batch_1\.bin/, /30730000 bytes/);
  assertNothingLeft(small.cacheDir);

  // Defaults are the official checksums (hard-coded), so the fake archive fails them.
  assert.equal(CIFAR10_SHA256['test_batch.bin'], '8e2eb146ae340b09e24670f29cabc6326dba54da8789dab6768acf480273f65b');
  const official = opts('/cifar.tar.gz', { md5: undefined, sha256: undefined });
  await rejectsOnebit(ensureCifar10(official), /expected an archive with MD5 c32a1d4ab5d03f1284b67883e8d87530/);
  assertNothingLeft(official.cacheDir);
});

test('ensureCifar10: the URL comes from ONEBIT_CIFAR10_URL when not given', async () => {
  const o = opts('/cifar.tar.gz', { url: undefined });
  const prev = process.env.ONEBIT_CIFAR10_URL;
  process.env.ONEBIT_CIFAR10_URL = `${base}/cifar.tar.gz?env`;
  try {
    assert.equal(await ensureCifar10(o), join(o.cacheDir, CIFAR10_FOLDER));
  } finally {
    if (prev === undefined) delete process.env.ONEBIT_CIFAR10_URL;
    else process.env.ONEBIT_CIFAR10_URL = prev;
  }
  assert.equal(hits.get('/cifar.tar.gz?env'), 1);
});

test('ensureCifar10: a process killed mid-download leaves no folder that looks complete; the next call cleans up', async () => {
  const o = opts('/stall');
  const mod = pathToFileURL(join(import.meta.dirname, '../src/data/download.js')).href;
  const code = `import { ensureCifar10 } from ${JSON.stringify(mod)};
await ensureCifar10(${JSON.stringify({ ...o, progress: true })});`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  // Wait until half the archive is on disk, then SIGKILL the downloader.
  const partial = (): string | undefined => (existsSync(o.cacheDir) ? readdirSync(o.cacheDir).find((f) => f.startsWith('.cifar-10-binary.tar.gz.')) : undefined);
  for (let i = 0; i < 400; i++) {
    const p = partial();
    if (p && readFileSync(join(o.cacheDir, p)).length >= archive.length >> 1) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.ok(partial(), 'the partial archive was being written');
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  assert.match(stderr, /Downloading CIFAR-10 from .*\/stall/);
  assert.match(stderr, /CIFAR-10: .* MB/, 'plain progress lines when stderr is not a terminal');
  assert.equal(existsSync(join(o.cacheDir, CIFAR10_FOLDER)), false, 'no final folder');

  const dir = await ensureCifar10({ ...o, url: `${base}/cifar.tar.gz` });
  assert.equal(dir, join(o.cacheDir, CIFAR10_FOLDER));
  assert.deepEqual(readdirSync(o.cacheDir), [CIFAR10_FOLDER], 'the dead process\'s temp file was removed');
});
