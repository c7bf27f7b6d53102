/**
 * One page of a PDF as a picture, for the rendition pipeline. Runs in the extraction worker
 * pool (under its time and memory caps): pdfjs parses the document lazily, so page 1 of a
 * 10,000-page file costs page 1, and the page is drawn on @napi-rs/canvas at the scale the
 * asked box needs (never more pixels than `maxImagePixels`, nor a side past PAGE_MAX_SIDE);
 * `renderPage` in the worker then makes the rendition of it by the same `render` as images.
 */
import { readFile, writeFile } from 'node:fs/promises';
import type { PageRenderRequest } from './extract-types.js';

/** Longest side a page is drawn at: the largest rendition box of a page. */
export const PAGE_MAX_SIDE = 4096;
/** Page size in points when the box names no side (a change of format alone): 1024 px wide. */
const DEFAULT_WIDTH = 1024;

/** The scale a page of `pageWidth`×`pageHeight` points is drawn at to fill the asked box, within the caps. */
export function pageScale(
  page: { width: number; height: number },
  box: { width: number | null; height: number | null },
  maxPixels: number,
): number {
  const wanted = Math.max(
    box.width ? box.width / page.width : 0,
    box.height ? box.height / page.height : 0,
    box.width || box.height ? 0 : DEFAULT_WIDTH / page.width,
  );
  const sideCap = PAGE_MAX_SIDE / Math.max(page.width, page.height);
  const pixelCap = Math.sqrt(Math.min(maxPixels, PAGE_MAX_SIDE * PAGE_MAX_SIDE) / (page.width * page.height));
  return Math.min(wanted, sideCap, pixelCap);
}

/**
 * Opens the PDF at `file` with pdfjs, safely: parsed lazily, page by page, as they are asked
 * for. An image of more than `maxImagePixels` on a page being drawn (a decompression bomb: a
 * few bytes that inflate to gigabytes) fails the page before it is inflated.
 */
export async function openPdf(file: string, maxImagePixels = -1) {
  const pdfjs = await import('pdfjs-dist/legacy/build/pdf.mjs');
  return pdfjs.getDocument({
    data: new Uint8Array(await readFile(file)),
    // A document must never run code: no eval, no scripting, no XFA, no fonts loaded into the runtime.
    isEvalSupported: false,
    enableXfa: false,
    disableFontFace: true,
    useSystemFonts: false,
    stopAtErrors: true,
    maxImageSize: maxImagePixels,
    verbosity: 0,
  }).promise;
}

/** Draws page `request.page` (1-based) of the PDF at `request.path` to `request.picture` (PNG). */
export async function drawPage(request: PageRenderRequest): Promise<void> {
  const { createCanvas } = await import('@napi-rs/canvas');
  const document = await openPdf(request.path, request.maxImagePixels);
  try {
    if (request.page > document.numPages) {
      throw new Error(`the document has ${document.numPages} pages, not ${request.page}`);
    }
    const page = await document.getPage(request.page);
    const unit = page.getViewport({ scale: 1 });
    if (!(unit.width >= 1 && unit.height >= 1)) throw new Error('the page has no size');
    const viewport = page.getViewport({ scale: pageScale(unit, request, request.maxImagePixels) });
    const canvas = createCanvas(Math.max(1, Math.ceil(viewport.width)), Math.max(1, Math.ceil(viewport.height)));
    const context = canvas.getContext('2d');
    // Pages are paper: white under whatever the page draws.
    context.fillStyle = '#ffffff';
    context.fillRect(0, 0, canvas.width, canvas.height);
    await page.render({
      canvas: canvas as unknown as HTMLCanvasElement,
      canvasContext: context as unknown as CanvasRenderingContext2D,
      viewport,
    }).promise;
    page.cleanup();
    await writeFile(request.picture, canvas.toBuffer('image/png'));
  } finally {
    await document.destroy();
  }
}
