/**
 * Find CIFAR-10 on disk, or download the official binary release into a cache folder.
 *
 * `ensureCifar10({ dataDir })` only checks the six .bin files (existence and exact size).
 * Without dataDir it looks in the cache folder (`$ONEBIT_CACHE` or `~/.cache/onebit`, holding
 * `cifar-10-batches-bin/`) and, when that is missing, downloads `cifar-10-binary.tar.gz`
 * (≈170 MB) from the official site (or `url`, or `$ONEBIT_CIFAR10_URL`), checks the archive's MD5
 * and every extracted file's SHA-256, and only then renames the extracted folder into place.
 *
 * Atomicity: the archive and the extraction live under dot-named temp paths in the cache folder
 * (`.cifar-10-*.<pid>.<random>.tmp`); the final folder appears by one rename, after every check,
 * so a download that fails or is killed never leaves a folder that looks complete. Temp paths of
 * dead processes are removed on the next call.
 *
 * Plain node:http/node:https (redirects followed by hand, up to 5); extraction with the `tar`
 * package; progress with cli-progress on stderr (plain lines when stderr is not a terminal).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import cliProgress from 'cli-progress';
import { fail, OnebitError } from '../core/errors.js';
import { checkCifar10Dir, CIFAR10_FILES, type Cifar10FileOptions } from './cifar.js';

/** The official binary release (https://www.cs.toronto.edu/~kriz/cifar.html). */
export const CIFAR10_URL = 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz';
/** MD5 of `cifar-10-binary.tar.gz`, as published on the CIFAR page. */
export const CIFAR10_ARCHIVE_MD5 = 'c32a1d4ab5d03f1284b67883e8d87530';
/** The folder the archive unpacks to. */
export const CIFAR10_FOLDER = 'cifar-10-batches-bin';
/** SHA-256 of each batch file of the official release. */
export const CIFAR10_SHA256: Readonly<Record<string, string>> = {
  'data_batch_1.bin': 'cee916563c9f80d84e3cc88e17fdc0941787f1244f00a67874d45b261883ada5',
  'data_batch_2.bin': 'a591ca11fa1708a91ee40f54b3da4784ccd871ecf2137de63f51ada8b3fa57ed',
  'data_batch_3.bin': 'bbe8596564c0f86427f876058170b84dac6670ddf06d79402899d93ceea26f67',
  'data_batch_4.bin': '014e562d6e23c72197cc727519169a60359f5eccd8945ad5a09d710285ff4e48',
  'data_batch_5.bin': '755304fc0b379caeae8c14f0dac912fbc7d6cd469eb67a1029a08a39453a9add',
  'test_batch.bin': '8e2eb146ae340b09e24670f29cabc6326dba54da8789dab6768acf480273f65b',
};

const MAX_REDIRECTS = 5;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const TMP_RE = /^\.cifar-10-.*\.(\d+)\.[0-9a-f]+\.tmp$/;
const HINT_MANUAL = `Or download ${CIFAR10_URL} yourself, unpack it and pass --data-dir <folder>/${CIFAR10_FOLDER}.`;

/** The cache root: $ONEBIT_CACHE, else ~/.cache/onebit. */
export function defaultCacheDir(): string {
  return process.env.ONEBIT_CACHE || join(homedir(), '.cache', 'onebit');
}

/** The cache folder: $ONEBIT_CACHE/cifar-10-batches-bin, else ~/.cache/onebit/cifar-10-batches-bin. */
export function defaultCifar10Dir(): string {
  return join(defaultCacheDir(), CIFAR10_FOLDER);
}

