// The asset browser served at `/`: a key kept in this tab, uploads with progress, a grid
// over cursor pages, filters, live status over SSE, a detail panel with a signed URL, delete.
// Plain DOM, no framework; every text from the server goes in through textContent.
import { thumbHashToDataURL } from './thumbhash.js';

const KEY_STORE = 'assetgate.key';
const PAGE = 24;

const FIELDS = `
  id title filename type status failureReason mimeType size checksum width height pageCount wordCount duration
  tags isPublic createdAt downloadCount
  metadata { placeholder previewFailure }
  thumb: imageUrl(width: 256, height: 256, fit: COVER)
  preview: imageUrl(width: 768)
`;

interface Asset {
  id: string;
  title: string;
  filename: string | null;
  type: string;
  status: string;
  failureReason: string | null;
  mimeType: string | null;
  size: number | null;
  checksum: string | null;
  width: number | null;
  height: number | null;
  pageCount: number | null;
  wordCount: number | null;
  duration: number | null;
  tags: string[];
  isPublic: boolean;
  createdAt: string;
  downloadCount: number;
  metadata: { placeholder: string | null; previewFailure: string | null } | null;
  thumb: string | null;
  preview: string | null;
}

class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const storage = window.sessionStorage;
let key = storage.getItem(KEY_STORE);

function headers(extra: Record<string, string> = {}): Record<string, string> {
  return { authorization: `Bearer ${key}`, ...extra };
}

/** The first error of a GraphQL answer as an ApiError, or the data. */
function unwrap<T>(
  status: number,
  json: { data?: T; errors?: { message: string; extensions?: { code?: string } }[] },
): T {
  const error = json.errors?.[0];
  if (error || !json.data) throw new ApiError(error?.extensions?.code ?? `HTTP_${status}`, error?.message ?? 'no data');
  return json.data;
}

async function gql<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const response = await fetch('/graphql', {
    method: 'POST',
    headers: headers({ 'content-type': 'application/json' }),
    body: JSON.stringify({ query, variables }),
  });
  return unwrap<T>(response.status, await response.json());
}

let toastTimer: number | undefined;
function toast(text: string): void {
  const el = $('toast');
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = window.setTimeout(() => (el.hidden = true), 5000);
}

function failed(error: unknown): void {
  toast(error instanceof ApiError ? `${error.code}: ${error.message}` : String((error as Error).message ?? error));
}

/** Every size on the page, in binary units as the CLI prints them: 1536 → "1.5 KiB". */
function humanSize(bytes: number | null): string {
  if (bytes === null) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
}

