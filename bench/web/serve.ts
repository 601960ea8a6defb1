import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { MIME } from '../demo_server.js';


/**
 * A static file server on localhost for the browser pages: `mounts` maps URL prefixes ('/' or
 * '/dist/web/') to folders, `files` maps exact paths to in-memory bodies. `isolated` adds COOP/COEP
 * (a cross-origin isolated page: SharedArrayBuffer, WebAssembly threads). Paths that leave their
 * folder ('..', absolute, NUL) get 404. Port 0 picks a free port.
 */
export async function serveStatic(opts: {
  mounts: Record<string, string>; files?: Record<string, { body: string | Uint8Array; type?: string }>; port?: number; isolated?: boolean;
}): Promise<{ url: string; close(): Promise<void> }> {
  const mounts = Object.entries(opts.mounts).sort((a, b) => b[0].length - a[0].length);
  const server = http.createServer((req, res) => {
    const headers: Record<string, string> = { 'Cache-Control': 'no-store' };
    if (opts.isolated) Object.assign(headers, { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' });
    const send = (status: number, body: string | Uint8Array, type = 'text/plain; charset=utf-8') => {
      res.writeHead(status, { ...headers, 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    let urlPath: string;
    try {
      urlPath = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
    } catch {
      return send(400, 'bad request');
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed');
    const mem = opts.files?.[urlPath];
    if (mem) return send(200, mem.body, mem.type ?? MIME[path.extname(urlPath)] ?? 'application/octet-stream');
    for (const [prefix, dir] of mounts) {
      if (!urlPath.startsWith(prefix)) continue;
      let rel = urlPath.slice(prefix.length);
      if (rel === '' || rel.endsWith('/')) rel += 'index.html';
      if (rel.includes('\0') || rel.split('/').includes('..') || path.isAbsolute(rel)) return send(404, 'not found');
      const file = path.resolve(dir, rel);
      if (!file.startsWith(path.resolve(dir) + path.sep)) return send(404, 'not found');
      fs.readFile(file, (err, body) => (err ? send(404, 'not found') : send(200, body, MIME[path.extname(file)] ?? 'application/octet-stream')));
      return;
    }
    if (urlPath === '/favicon.ico') return send(204, '');
    send(404, 'not found');
  });
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(opts.port ?? 0, '127.0.0.1', () => resolve()); });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