/** Options of ensureCifar10. */
export interface EnsureCifar10Options extends Cifar10FileOptions {
  /** A folder holding the .bin files: only checked (sizes), never downloaded into. */
  dataDir?: string;
  /** Archive URL (http or https). Default: $ONEBIT_CIFAR10_URL, else CIFAR10_URL. */
  url?: string;
  /** Progress on stderr while downloading (default true): a bar on a terminal, else plain lines. */
  progress?: boolean;
  /** Cache root holding `cifar-10-batches-bin/` (default defaultCacheDir()). */
  cacheDir?: string;
  /** Expected MD5 of the archive (default CIFAR10_ARCHIVE_MD5); null skips the check. */
  md5?: string | null;
  /** Expected SHA-256 per extracted file (default CIFAR10_SHA256); null skips the check. */
  sha256?: Readonly<Record<string, string>> | null;
  /** Give up when the connection is idle this long, in ms (default 60,000). */
  timeoutMs?: number;
}

/**
 * The folder holding the CIFAR-10 .bin files, downloading and unpacking the official archive into
 * the cache first when needed (see the file comment). Every failure is one OnebitError naming the
 * URL or file and what was expected: HTTP status ≠ 200, more than 5 redirects, a network error,
 * a truncated download (fewer bytes than Content-Length), an MD5 or SHA-256 mismatch, a bad archive.
 */
export async function ensureCifar10(opts: EnsureCifar10Options = {}): Promise<string> {
  const fileOpts: Cifar10FileOptions = { recordsPerFile: opts.recordsPerFile };
  if (opts.dataDir !== undefined) return checkCifar10Dir(opts.dataDir, fileOpts);

  const cache = opts.cacheDir ?? defaultCacheDir();
  const final = join(cache, CIFAR10_FOLDER);
  if (existsSync(final)) return checkCached(final, fileOpts);

  const url = opts.url ?? (process.env.ONEBIT_CIFAR10_URL || CIFAR10_URL);
  const md5 = opts.md5 === undefined ? CIFAR10_ARCHIVE_MD5 : opts.md5;
  const sha = opts.sha256 === undefined ? CIFAR10_SHA256 : opts.sha256;
  try {
    mkdirSync(cache, { recursive: true });
  } catch (e) {
    fail('ensureCifar10', `a writable cache folder ${cache}`, errCode(e), 'Set ONEBIT_CACHE to another folder, or pass --data-dir.');
  }
  removeStaleTemps(cache);
  const tag = `${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const archive = join(cache, `.cifar-10-binary.tar.gz.${tag}`);
  const staging = join(cache, `.cifar-10-batches-bin.${tag}`);
  try {
    const progress = opts.progress ?? true;
    if (progress) process.stderr.write(`Downloading CIFAR-10 from ${url} into ${final}\n`);
    const got = await download(url, archive, { progress, timeoutMs: opts.timeoutMs ?? 60_000 });
    if (md5 && got.md5 !== md5.toLowerCase()) {
      fail(`ensureCifar10(${got.url})`, `an archive with MD5 ${md5}`, `MD5 ${got.md5} (${got.bytes} bytes)`,
        `The download is corrupt or is not cifar-10-binary.tar.gz; run again, or set ONEBIT_CIFAR10_URL to another mirror. ${HINT_MANUAL}`);
    }
    mkdirSync(staging);
    try {
      const tar = await import('tar'); // loaded only when a download happens (~35 ms)
      await tar.x({ file: archive, cwd: staging, strict: true });
    } catch (e) {
      fail(`ensureCifar10(${got.url})`, `a gzip-compressed tar archive holding ${CIFAR10_FOLDER}/`, `an archive that does not unpack (${(e as Error).message})`, HINT_MANUAL);
    }
    const unpacked = join(staging, CIFAR10_FOLDER);
    if (!existsSync(unpacked)) {
      fail(`ensureCifar10(${got.url})`, `an archive holding the folder ${CIFAR10_FOLDER}/`, `top-level entries ${JSON.stringify(readdirSync(staging))}`, HINT_MANUAL);
    }
    try {
      checkCifar10Dir(unpacked, fileOpts);
    } catch (e) {
      if (!(e instanceof OnebitError)) throw e;
      fail(`ensureCifar10(${got.url})`, 'an archive holding the six CIFAR-10 batch files at their sizes', `one that does not (${e.message})`, HINT_MANUAL);
    }
    if (sha) {
      for (const name of [...CIFAR10_FILES.train, ...CIFAR10_FILES.test]) {
        const want = sha[name];
        if (!want) continue;
        const have = await sha256File(join(unpacked, name));
        if (have !== want.toLowerCase()) {
          fail(`ensureCifar10(${name} from ${got.url})`, `SHA-256 ${want}`, `SHA-256 ${have}`, `The archive's contents are not the official release. ${HINT_MANUAL}`);
        }
      }
    }
    try {
      renameSync(unpacked, final);
    } catch (e) {
      // Another process finished first: use its (complete, checked) folder.
      if (!existsSync(final)) fail('ensureCifar10', `to move ${unpacked} to ${final}`, errCode(e), 'Check the permissions of the cache folder.');
    }
    if (progress) process.stderr.write(`CIFAR-10 ready in ${final}\n`);
    return checkCached(final, fileOpts);
  } finally {
    rmSync(archive, { force: true });
    rmSync(staging, { recursive: true, force: true });
  }
}