/** A card's label for a file without a picture: its extension when short, else its kind. */
function kindLabel(asset: Asset): string {
  const extension = /\.([a-z0-9]{1,4})$/i.exec(asset.filename ?? '')?.[1];
  return (extension ?? asset.type.replace('EXTERNAL_VIDEO', 'VIDEO')).toUpperCase();
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className?: string,
  text?: string,
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// ---- the grid ---------------------------------------------------------------------------

const cards = new Map<string, { asset: Asset; node: HTMLLIElement }>();
let cursor: string | null = null;
let hasMore = true;
let loading = false;
/** Matching assets on the server, as the last page said, moved by uploads and deletes since. */
let total = 0;

function showCount(): void {
  $('count').textContent = `${total} asset${total === 1 ? '' : 's'}`;
  $('more').textContent = hasMore ? (loading ? 'Loading…' : '') : cards.size ? 'That is all.' : 'Nothing here yet.';
}
/** Bumped by every new search, so an answer to an older one is dropped. */
let generation = 0;

function filter(): Record<string, unknown> {
  const search = $<HTMLInputElement>('search').value.trim();
  const type = $<HTMLSelectElement>('type').value;
  const tag = $<HTMLInputElement>('tag').value.trim();
  return {
    ...(search && { search }),
    ...(type && { types: [type] }),
    ...(tag && { tags: [tag] }),
  };
}

/** Draws (or redraws) one card: placeholder first, thumbnail over it once loaded. */
function drawCard(asset: Asset, node = el('li', 'card')): HTMLLIElement {
  node.replaceChildren();
  node.tabIndex = 0;
  node.dataset.id = asset.id;
  node.dataset.status = asset.status;
  const thumb = el('div', 'thumb');
  const placeholder = asset.metadata?.placeholder;
  if (placeholder) {
    const bytes = Uint8Array.from(atob(placeholder), (c) => c.charCodeAt(0));
    thumb.style.backgroundImage = `url("${thumbHashToDataURL(bytes)}")`;
    node.dataset.placeholder = 'shown';
  }
  if (asset.thumb) {
    const img = el('img');
    img.alt = '';
    img.decoding = 'async';
    img.addEventListener('load', () => {
      img.classList.add('loaded');
      node.dataset.thumbnail = 'loaded';
    });
    img.src = asset.thumb;
    thumb.append(img);
  } else {
    // A labelled icon per kind (styled in browser.css): files without a picture, and previews not made yet.
    const icon = el('span', 'file-icon', kindLabel(asset));
    icon.dataset.kind = asset.type;
    icon.title = asset.mimeType ?? asset.type;
    thumb.append(icon);
  }
  const caption = el('div', 'caption');
  const name = el('div', 'name', asset.filename ?? asset.title);
  name.title = asset.title;
  caption.append(name);
  const status = asset.status === 'READY' ? `${asset.type} · ${humanSize(asset.size)}` : asset.status;
  caption.append(el('div', `status ${asset.status}`, status));
  node.append(thumb, caption);
  return node;
}

function show(asset: Asset, { first = false } = {}): void {
  const known = cards.get(asset.id);
  if (known) {
    known.asset = asset;
    drawCard(asset, known.node);
  } else {
    const node = drawCard(asset);
    cards.set(asset.id, { asset, node });
    if (first) $('grid').prepend(node);
    else $('grid').append(node);
  }
  if (asset.status === 'WAITING' || asset.status === 'PROCESSING') void watch(asset.id);
  if (detailId === asset.id) openDetail(asset.id);
}

async function loadPage(): Promise<void> {
  if (loading || !hasMore) return;
  loading = true;
  const mine = generation;
  $('more').textContent = 'Loading…';
  try {
    const { assets } = await gql<{
      assets: {
        totalCount: number;
        edges: { node: Asset }[];
        pageInfo: { hasNextPage: boolean; endCursor: string | null };
      };
    }>(
      `query Browse($first: Int!, $after: String, $filter: AssetFilter) {
        assets(first: $first, after: $after, filter: $filter) {
          totalCount
          edges { node { ${FIELDS} } }
          pageInfo { hasNextPage endCursor }
        }
      }`,
      { first: PAGE, after: cursor, filter: filter() },
    );
    if (mine !== generation) return;
    for (const { node } of assets.edges) show(node);
    cursor = assets.pageInfo.endCursor;
    hasMore = assets.pageInfo.hasNextPage;
    total = assets.totalCount;
  } catch (error) {
    failed(error);
  } finally {
    if (mine === generation) {
      loading = false;
      showCount();
    }
  }
  // The end of the grid may still be in view (a tall window): keep going.
  if (mine === generation && hasMore && nearEnd()) void loadPage();
}

function restart(): void {
  generation++;
  loading = false;
  cursor = null;
  hasMore = true;
  total = 0;
  for (const { id } of [...cards.values()].map((c) => c.asset)) unwatch(id);
  cards.clear();
  $('grid').replaceChildren();
  void loadPage();
}

const MARGIN = 200;
/** Whether the end of the grid is within MARGIN pixels of the window, as laid out now. */
function nearEnd(): boolean {
  return $('more').getBoundingClientRect().top < window.innerHeight + MARGIN;
}
new IntersectionObserver((entries) => entries.some((e) => e.isIntersecting) && void loadPage(), {
  rootMargin: `${MARGIN}px`,
}).observe($('more'));

// ---- live status: assetUpdated over server-sent events ------------------------------------

const streams = new Map<string, AbortController>();

function unwatch(id: string): void {
  streams.get(id)?.abort();
  streams.delete(id);
}

/** Follows one asset until processing ends; a stream that loses access just ends. */
/** Kinds whose picture (first page, poster frame, waveform) is made in the background after READY. */
const PREVIEWED = new Set(['PDF', 'VIDEO', 'AUDIO']);

/** Nothing more will change on its own: failed, or ready with its preview made, failed or not to be made. */
function settled(asset: Asset): boolean {
  if (asset.status === 'FAILED') return true;
  if (asset.status !== 'READY') return false;
  return !!asset.thumb || !PREVIEWED.has(asset.type) || !!asset.metadata?.previewFailure;
}

async function watch(id: string): Promise<void> {
  if (streams.has(id)) return;
  const abort = new AbortController();
  streams.set(id, abort);
  try {
    const response = await fetch('/graphql', {
      method: 'POST',
      headers: headers({ 'content-type': 'application/json', accept: 'text/event-stream' }),
      body: JSON.stringify({
        query: `subscription Watch($id: ID!) { assetUpdated(id: $id) { ${FIELDS} } }`,
        variables: { id },
      }),
      signal: abort.signal,
    });
    if (!response.ok || !response.body) throw new ApiError(`HTTP_${response.status}`, 'the live status stream failed');
    // What happened before the stream opened: asked once, now that nothing can be missed.
    const { asset } = await gql<{ asset: Asset | null }>(`query One($id: ID!) { asset(id: $id) { ${FIELDS} } }`, {
      id,
    });
    if (asset && cards.has(id)) show(asset);
    if (!asset || settled(asset)) return;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = event
          .split('\n')
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5).trim())
          .join('\n');
        if (!data) continue;
        const payload = JSON.parse(data) as { data?: { assetUpdated: Asset } };
        const next = payload.data?.assetUpdated;
        if (!next) continue;
        if (cards.has(id)) show(next);
        if (settled(next)) return;
      }
    }
  } catch (error) {
    if (!abort.signal.aborted) failed(error);
  } finally {
    abort.abort();
    if (streams.get(id) === abort) streams.delete(id);
  }
}

