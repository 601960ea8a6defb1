/**
 * SVG → PNG through @resvg/resvg-js (a prebuilt Rust renderer, loaded lazily). When it cannot be
 * loaded (a platform without a prebuilt binary, or ONEBIT_NO_RESVG=1 to test that path) the
 * callers write SVG only; `svgToPng` then returns null and says so once on stderr.
 */
import { createRequire } from 'node:module';

type ResvgModule = typeof import('@resvg/resvg-js');

let loaded: ResvgModule | null | undefined;
let warned = false;
let loadError = '';

/** The resvg module, or null (with the reason in `resvgError()`) when it cannot be loaded. */
export function loadResvg(): ResvgModule | null {
  if (loaded !== undefined) return loaded;
  try {
    if (process.env.ONEBIT_NO_RESVG === '1') throw new Error('disabled by ONEBIT_NO_RESVG=1');
    loaded = createRequire(import.meta.url)('@resvg/resvg-js') as ResvgModule;
  } catch (e) {
    loaded = null;
    loadError = (e as Error).message.split('\n')[0] ?? String(e);
  }
  return loaded;
}

/** Why resvg could not be loaded ('' when it loaded or was not tried). */
export function resvgError(): string {
  return loadError;
}

/**
 * Render an SVG document to PNG bytes, scaled to `width` pixels wide, with the system fonts.
 * Returns null (after one stderr notice per process) when resvg is unavailable.
 */
export function svgToPng(svg: string, width: number): Buffer | null {
  const mod = loadResvg();
  if (!mod) {
    if (!warned) {
      warned = true;
      process.stderr.write(`onebit: PNG export skipped, writing SVG only (@resvg/resvg-js unavailable: ${loadError})\n`);
    }
    return null;
  }
  const r = new mod.Resvg(svg, { fitTo: { mode: 'width', value: Math.round(width) }, font: { loadSystemFonts: true }, logLevel: 'off' });
  return r.render().asPng();
}
