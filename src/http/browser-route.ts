import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { answering, type ExactRoute } from './router.js';

/** The project's folder: `web/` holds the page, `dist/web/` its compiled script (src/http and dist/http alike). */
const ROOT = new URL('../../', import.meta.url);

interface PageFile {
  path: string;
  type: string;
}

/** What the asset browser is made of, by the path it is served at. */
const FILES: Record<string, PageFile> = {
  '/': { path: fileURLToPath(new URL('web/index.html', ROOT)), type: 'text/html; charset=utf-8' },
  '/browser/app.js': {
    path: fileURLToPath(new URL('dist/web/browser.js', ROOT)),
    type: 'text/javascript; charset=utf-8',
  },
  '/browser/app.css': { path: fileURLToPath(new URL('web/browser.css', ROOT)), type: 'text/css; charset=utf-8' },
  // The ThumbHash decoder the server encodes with, as the ES module it ships.
  '/browser/thumbhash.js': {
    path: createRequire(import.meta.url).resolve('thumbhash'),
    type: 'text/javascript; charset=utf-8',
  },
};

/**
 * The page's Content-Security-Policy: scripts, styles and requests from the gateway only;
 * images from it (renditions under PUBLIC_URL) and ThumbHash placeholders as data: URLs.
 */
export function browserPolicy(publicUrl: string): string {
  const origin = new URL(publicUrl).origin;
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    `img-src 'self' data: ${origin}`,
    `connect-src 'self' ${origin}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/**
 * The asset browser's routes: each file read once and kept, answered to GET and HEAD with
 * an ETag, `no-cache` (so a new version is seen on the next load) and the strict policy.
 */
export function createBrowserRoutes(publicUrl: string): Record<string, ExactRoute> {
  const policy = browserPolicy(publicUrl);
  const loaded = new Map<string, Promise<{ body: Buffer; etag: string }>>();
  const load = (file: PageFile) => {
    let entry = loaded.get(file.path);
    if (!entry) {
      entry = readFile(file.path).then((body) => ({
        body,
        etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
      }));
      // A file missing now (not built yet) is looked for again next time.
      entry.catch(() => loaded.delete(file.path));
      loaded.set(file.path, entry);
    }
    return entry;
  };
  const serve = (file: PageFile) => async (req: IncomingMessage, res: ServerResponse) => {
    let content;
    try {
      content = await load(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8', 'Retry-After': '5' });
      res.end('The asset browser is not built yet: run `npm run build`.\n');
      return;
    }
    res.setHeader('Content-Security-Policy', policy);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('Cache-Control', 'no-cache');
    res.setHeader('ETag', content.etag);
    if (req.headers['if-none-match'] === content.etag) {
      res.statusCode = 304;
      res.end();
      return;
    }
    res.setHeader('Content-Type', file.type);
    res.setHeader('Content-Length', content.body.length);
    res.end(req.method === 'HEAD' ? undefined : content.body);
  };
  return Object.fromEntries(
    Object.entries(FILES).map(([path, file]) => [path, answering(['GET', 'HEAD'], serve(file))]),
  );
}
