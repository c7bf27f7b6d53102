import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { jobHandlersOf } from '../src/app.js';
import { createJobRunner, type JobRunner } from '../src/jobs/job-runner.js';
import { createTestApp, freePort, listen, pdf, png, type TestApp } from './helpers.js';

/** Debian's Chromium (`.ci/run` installs it); CHROMIUM_PATH names another. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Where a failing test leaves a picture of the page (git-ignored). */
const SCREENSHOTS = path.join(fileURLToPath(new URL('..', import.meta.url)), 'test-results/screenshots');

describe('the asset browser and GraphiQL in headless Chromium', () => {
  let app: TestApp;
  let server: Awaited<ReturnType<typeof listen>>;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let runner: JobRunner | undefined;
  /** Every URL the page asked for, and what it reported as an error (CSP violations included). */
  const requested: string[] = [];
  const problems: string[] = [];

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: install Debian's chromium (.ci/run does)`);
    const port = await freePort();
    // Processing waits for the test to start it, so the page can be seen following it live.
    app = await createTestApp({ PUBLIC_URL: `http://127.0.0.1:${port}` }, { runJobs: false });
    server = await listen(app.handler, undefined, port);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
    page = await context.newPage();
    page.on('request', (request) => requested.push(request.url()));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    page.on('pageerror', (error) => problems.push(error.message));
  });
  after(async () => {
    await runner?.stop();
    await browser?.close();
    await server?.close();
    await app?.dispose();
  });

  /** Runs a step; when it fails, the page as it was is saved under test-results/screenshots. */
  async function step(name: string, body: () => Promise<void>): Promise<void> {
    try {
      await body();
    } catch (error) {
      mkdirSync(SCREENSHOTS, { recursive: true });
      const file = path.join(SCREENSHOTS, `${name.replace(/[^a-z0-9]+/gi, '-')}.png`);
      await page.screenshot({ path: file, fullPage: true }).catch((shot: Error) => {
        (error as Error).message += `\n(no screenshot: ${shot.message})`;
      });
      (error as Error).message += `\nscreenshot: ${file}\npage errors: ${problems.join(' | ') || 'none'}`;
      throw error;
    }
  }

  const card = (text: string) => page.locator('.card', { hasText: text });
  /** Waits until the grid shows exactly these file names, in any order. */
  const gridShows = (names: string[]) =>
    page.waitForFunction(
      (expected) =>
        JSON.stringify([...document.querySelectorAll('.card .name')].map((n) => n.textContent).sort()) ===
        JSON.stringify(expected),
      [...names].sort(),
    );

  test('the page is served whole by the gateway under a strict policy', async () => {
    const response = await fetch(`${server.url}/`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type')!, /^text\/html/);
    const policy = response.headers.get('content-security-policy')!;
    assert.match(policy, /default-src 'none'/);
    assert.match(policy, /script-src 'self'(;|$)/);
    assert.doesNotMatch(policy, /unsafe-inline|unsafe-eval/);
    assert.equal(response.headers.get('referrer-policy'), 'no-referrer');
    await response.text();
    const again = await fetch(`${server.url}/`, { headers: { 'if-none-match': response.headers.get('etag')! } });
    assert.equal(again.status, 304);
    const post = await fetch(`${server.url}/`, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
  });

  test('upload two files, watch them process, search, scroll, open one, copy its URL, delete it', async () => {
    await step('key', async () => {
      await page.goto(`${server.url}/`);
      await page.locator('#key').fill(app.key);
      await page.locator('#key-form button[type=submit]').click();
      await page.locator('#org', { hasText: 'acme (LIVE)' }).waitFor();
      assert.equal(await page.evaluate(() => sessionStorage.getItem('assetgate.key')), app.key);
      assert.equal(await page.evaluate(() => localStorage.length), 0, 'the key is kept in this tab only');
      await page.locator('#more', { hasText: 'Nothing here yet.' }).waitFor();
    });

    await step('upload', async () => {
      await page.locator('#files').setInputFiles([
        { name: 'sunset.png', mimeType: 'image/png', buffer: png(300, 200) },
        { name: 'report.pdf', mimeType: 'application/pdf', buffer: pdf() },
      ]);
      await page.locator('#uploads li[data-done=true]').nth(1).waitFor();
      const bars = await page
        .locator('#uploads progress')
        .evaluateAll((all: HTMLProgressElement[]) => all.map((bar) => [bar.value, bar.max]));
      assert.deepEqual(bars, [
        [png(300, 200).length, png(300, 200).length],
        [pdf().length, pdf().length],
      ]);
      await card('sunset.png').and(page.locator('[data-status=PROCESSING]')).waitFor();
      await card('report.pdf').and(page.locator('[data-status=PROCESSING]')).waitFor();
      assert.equal(await page.locator('.card').count(), 2);
      assert.equal(
        await card('sunset.png').getAttribute('data-placeholder'),
        null,
        'no placeholder before processing made it',
      );
    });

    await step('processing shows live', async () => {
      // A mark on the page: had it reloaded to learn the news, the mark would be gone.
      await page.evaluate(() => ((window as unknown as { mark: number }).mark = 1));
      runner = createJobRunner({
        jobs: app.repositories.jobs,
        handlers: jobHandlersOf(app.services),
        onGiveUp: (job, error) => app.services.processing.giveUp(job, error),
        concurrency: 1,
        clock: Date.now,
        logError: (error) => problems.push(String(error)),
      });
      runner.start();
      const sunset = card('sunset.png').and(page.locator('[data-status=READY]'));
      await sunset.and(page.locator('[data-placeholder=shown][data-thumbnail=loaded]')).waitFor();
      await card('report.pdf').and(page.locator('[data-status=READY]')).waitFor();
      assert.equal(await page.evaluate(() => (window as unknown as { mark?: number }).mark), 1);
      const thumb = sunset.locator('.thumb');
      assert.match(
        await thumb.evaluate((el: HTMLElement) => el.style.backgroundImage),
        /^url\("data:image\/png;base64,/,
      );
      const image = await thumb.locator('img.loaded').evaluate((img: HTMLImageElement) => ({
        src: img.src,
        width: img.naturalWidth,
        opacity: getComputedStyle(img).opacity,
      }));
      assert.match(image.src, /[?&]w=256(&|$)/);
      assert.ok(image.width > 0, 'the thumbnail decoded');
      await page.waitForFunction(
        () => getComputedStyle(document.querySelector('.card[data-thumbnail=loaded] img')!).opacity === '1',
      );
    });

    await step('search and filter', async () => {
      await page.locator('#search').fill('sunset');
      await gridShows(['sunset.png']);
      await page.locator('#search').fill('');
      await page.locator('#type').selectOption('PDF');
      await gridShows(['report.pdf']);
      await page.locator('#type').selectOption('');
      await gridShows(['report.pdf', 'sunset.png']);
    });

    await step('infinite scroll', async () => {
      for (let i = 0; i < 30; i++) {
        const { errors } = await app.gql(
          'mutation ($input: CreateAssetInput!) { createAsset(input: $input) { asset { id } } }',
          { input: { type: 'LINK', title: `bookmark ${i}`, externalUrl: `https://example.com/${i}`, tags: ['bulk'] } },
        );
        assert.equal(errors, undefined);
      }
      await page.locator('#tag').fill('bulk');
      await page.locator('#count', { hasText: '30 assets' }).waitFor();
      assert.equal(await page.locator('.card').count(), 24, 'one page until the end of the grid is in view');
      await page.locator('#more').scrollIntoViewIfNeeded();
      await page.waitForFunction(() => document.querySelectorAll('.card').length === 30);
      await page.locator('#more', { hasText: 'That is all.' }).waitFor();
      await page.locator('#tag').fill('');
      await page.waitForFunction(() => document.querySelectorAll('.card').length === 24);
    });

    let signed = '';
    await step('detail and signed URL', async () => {
      await page.locator('#search').fill('sunset');
      await gridShows(['sunset.png']);
      await card('sunset.png').click();
      const detail = page.locator('#detail');
      await detail.waitFor();
      const fields = await page.locator('#detail-fields').innerText();
      assert.match(fields, /300 × 200/);
      assert.match(fields, /image\/png/);
      assert.match(fields, /sha256:[0-9a-f]{64}/);
      await page.locator('#copy-url').click();
      const field = page.locator('#signed-url');
      await field.waitFor();
      signed = await field.inputValue();
      assert.ok(signed.startsWith(`${server.url}/dl/`), signed);
      assert.equal(await page.evaluate(() => navigator.clipboard.readText()), signed);
      const response = await fetch(signed);
      assert.equal(response.status, 200);
      assert.deepEqual(Buffer.from(await response.arrayBuffer()), png(300, 200));
    });

    await step('delete', async () => {
      const id = await page.locator('#detail').getAttribute('data-id');
      await page.locator('#delete').click();
      await page.locator('#delete', { hasText: 'Click again to delete' }).waitFor();
      assert.equal(await card('sunset.png').count(), 1, 'one click does not delete');
      await page.locator('#delete').click();
      await page.locator('#detail').waitFor({ state: 'hidden' });
      assert.equal(await card('sunset.png').count(), 0);
      const { data } = await app.gql('query ($id: ID!) { asset(id: $id) { id } }', { id });
      assert.equal(data.asset, null);
      const stale = await fetch(signed);
      assert.ok([403, 404, 410].includes(stale.status), `the deleted asset's URL answered ${stale.status}`);
      await stale.arrayBuffer();
    });

    await step('nothing from elsewhere, nothing refused', async () => {
      const foreign = requested.filter((url) => !url.startsWith(server.url) && !url.startsWith('data:'));
      assert.deepEqual(foreign, []);
      assert.deepEqual(problems, []);
    });
  });

  test('GraphiQL from an empty profile: opens clean under a policy, Docs list Asset, runs with the key of the tab, keeps nothing in localStorage', async () => {
    const fresh = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const graphiql = await fresh.newPage();
    const errors: string[] = [];
    graphiql.on('console', (message) => {
      if (message.type() === 'error') errors.push(message.text());
    });
    graphiql.on('pageerror', (error) => errors.push(error.message));
    try {
      const response = await graphiql.goto(`${server.url}/graphql`);
      const policy = response!.headers()['content-security-policy'] ?? '';
      assert.match(policy, /default-src 'none'/);
      assert.match(policy, /script-src 'sha256-[^']+'(;|$)/);
      assert.doesNotMatch(policy, /script-src[^;]*unsafe/);
      await graphiql.locator('.graphiql-container').first().waitFor();
      await graphiql.locator('[aria-label="Show Documentation Explorer"]').click();
      await graphiql.locator('.graphiql-doc-explorer').getByText('Query', { exact: true }).first().click();
      await graphiql.locator('.graphiql-doc-explorer').getByText('Asset', { exact: true }).first().waitFor();
      assert.doesNotMatch((await graphiql.locator('.graphiql-response').textContent()) ?? '', /error/i);
      assert.match((await graphiql.locator('.graphiql-query-editor').textContent()) ?? '', /query\s+Viewer/);

      // The key entered on the asset page in this tab is GraphiQL's header there.
      await graphiql.goto(`${server.url}/`);
      await graphiql.locator('#key').fill(app.key);
      await graphiql.locator('#key-form button[type=submit]').click();
      await graphiql.locator('#org', { hasText: 'acme' }).waitFor();
      await graphiql.goto(`${server.url}/graphql?query=${encodeURIComponent('{ viewer { org scopes } }')}`);
      await graphiql.locator('.graphiql-container').first().waitFor();
      await graphiql.locator('.graphiql-execute-button').click();
      await graphiql.locator('.graphiql-response', { hasText: '"org": "acme"' }).waitFor();
      const stored = await graphiql.evaluate(() => JSON.stringify({ ...localStorage }));
      assert.doesNotMatch(stored, new RegExp(app.key.slice(-12)), 'no key in localStorage');
      assert.deepEqual(
        errors.filter((text) => /Content Security Policy|ISO-8859-1|Error fetching/i.test(text)),
        [],
      );
    } catch (error) {
      mkdirSync(SCREENSHOTS, { recursive: true });
      await graphiql.screenshot({ path: path.join(SCREENSHOTS, 'graphiql-fresh.png'), fullPage: true });
      (error as Error).message += `\npage errors: ${errors.join(' | ') || 'none'}`;
      throw error;
    } finally {
      await fresh.close();
    }
  });

  test('GraphiQL renders offline and runs a query with the key from its headers tab', async () => {
    const graphiql = await context.newPage();
    const asked: string[] = [];
    graphiql.on('request', (request) => asked.push(request.url()));
    await graphiql.addInitScript(
      ([key]) => {
        sessionStorage.setItem('graphiql:query', '{ viewer { org scopes } }');
        sessionStorage.setItem('graphiql:headers', JSON.stringify({ Authorization: `Bearer ${key}` }));
      },
      [app.key],
    );
    try {
      await graphiql.goto(`${server.url}/graphql`);
      await graphiql.locator('.graphiql-container').first().waitFor();
      await graphiql.locator('.graphiql-execute-button').click();
      await graphiql.locator('.graphiql-response', { hasText: '"org": "acme"' }).waitFor();
      assert.deepEqual(
        asked.filter((url) => !url.startsWith(server.url) && !url.startsWith('data:') && !url.startsWith('blob:')),
        [],
        'GraphiQL loads nothing from a CDN',
      );
    } catch (error) {
      mkdirSync(SCREENSHOTS, { recursive: true });
      await graphiql.screenshot({ path: path.join(SCREENSHOTS, 'graphiql.png'), fullPage: true });
      throw error;
    } finally {
      await graphiql.close();
    }
  });
});
