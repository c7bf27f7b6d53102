import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { GraphiQLOptions, Plugin } from 'graphql-yoga';

/** Where the asset page keeps the key for this tab (web/browser.ts). */
const KEY_STORE = 'assetgate.key';

/**
 * GraphiQL served whole by the gateway (no CDN). It keeps its tabs and headers in
 * sessionStorage (this tab only, as the asset page does with the key) and opens with the
 * key the asset page holds for this tab, or with no header at all: a placeholder would be
 * sent as a header and break the schema fetch. Its one inline script is allowed by hash.
 * The page is built on the first visit: its bundle is 28 MiB of strings that a process
 * serving no GraphiQL should not hold.
 */
export function createGraphiQLPage(options: GraphiQLOptions) {
  let page: Promise<Page> | undefined;
  const load = () => (page ??= build(options));
  /**
   * Adds the page's policy to the GraphiQL answer (an HTML answer of the GraphQL route), and
   * sends it gzipped to a browser that takes gzip: 9 MB of script become about a quarter.
   */
  const useGraphiQLPolicy = (): Plugin => ({
    async onResponse({ request, response, setResponse, fetchAPI }) {
      if (!response.headers.get('content-type')?.startsWith('text/html')) return;
      const { html, policy, gzipped } = await load();
      const headers: Record<string, string> = {
        'content-type': 'text/html; charset=utf-8',
        'content-security-policy': policy,
        'referrer-policy': 'no-referrer',
        vary: 'Accept-Encoding',
      };
      if (/\bgzip\b/.test(request.headers.get('accept-encoding') ?? '')) {
        headers['content-encoding'] = 'gzip';
        setResponse(new fetchAPI.Response(gzipped, { status: 200, headers }));
      } else setResponse(new fetchAPI.Response(html, { status: 200, headers }));
    },
  });
  return { render: async () => (await load()).html, useGraphiQLPolicy };
}

interface Page {
  html: string;
  gzipped: Uint8Array<ArrayBuffer>;
  policy: string;
}

async function build(options: GraphiQLOptions): Promise<Page> {
  const { css, editorWorkerService, favicon, graphqlWorker, js, jsonWorker } =
    await import('@graphql-yoga/render-graphiql/graphiql');
  const script = `
const blob = (code) => URL.createObjectURL(new Blob([code], { type: 'application/javascript' }));
const workers = {
  editorWorkerService: blob(${JSON.stringify(editorWorkerService)}),
  json: blob(${JSON.stringify(jsonWorker)}),
  graphql: blob(${JSON.stringify(graphqlWorker)}),
};
self.MonacoEnvironment = { globalAPI: false, getWorkerUrl: (moduleId, label) => workers[label] };
${js};
const key = sessionStorage.getItem(${JSON.stringify(KEY_STORE)});
YogaGraphiQL.renderYogaGraphiQL(document.querySelector('#root'), {
  ...${JSON.stringify(options).replace(/</g, '\\u003c')},
  headers: JSON.stringify(key ? { Authorization: 'Bearer ' + key } : {}, null, 2),
  storage: sessionStorage,
});`;
  const hash = createHash('sha256').update(script).digest('base64');
  const policy = [
    "default-src 'none'",
    `script-src 'sha256-${hash}'`,
    'worker-src blob:',
    "style-src 'self' 'unsafe-inline'", // the editor sets styles as it lays out
    "img-src 'self' data:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  const html = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>${options.title ?? 'GraphiQL'}</title>
    <link rel="icon" href="${favicon}" />
    <style>${css}</style>
  </head>
  <body id="body" class="no-focus-outline">
    <noscript>You need to enable JavaScript to run this app.</noscript>
    <div id="root"></div>
    <script>${script}</script>
  </body>
</html>`;
  return { html, gzipped: new Uint8Array(await promisify(gzip)(html)), policy };
}
