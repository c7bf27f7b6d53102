/**
 * PDF_WORD_PAGES_MAX, pushed past: the words of a PDF longer than the bound are counted on
 * its first pages only, `pageCount` still counts them all, and processing ends READY.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { createTestApp, forEachDialect, processed, type TestApp } from './helpers.js';
import { wordyPdf } from './preview-fixtures.js';

const BOUND = 5;
const WORDS_PER_PAGE = 3;

forEachDialect(() => {
  describe('PDF word counting stops at PDF_WORD_PAGES_MAX pages', () => {
    let app: TestApp;
    before(async () => {
      app = await createTestApp({ PDF_WORD_PAGES_MAX: String(BOUND), SWEEP_INTERVAL: '0' });
    });
    after(() => app.dispose());

    const upload = async (pages: number) => {
      const asset = await app.services.assets.upload(
        { orgId: 'acme', mode: 'live' },
        { stream: Readable.from([wordyPdf(pages)]), filename: `${pages}.pdf` },
      );
      const id = Buffer.from(`Asset:${asset.id}`).toString('base64url');
      return processed(app, id, 'status failureReason type pageCount wordCount');
    };

    test('the bound is read from the environment', () => {
      assert.equal(app.config.pdfWordPagesMax, BOUND);
    });

    test('under the bound, every page counts', async () => {
      const asset = await upload(BOUND - 1);
      assert.equal(asset.status, 'READY', asset.failureReason);
      assert.equal(asset.type, 'PDF');
      assert.equal(asset.pageCount, BOUND - 1);
      assert.equal(asset.wordCount, (BOUND - 1) * WORDS_PER_PAGE, 'each page adds its words');
    });

    test('past the bound, only the first pages count and processing still ends READY', async () => {
      const asset = await upload(4 * BOUND);
      assert.equal(asset.status, 'READY', asset.failureReason);
      assert.equal(asset.pageCount, 4 * BOUND, 'every page is counted as a page');
      assert.equal(asset.wordCount, BOUND * WORDS_PER_PAGE, 'words are counted on the first pages only');
    });
  });
});
