/**
 * `npm run demo`: serves the browser demo on http://localhost:8080/ (`--port N`, `--host H`):
 *
 *   /             → demo/            (index.html, app.js, style.css, models/…)
 *   /dist/web/…   → dist/web/        (the `onebit/web` bundle and its .wasm files; `node scripts/build-web.mjs`)
 *
 * Every response carries `Cross-Origin-Opener-Policy: same-origin` and
 * `Cross-Origin-Embedder-Policy: require-corp` (the page is cross-origin isolated, so
 * SharedArrayBuffer — WebAssembly threads — is available) and `Cross-Origin-Resource-Policy:
 * same-origin`. MIME types by extension (`.wasm` is `application/wasm`, which
 * `WebAssembly.instantiateStreaming` requires). Only GET and HEAD; paths are decoded and a `..`
 * segment, a backslash or a NUL byte is refused (400) before anything touches the disk, and the
 * resolved file must lie inside the folder it is served from. `startDemoServer` is the API the
 * browser test uses.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const MIME: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.onebit': 'application/octet-stream',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
};

export interface DemoServerOptions {
  /** TCP port; 0 picks a free one (default 8080). */
  port?: number;
  /** Interface to listen on (default 127.0.0.1). */
  host?: string;
  /** The repository root holding demo/ and dist/web/ (default: found from this file). */
  root?: string;
  /** Log one line per request to stderr (default false). */
  log?: boolean;
}

export interface DemoServer {
  /** e.g. http://localhost:8080/ (http://127.0.0.1:PORT/ when host is not a loopback name). */
  url: string;
  port: number;
  close(): Promise<void>;
}

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'X-Content-Type-Options': 'nosniff',
  'Cache-Control': 'no-cache',
};

/** The repository root: the nearest folder above this file with onebit's package.json. */
export function repoRoot(from = path.dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    try {
      if ((JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string }).name === 'onebit') return dir;
    } catch {
      /* not here */
    }
    const up = path.dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
}

/**
 * The file a URL path maps to, or an HTTP status: 400 for a path that is malformed or tries to
 * leave its folder (`..`, backslash, NUL, bad percent-encoding), 404 when outside both mounts.
 */
export function resolveRequest(root: string, urlPath: string): { file: string } | { status: 400 | 404; reason: string } {
  let p: string;
  try {
    p = decodeURIComponent(urlPath);
  } catch {
    return { status: 400, reason: 'bad percent-encoding' };
  }
  if (!p.startsWith('/') || p.includes('\0') || p.includes('\\')) return { status: 400, reason: 'malformed path' };
  const segments = p.split('/');
  if (segments.some((s) => s === '..' || s === '.')) return { status: 400, reason: 'path with . or .. segment' };
  let base: string, rest: string[];
  if (p === '/dist/web' || p.startsWith('/dist/web/')) {
    base = path.join(root, 'dist', 'web');
    rest = segments.slice(3);
  } else {
    base = path.join(root, 'demo');
    rest = segments.slice(1);
  }
  if (rest.length === 0 || rest[rest.length - 1] === '') rest = [...rest.filter((s) => s !== ''), 'index.html'];
  const file = path.resolve(base, ...rest.filter((s) => s !== ''));
  if (file !== base && !file.startsWith(base + path.sep)) return { status: 400, reason: 'outside the served folder' };
  return { file };
}

function send(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function handler(root: string, log: boolean): http.RequestListener {
  return (req, res) => {
    const t0 = performance.now();
    res.on('finish', () => {
      if (log) process.stderr.write(`${req.method} ${req.url} ${res.statusCode} ${(performance.now() - t0).toFixed(1)} ms\n`);
    });
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return send(res, 405, 'Method not allowed\n');
    }
    const rawPath = (req.url ?? '/').split('?')[0]!.split('#')[0]!;
    const r = resolveRequest(root, rawPath);
    if ('status' in r) return send(res, r.status, `${r.status === 400 ? 'Bad request' : 'Not found'}: ${r.reason}\n`);
    fs.stat(r.file, (err, st) => {
      if (err || !st.isFile()) {
        const hint = r.file.includes(`${path.sep}dist${path.sep}web${path.sep}`) ? ' (build the bundle: node scripts/build-web.mjs)'
          : r.file.includes(`${path.sep}models${path.sep}`) ? ' (make the models: npm run demo:models)' : '';
        return send(res, 404, `Not found: ${rawPath}${hint}\n`);
      }
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        'Content-Type': MIME[path.extname(r.file).toLowerCase()] ?? 'application/octet-stream',
        'Content-Length': st.size,
        'Last-Modified': st.mtime.toUTCString(),
      });
      if (req.method === 'HEAD') return res.end();
      const stream = fs.createReadStream(r.file);
      stream.on('error', () => res.destroy());
      stream.pipe(res);
    });
  };
}

/** Start the demo server; resolves once it listens. `close()` stops it (open connections included). */
export function startDemoServer(opts: DemoServerOptions = {}): Promise<DemoServer> {
  const root = path.resolve(opts.root ?? repoRoot());
  const host = opts.host ?? '127.0.0.1';
  const server = http.createServer(handler(root, opts.log ?? false));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 8080, host, () => {
      server.off('error', reject);
      const port = (server.address() as AddressInfo).port;
      const loopback = host === '127.0.0.1' || host === 'localhost' || host === '::1';
      resolve({
        url: `http://${loopback ? 'localhost' : host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host}:${port}/`,
        port,
        close: () => new Promise<void>((done) => {
          server.close(() => done());
          server.closeAllConnections();
        }),
      });
    });
  });
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  let port = 8080, host = '127.0.0.1';
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!, v = args[i + 1];
    if (a === '--port' && v !== undefined && /^\d+$/.test(v) && Number(v) <= 65535) { port = Number(v); i++; }
    else if (a === '--host' && v) { host = v; i++; }
    else if (a === '--help' || a === '-h') { console.log('usage: npm run demo [-- --port 8080] [--host 127.0.0.1]'); return; }
    else {
      process.stderr.write(`error: ${a}: expected --port <0-65535> or --host <address>, but got "${a}${v !== undefined ? ` ${v}` : ''}".\n`);
      process.exit(2);
    }
  }
  const root = repoRoot();
  for (const [f, hint] of [['dist/web/onebit.js', 'node scripts/build-web.mjs'], ['demo/models/mnist.onebit', 'npm run demo:models']] as const) {
    if (!fs.existsSync(path.join(root, f))) process.stderr.write(`warning: ${f} is missing; the page will say so. Make it with: ${hint}\n`);
  }
  let s: DemoServer;
  try {
    s = await startDemoServer({ port, host, root, log: process.env.ONEBIT_DEMO_LOG === '1' });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    process.stderr.write(`error: cannot listen on ${host}:${port} (${code ?? (e as Error).message})${code === 'EADDRINUSE' ? '; pass --port <another>' : ''}.\n`);
    process.exit(1);
  }
  console.log(`onebit demo: ${s.url}  (serving ${path.join(root, 'demo')} and ${path.join(root, 'dist', 'web')} at /dist/web/; Ctrl-C stops)`);
  const stop = (): void => { void s.close().then(() => process.exit(0)); };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) await main();
