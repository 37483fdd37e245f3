// Static server for ui/dist on 127.0.0.1 (random port) for the Playwright suite.
// It serves the real production build under the same strict CSP Tauri sets, and
// injects one extra module script (/__e2e/mock-backend.js) before the app's
// own, so the app talks to an in-page fake backend through mockIPC.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const uiRoot = resolve(here, '..');
const dist = join(uiRoot, 'dist');
const E2E_FILES = {
  '/__e2e/mock-backend.js': join(here, 'mock-backend.js'),
  '/__e2e/mocks.js': join(uiRoot, 'node_modules/@tauri-apps/api/mocks.js'),
};

// What src-tauri's tauri.conf.json is expected to set (Tauri adds ipc: itself).
export const CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self' ipc: http://ipc.localhost; object-src 'none'; base-uri 'self'";

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};

/** Starts the server; resolves to { url, close }. */
export async function startServer({ mock = true } = {}) {
  const server = createServer(async (req, res) => {
    try {
      const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      let file;
      if (E2E_FILES[path]) {
        file = E2E_FILES[path];
      } else {
        file = normalize(join(dist, path === '/' ? 'index.html' : path));
        if (!file.startsWith(dist + sep)) {
          res.writeHead(403).end();
          return;
        }
      }
      let body = await readFile(file);
      if (mock && file === join(dist, 'index.html')) {
        const html = body.toString('utf8');
        const i = html.indexOf('<script');
        if (i < 0) throw new Error('dist/index.html has no <script>');
        body = Buffer.from(html.slice(0, i) + '<script type="module" src="/__e2e/mock-backend.js"></script>\n    ' + html.slice(i));
      }
      res.writeHead(200, {
        'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
        'content-security-policy': CSP,
        'cache-control': 'no-store',
      });
      res.end(body);
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    }
  });
  await new Promise((ok, err) => {
    server.once('error', err);
    server.listen({ port: 0, host: '127.0.0.1' }, () => ok(undefined));
  });
  const addr = server.address();
  if (!addr || typeof addr === 'string') throw new Error('no address');
  return {
    url: `http://127.0.0.1:${addr.port}/`,
    close: () => new Promise((ok) => server.close(() => ok(undefined))),
  };
}

// `node e2e/server.mjs`: serve the mocked app for manual poking.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { url } = await startServer();
  console.log(`serving ${dist} with mock IPC at ${url}`);
}