/** Check a folder found in the cache, with a hint that says how to start over. */
function checkCached(dir: string, fileOpts: Cifar10FileOptions): string {
  try {
    return checkCifar10Dir(dir, fileOpts);
  } catch (e) {
    if (e instanceof OnebitError) throw new OnebitError(`${e.message} The cached copy is damaged: delete ${dir} to download it again.`);
    throw e;
  }
}

/** Remove temp files/folders of earlier calls whose process is gone. */
function removeStaleTemps(cache: string): void {
  for (const name of readdirSync(cache)) {
    const m = TMP_RE.exec(name);
    if (!m || isAlive(Number(m[1]))) continue;
    rmSync(join(cache, name), { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function errCode(e: unknown): string {
  return (e as NodeJS.ErrnoException)?.code ?? (e as Error)?.message ?? String(e);
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** GET `url` (following redirects) into `dest`; returns the final URL, the byte count and the MD5. */
async function download(
  url: string, dest: string, opts: { progress: boolean; timeoutMs: number },
): Promise<{ url: string; bytes: number; md5: string }> {
  let current = url;
  for (let hops = 0; ; hops++) {
    const res = await get(current, opts.timeoutMs);
    const status = res.statusCode ?? 0;
    if (REDIRECTS.has(status)) {
      res.resume();
      const loc = res.headers.location;
      if (!loc) fail(`ensureCifar10(${current})`, 'a Location header with the redirect', `HTTP ${status} without one`, HINT_MANUAL);
      if (hops >= MAX_REDIRECTS) {
        fail(`ensureCifar10(${url})`, `at most ${MAX_REDIRECTS} redirects`, `more (the last to ${loc})`, `The server redirects in a loop. ${HINT_MANUAL}`);
      }
      current = new URL(loc, current).href;
      continue;
    }
    if (status !== 200) {
      res.resume();
      fail(`ensureCifar10(${current})`, 'HTTP status 200', `${status} ${res.statusMessage ?? ''}`.trim(),
        `Check the URL (ONEBIT_CIFAR10_URL). ${HINT_MANUAL}`);
    }
    return { url: current, ...(await save(res, current, dest, opts)) };
  }
}

/** One GET, resolved at the response headers; network errors become OnebitErrors. */
function get(url: string, timeoutMs: number): Promise<http.IncomingMessage> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    fail('ensureCifar10', 'an http or https URL', JSON.stringify(url));
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') fail('ensureCifar10', 'an http or https URL', JSON.stringify(url));
  const mod = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.get(u, { headers: { 'user-agent': 'onebit', 'accept-encoding': 'identity' } }, resolve);
    req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error(`no data for ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    req.on('error', (e) => {
      try {
        fail(`ensureCifar10(${url})`, `a response from ${u.host}`, `a network error (${errCode(e)})`,
          `Check the network connection, or set ONEBIT_CIFAR10_URL to a reachable mirror. ${HINT_MANUAL}`);
      } catch (err) {
        reject(err);
      }
    });
  });
}

/** Stream a 200 response into `dest`, hashing it; a body shorter than Content-Length is an error. */
async function save(
  res: http.IncomingMessage, url: string, dest: string, opts: { progress: boolean },
): Promise<{ bytes: number; md5: string }> {
  const lenHeader = res.headers['content-length'];
  const total = lenHeader !== undefined && /^\d+$/.test(lenHeader) ? Number(lenHeader) : undefined;
  const hash = createHash('md5');
  const progress = opts.progress ? new Progress(total) : undefined;
  let received = 0;
  let cause: unknown;
  const file = createWriteStream(dest);
  // Settles when the file is closed: on an early error the stream may still be opening, and the
  // caller's cleanup must not run before that, or the open would re-create the removed temp file.
  const closed = new Promise<void>((resolve) => file.once('close', () => resolve()));
  try {
    await pipeline(
      res,
      async function* (src: AsyncIterable<Buffer>) {
        for await (const chunk of src) {
          hash.update(chunk);
          received += chunk.length;
          progress?.update(received);
          yield chunk;
        }
      },
      file,
    );
  } catch (e) {
    cause = e;
  } finally {
    progress?.stop();
    if (!file.closed) {
      file.destroy();
      await closed;
    }
  }
  const size = total !== undefined ? `${total} bytes` : 'the whole archive';
  if (cause !== undefined || (total !== undefined && received < total)) {
    const fileError = (cause as NodeJS.ErrnoException | undefined)?.syscall !== undefined && (cause as NodeJS.ErrnoException).syscall !== 'read';
    if (fileError) fail('ensureCifar10', `to write the download to ${dest}`, errCode(cause), 'Check the free space and permissions of the cache folder (ONEBIT_CACHE).');
    fail(`ensureCifar10(${url})`, size, `${received} bytes before the connection ended${cause !== undefined ? ` (${errCode(cause)})` : ''}`,
      'The download was cut short; run again to retry.');
  }
  if (total !== undefined && received !== total) fail(`ensureCifar10(${url})`, size, `${received} bytes`, 'The server sent more than it announced; run again.');
  return { bytes: received, md5: hash.digest('hex') };
}

/** A cli-progress bar on a terminal; plain lines at every 10% (or 16 MB) and at the end otherwise. */
class Progress {
  private bar: cliProgress.SingleBar | undefined;
  private nextLine = 0;
  private received = 0;
  private printed = -1;
  constructor(private readonly total: number | undefined) {
    if (process.stderr.isTTY && total !== undefined) {
      this.bar = new cliProgress.SingleBar(
        { format: ' CIFAR-10 {bar} {percentage}% | {mb}/{totalMb} MB | ETA {eta_formatted}', stream: process.stderr, hideCursor: true, clearOnComplete: true },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(total, 0, { mb: '0.0', totalMb: mb(total) });
    }
  }
  update(received: number): void {
    this.received = received;
    if (this.bar) this.bar.update(received, { mb: mb(received) });
    else if (received >= this.nextLine) this.line();
  }
  stop(): void {
    if (this.bar) this.bar.stop();
    else if (this.received === this.total && this.printed !== this.total) this.line();
  }
  private line(): void {
    const t = this.total, r = this.received;
    process.stderr.write(`  CIFAR-10: ${mb(r)}${t ? `/${mb(t)} MB (${Math.floor((100 * r) / t)}%)` : ' MB'}\n`);
    this.printed = r;
    this.nextLine = r + (t ? Math.max(1, Math.ceil(t / 10)) : 16 << 20);
  }
}

function mb(bytes: number): string {
  return (bytes / 1e6).toFixed(1);
}
