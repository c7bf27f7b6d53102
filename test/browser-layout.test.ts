import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { createTestApp, freePort, listen, pdf, type TestApp } from './helpers.js';
import { lyingAboutSize, makeVideo } from './preview-fixtures.js';
import { pdfWithText, wav } from './samples.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Where pictures of the page are kept for people to look at (not compared). */
const SCREENSHOTS = path.join(fileURLToPath(new URL('..', import.meta.url)), 'test-results/screenshots');
const UNITS: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

/** "5.9 KiB" → about 6042 bytes; throws on any other unit (the page speaks binary units only). */
function bytesOf(text: string): number {
  const match = /^([\d.]+) (B|KiB|MiB|GiB)$/.exec(text.trim());
  assert.ok(match, `"${text}" is not a size in binary units`);
  return Number(match[1]) * UNITS[match[2]];
}

/** A CSV of exactly `size` bytes, different on every call so the gateway stores each. */
function csv(size: number): Buffer {
  const header = `id,value,${Math.random()}\n`;
  return Buffer.from(header + '1,2\n'.repeat(size).slice(0, size - header.length));
}

describe('the asset browser on a phone and a desktop, in headless Chromium', () => {
  let app: TestApp;
  let server: Awaited<ReturnType<typeof listen>>;
  let browser: Browser;

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: install Debian's chromium (.ci/run does)`);
    const port = await freePort();
    app = await createTestApp({ PUBLIC_URL: `http://127.0.0.1:${port}` });
    server = await listen(app.handler, undefined, port);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    await app?.dispose();
  });

  /** A page of the given width, opened with the key (which has every scope: a long list). */
  async function openAt(width: number): Promise<Page> {
    const page = await browser.newPage({ viewport: { width, height: 844 } });
    await page.goto(`${server.url}/`);
    await page.locator('#key').fill(app.key);
    await page.locator('#key-form button[type=submit]').click();
    await page.locator('#org', { hasText: 'acme (LIVE)' }).waitFor();
    return page;
  }

  const overflow = (page: Page) =>
    page.evaluate(() => {
      const root = document.scrollingElement!;
      return { scrollWidth: root.scrollWidth, clientWidth: root.clientWidth };
    });

  test('upload progress counts the file, never past 100%, in the units the CLI uses', async () => {
    const page = await openAt(1280);
    try {
      // Every text the upload row shows, as it changes.
      await page.evaluate(() => {
        const seen: string[] = [];
        (window as unknown as { seen: string[] }).seen = seen;
        new MutationObserver(() => {
          for (const aside of document.querySelectorAll('#uploads .aside')) seen.push(aside.textContent ?? '');
        }).observe(document.getElementById('uploads')!, { subtree: true, childList: true, characterData: true });
      });
      const file = csv(6000);
      await page.locator('#files').setInputFiles([{ name: 'readings.csv', mimeType: 'text/csv', buffer: file }]);
      await page.locator('#uploads li[data-done=true]').waitFor();
      const seen = await page.evaluate(() => (window as unknown as { seen: string[] }).seen);
      const progress = seen.filter((text) => text.includes(' of '));
      assert.ok(progress.length > 0, `no progress was shown: ${JSON.stringify(seen)}`);
      for (const text of progress) {
        const [sent, total] = text.split(' of ').map(bytesOf);
        assert.ok(sent <= total, `progress past the file: "${text}"`);
        assert.equal(total, bytesOf('5.9 KiB'));
      }
      assert.equal(progress.at(-1), '5.9 KiB of 5.9 KiB');

      const card = page.locator('.card[data-status=READY]', { hasText: 'readings.csv' });
      await card.waitFor();
      assert.equal(await card.locator('.status').innerText(), 'DATA · 5.9 KiB');
      await card.click();
      assert.match(await page.locator('#detail-fields').innerText(), /5\.9 KiB \(6000 bytes\)/);
    } finally {
      await page.close();
    }
  });

  test('PDFs, videos and audio show their preview once made; files without a picture a labelled icon of their kind', async () => {
    const page = await openAt(1280);
    try {
      await page.locator('#files').setInputFiles([
        { name: 'report.pdf', mimeType: 'application/pdf', buffer: pdfWithText(2) },
        { name: 'clip.mp4', mimeType: 'video/mp4', buffer: makeVideo(2) },
        { name: 'wide.mp4', mimeType: 'video/mp4', buffer: lyingAboutSize(makeVideo(1), 60_000, 60_000) },
        { name: 'tone.wav', mimeType: 'audio/wav', buffer: wav(1, 8000, 0.8) },
        { name: 'table.csv', mimeType: 'text/csv', buffer: csv(300) },
        { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('plain words') },
      ]);
      const card = (name: string) => page.locator('.card', { hasText: name });
      for (const name of ['report.pdf', 'clip.mp4', 'tone.wav']) {
        const img = card(name).locator('img.loaded');
        await img.waitFor();
        const drawn = await img.evaluate((el: HTMLImageElement) => ({ width: el.naturalWidth, src: el.src }));
        assert.ok(drawn.width > 0, `${name}: the preview is a picture`);
        assert.match(drawn.src, /w=256/, name);
        assert.equal(await card(name).locator('.file-icon').count(), 0, `${name}: no icon once the preview shows`);
      }
      mkdirSync(SCREENSHOTS, { recursive: true });
      await page.screenshot({ path: path.join(SCREENSHOTS, 'asset-page-previews.png') });
      // The detail panel shows the picture large; a preview that could not be made says why.
      await card('clip.mp4').click();
      const large = page.locator('#detail-image');
      await page.waitForFunction(() => (document.getElementById('detail-image') as HTMLImageElement).naturalWidth > 0);
      assert.match((await large.getAttribute('src')) ?? '', /w=768/);
      const icon = (name: string) => card(name).locator('.file-icon');
      await card('wide.mp4').and(page.locator('[data-status=READY]')).waitFor();
      await icon('wide.mp4').waitFor();
      await card('wide.mp4').click();
      await page.locator('#detail-fields', { hasText: 'not made' }).waitFor();
      assert.match(
        await page.locator('#detail-fields').innerText(),
        /Preview\s+not made: .*declares 60000×60000 pixels/,
      );
      await page.locator('#close').click();
      await icon('table.csv').waitFor();
      await icon('notes.txt').waitFor();
      const look = (name: string) =>
        icon(name).evaluate((el: HTMLElement) => ({
          kind: el.dataset.kind,
          label: el.textContent,
          background: getComputedStyle(el).backgroundColor,
          width: el.getBoundingClientRect().width,
        }));
      const [table, notes] = [await look('table.csv'), await look('notes.txt')];
      assert.deepEqual([table.kind, table.label], ['DATA', 'CSV']);
      assert.equal(notes.kind, 'DOCUMENT');
      assert.notEqual(table.background, notes.background, 'each kind has its colour');
      for (const { background, width } of [table, notes]) {
        assert.doesNotMatch(background, /rgba\(0, 0, 0, 0\)|transparent/);
        assert.ok(width > 40, `the icon is drawn (${width}px wide)`);
      }
      if (process.env.PREVIEW_SCREENSHOT) await page.screenshot({ path: process.env.PREVIEW_SCREENSHOT });
    } finally {
      await page.close();
    }
  });

  for (const width of [390, 1280]) {
    test(`at ${width} px the page never scrolls sideways and the scopes keep to one line`, async () => {
      const page = await openAt(width);
      try {
        await page.locator('.card').first().waitFor();
        // An upload row in flight is part of the layout too: hold one open.
        await page.route('**/graphql', async (route) =>
          route.request().method() === 'POST' && route.request().headers()['x-graphql-yoga-csrf']
            ? new Promise(() => {})
            : route.continue(),
        );
        const name = `a-file-with-a-long-name-${'x'.repeat(60)}.csv`;
        await page.locator('#files').setInputFiles([{ name, mimeType: 'text/csv', buffer: csv(200) }]);
        await page.locator('#uploads li').waitFor();
        const { scrollWidth, clientWidth } = await overflow(page);
        assert.ok(scrollWidth <= clientWidth, `the page is ${scrollWidth} px wide in a ${clientWidth} px window`);
        const org = await page.locator('#org').evaluate((el: HTMLElement) => ({
          height: el.getBoundingClientRect().height,
          line: parseFloat(getComputedStyle(el).lineHeight),
          title: el.title,
        }));
        assert.ok(org.height < org.line * 1.5, `the org line is ${org.height} px high (line ${org.line} px)`);
        assert.match(org.title, /admin:webhooks/, 'the whole list is in the tooltip');
        const fields = await page
          .locator('#filters > *')
          .evaluateAll((all: HTMLElement[]) => all.map((el) => el.getBoundingClientRect().right));
        for (const right of fields) assert.ok(right <= clientWidth, `a filter ends at ${right} px`);
      } finally {
        await page.close();
      }
    });
  }
});