// ---- uploads -------------------------------------------------------------------------------

const UPLOAD = `mutation Upload($input: UploadAssetInput!) { uploadAsset(input: $input) { asset { ${FIELDS} } } }`;

/** One GraphQL multipart request per file, with its progress bar. */
function upload(file: File): Promise<void> {
  const row = el('li');
  const bar = el('progress');
  bar.max = file.size || 1;
  bar.value = 0;
  const state = el('span', 'aside', 'sending');
  row.append(el('span', undefined, file.name), bar, state);
  row.dataset.file = file.name;
  $('uploads').append(row);

  const form = new FormData();
  form.append('operations', JSON.stringify({ query: UPLOAD, variables: { input: { file: null } } }));
  form.append('map', JSON.stringify({ 0: ['variables.input.file'] }));
  form.append('0', file, file.name);
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/graphql');
    for (const [name, value] of Object.entries(headers({ 'x-graphql-yoga-csrf': '1' })))
      xhr.setRequestHeader(name, value);
    xhr.upload.addEventListener('progress', (e) => {
      // The body is the query, the map and the file: count the file's bytes, which end with it.
      const around = e.lengthComputable ? e.total - file.size : 0;
      const sent = Math.max(0, Math.min(file.size, e.loaded - around));
      bar.value = sent;
      state.textContent = `${humanSize(sent)} of ${humanSize(file.size)}`;
    });
    xhr.addEventListener('load', () => {
      try {
        const { uploadAsset } = unwrap<{ uploadAsset: { asset: Asset } }>(xhr.status, JSON.parse(xhr.responseText));
        bar.value = bar.max;
        state.textContent = 'uploaded';
        row.dataset.done = 'true';
        show(uploadAsset.asset, { first: true });
        total++;
        showCount();
        window.setTimeout(() => row.remove(), 4000);
      } catch (error) {
        state.textContent = error instanceof ApiError ? error.code : 'failed';
        row.dataset.done = 'failed';
        failed(error);
      }
      resolve();
    });
    xhr.addEventListener('error', () => {
      state.textContent = 'connection lost';
      row.dataset.done = 'failed';
      resolve();
    });
    xhr.send(form);
  });
}

async function uploadAll(files: FileList | File[]): Promise<void> {
  for (const file of Array.from(files)) await upload(file);
}

// ---- the detail panel ------------------------------------------------------------------------

let detailId: string | null = null;
let armedDelete: number | undefined;

function openDetail(id: string): void {
  const card = cards.get(id);
  if (!card) return;
  const { asset } = card;
  detailId = id;
  $('detail').hidden = false;
  $('detail').dataset.id = id;
  $('detail-title').textContent = asset.title || asset.filename || asset.id;
  const image = $<HTMLImageElement>('detail-image');
  image.hidden = !asset.preview;
  if (asset.preview) image.src = asset.preview;
  const rows: [string, string | number | null][] = [
    ['Status', asset.failureReason ? `${asset.status}: ${asset.failureReason}` : asset.status],
    ['Type', asset.type],
    ['File', asset.filename],
    ['Media type', asset.mimeType],
    ['Size', asset.size === null ? null : `${humanSize(asset.size)} (${asset.size} bytes)`],
    ['Dimensions', asset.width && asset.height ? `${asset.width} × ${asset.height}` : null],
    ['Pages', asset.pageCount],
    ['Words', asset.wordCount],
    ['Duration', asset.duration === null ? null : `${asset.duration.toFixed(1)} s`],
    // A PDF, video or audio file whose picture could not be made says why (its bytes are fine).
    ['Preview', asset.metadata?.previewFailure ? `not made: ${asset.metadata.previewFailure}` : null],
    ['Tags', asset.tags.join(', ') || null],
    ['Public', asset.isPublic ? 'yes' : 'no'],
    ['Downloads', asset.downloadCount],
    ['Checksum', asset.checksum],
    ['Created', new Date(asset.createdAt).toLocaleString()],
    ['ID', asset.id],
  ];
  const list = $('detail-fields');
  list.replaceChildren();
  for (const [name, value] of rows) {
    if (value === null || value === undefined) continue;
    list.append(el('dt', undefined, name), el('dd', undefined, String(value)));
  }
}

function closeDetail(): void {
  detailId = null;
  $('detail').hidden = true;
  $<HTMLInputElement>('signed-url').hidden = true;
  disarmDelete();
}

function disarmDelete(): void {
  clearTimeout(armedDelete);
  armedDelete = undefined;
  $('delete').textContent = 'Delete';
}

async function copyUrl(): Promise<void> {
  if (!detailId) return;
  try {
    const { createDownloadUrl } = await gql<{ createDownloadUrl: { url: string; expiresAt: string } }>(
      'mutation Url($input: CreateDownloadUrlInput!) { createDownloadUrl(input: $input) { url expiresAt } }',
      { input: { id: detailId } },
    );
    const field = $<HTMLInputElement>('signed-url');
    field.value = createDownloadUrl.url;
    field.hidden = false;
    field.select();
    try {
      await navigator.clipboard.writeText(createDownloadUrl.url);
      toast(`Copied; it works until ${new Date(createDownloadUrl.expiresAt).toLocaleString()}`);
    } catch {
      // No clipboard permission (an insecure origin): the URL stands selected in the field.
      toast('Copy the selected URL');
    }
  } catch (error) {
    failed(error);
  }
}

/** Two clicks: the first arms the button for five seconds. */
async function remove(): Promise<void> {
  if (!detailId) return;
  if (armedDelete === undefined) {
    $('delete').textContent = 'Click again to delete';
    armedDelete = window.setTimeout(disarmDelete, 5000);
    return;
  }
  const id = detailId;
  disarmDelete();
  try {
    await gql('mutation Delete($input: DeleteAssetInput!) { deleteAsset(input: $input) { deletedId } }', {
      input: { id },
    });
    unwatch(id);
    cards.get(id)?.node.remove();
    cards.delete(id);
    total--;
    showCount();
    closeDetail();
    toast('Deleted');
  } catch (error) {
    failed(error);
  }
}

// ---- the key and start-up --------------------------------------------------------------------

async function open(): Promise<void> {
  try {
    const { viewer } = await gql<{ viewer: { org: string; mode: string; scopes: string[] } }>(
      '{ viewer { org mode scopes } }',
    );
    $('org').textContent = `${viewer.org} (${viewer.mode}) · ${viewer.scopes.join(' ')}`;
    $('org').title = viewer.scopes.join('\n');
    $('who').hidden = false;
    $('key-form').hidden = true;
    $('app').hidden = false;
    restart();
  } catch (error) {
    storage.removeItem(KEY_STORE);
    key = null;
    $('key-form').hidden = false;
    $('app').hidden = true;
    failed(error);
  }
}

$('key-form').addEventListener('submit', (event) => {
  event.preventDefault();
  key = $<HTMLInputElement>('key').value.trim();
  storage.setItem(KEY_STORE, key);
  $<HTMLInputElement>('key').value = '';
  void open();
});
$('forget').addEventListener('click', () => {
  storage.removeItem(KEY_STORE);
  location.reload();
});

const drop = $('drop');
drop.addEventListener('dragover', (event) => {
  event.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (event) => {
  event.preventDefault();
  drop.classList.remove('over');
  if (event.dataTransfer?.files.length) void uploadAll(event.dataTransfer.files);
});
$<HTMLInputElement>('files').addEventListener('change', (event) => {
  const input = event.target as HTMLInputElement;
  if (input.files?.length) void uploadAll(Array.from(input.files)).then(() => (input.value = ''));
});

let searchTimer: number | undefined;
$('filters').addEventListener('submit', (event) => event.preventDefault());
$('filters').addEventListener('input', () => {
  clearTimeout(searchTimer);
  searchTimer = window.setTimeout(restart, 250);
});

$('grid').addEventListener('click', (event) => {
  const card = (event.target as HTMLElement).closest<HTMLElement>('.card');
  if (card?.dataset.id) openDetail(card.dataset.id);
});
$('grid').addEventListener('keydown', (event) => {
  const card = (event.target as HTMLElement).closest<HTMLElement>('.card');
  if (card?.dataset.id && (event.key === 'Enter' || event.key === ' ')) {
    event.preventDefault();
    openDetail(card.dataset.id);
  }
});
$('close').addEventListener('click', closeDetail);
document.addEventListener('keydown', (event) => {
  if (event.key === 'Escape') closeDetail();
});
$('copy-url').addEventListener('click', () => void copyUrl());
$('delete').addEventListener('click', () => void remove());

if (key) void open();
else $('key-form').hidden = false;
