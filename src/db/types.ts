/**
 * Kysely table types. Timestamps are ISO-8601 strings in UTC with milliseconds
 * (they sort as text on every dialect); booleans are 0/1 integers for the same reason.
 */
import type { Generated, Selectable } from 'kysely';

/** Test keys and live keys see separate data: every tenant row carries its mode. */
export type Mode = 'live' | 'test';

export interface OrgsTable {
  id: string;
  created_at: string;
  /** Bytes of stored assets, both modes: kept with every insert and delete. */
  used_bytes: Generated<number>;
  /** Bytes promised to uploads in flight. */
  reserved_bytes: Generated<number>;
}

export interface DirectoriesTable {
  id: string;
  org_id: string;
  mode: Mode;
  name: string;
  parent_id: string | null;
  created_at: string;
}

export interface AssetsTable {
  id: string;
  org_id: string;
  mode: Mode;
  title: string;
  slug: string;
  description: string | null;
  type: string;
  status: string;
  failure_reason: string | null;
  filename: string | null;
  mime_type: string | null;
  /** Bytes stored; 0 while there is no blob (the API shows null then). */
  size: Generated<number>;
  checksum: string | null;
  blob_key: string | null;
  width: number | null;
  height: number | null;
  page_count: number | null;
  word_count: number | null;
  duration: number | null;
  external_url: string | null;
  embed_url: string | null;
  thumbnail_key: string | null;
  directory_id: string | null;
  is_public: Generated<number>;
  download_count: Generated<number>;
  created_at: string;
  updated_at: string;
  /** Bumped when outstanding signed URLs must die (made private, replaced). */
  url_version: Generated<number>;
  download_urls_issued: Generated<number>;
  /** Set when the asset handed out its last allowed download URL: from then on it is gone. */
  exhausted_at: string | null;
  /** When it went to the trash; null while it is live. */
  trashed_at: string | null;
  /** 1 for the first bytes; each replaceAssetFile adds one. */
  version: Generated<number>;
  /** Two-step uploads: until when the upload URL works. */
  upload_expires_at: string | null;
  declared_size: number | null;
  declared_checksum: string | null;
  /** Resumable uploads: bytes acknowledged so far (null: not a resumable upload). */
  received_bytes: number | null;
  /** Resumable uploads: quota bytes the parts received so far hold, released if the upload is dropped. */
  upload_reserved: Generated<number>;
  /** Where `fit=cover` renditions keep the picture's centre of attention, 0–1 from the left and the top. */
  focal_x: number | null;
  focal_y: number | null;
  /** JSON of `AssetMetadata`: what extraction learnt beyond the contract's columns. */
  metadata: string | null;
  /** The tags, sorted, as one string: indexed for `search` with the other fields. */
  search_tags: string | null;
}

/** Job kinds: `extract` reads metadata and makes thumbnails; `import` fetches a URL first. */
export type JobKind = 'extract' | 'import' | 'direct-upload' | 'preview';

export interface JobsTable {
  id: string;
  kind: JobKind;
  asset_id: string;
  /** The asset's org (null only for jobs queued before jobs knew it). */
  org_id: string | null;
  /** The round the job runs in: its org's previous job's round + 1, never behind the round being served. */
  turn: Generated<number>;
  /** queued → running → done; back to queued for a retry; failed when retries are spent. */
  status: 'queued' | 'running' | 'done' | 'failed';
  attempts: Generated<number>;
  run_at: string;
  locked_by: string | null;
  /** A running job whose lease passed (its worker died) is claimed again. */
  locked_until: string | null;
  last_error: string | null;
  created_at: string;
  updated_at: string;
}

export interface DownloadTokensTable {
  id: string;
  asset_id: string;
  max_fetches: number;
  fetches: Generated<number>;
  expires_at: string;
  created_at: string;
}

export interface AssetTagsTable {
  asset_id: string;
  org_id: string;
  mode: Mode;
  tag: string;
}

export interface ApiKeysTable {
  id: string;
  org_id: string;
  mode: Mode;
  name: string;
  /** Space-separated scopes. */
  scopes: string;
  /** Hex SHA-256 of the whole secret key. */
  key_hash: string;
  /** The first characters of the key, to recognise it in lists. */
  prefix: string;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}

/** One acknowledged chunk of a resumable upload, stored as a blob of its own until the upload completes. */
export interface UploadPartsTable {
  asset_id: string;
  offset: number;
  size: number;
  blob_key: string;
  created_at: string;
}

/** An image rendition: a derived blob made on request from an asset's bytes. */
export interface RenditionsTable {
  asset_id: string;
  /** The normalised parameters and the digest of the bytes it was made from. */
  variant: string;
  org_id: string;
  blob_key: string;
  mime_type: string;
  size: number;
  width: number;
  height: number;
  /** `sha256:<hex>`: its strong ETag. */
  checksum: string;
  /** 1 when it kept the frames of an animated original. */
  animated: Generated<number>;
  created_at: string;
  /** When it was last served (at most a minute behind): the least recently used are evicted first. */
  used_at: string;
}

/** An earlier version of an asset's bytes: what they were, and when they were replaced. */
export interface AssetVersionsTable {
  asset_id: string;
  version: number;
  checksum: string | null;
  size: number;
  mime_type: string | null;
  filename: string | null;
  /** When these bytes were stored. */
  created_at: string;
  replaced_at: string;
}

/** The kinds of asset event, as webhooks subscribe to them. */
export const ASSET_EVENT_TYPES = [
  'asset.created',
  'asset.ready',
  'asset.failed',
  'asset.updated',
  'asset.deleted',
] as const;
export type AssetEventType = (typeof ASSET_EVENT_TYPES)[number];

export interface AssetEventsTable {
  /** Order of recording; the feed's cursor. */
  seq: Generated<number>;
  /** `evt_…`: the `webhook-id` of its deliveries, the same on every retry. */
  id: string;
  org_id: string;
  mode: Mode;
  asset_id: string;
  type: AssetEventType;
  /** JSON of the asset at that moment (`WebhookAsset`). */
  asset: string;
  at: string;
}

export interface WebhooksTable {
  id: string;
  org_id: string;
  mode: Mode;
  url: string;
  /** Space-separated event types. */
  events: string;
  /** `whsec_` + base64 of the signing key. */
  secret: string;
  created_at: string;
  failures: Generated<number>;
  disabled_at: string | null;
  disabled_reason: string | null;
}

export interface WebhookDeliveriesTable {
  id: string;
  webhook_id: string;
  event_id: string;
  event_type: AssetEventType;
  status: 'pending' | 'delivered' | 'failed';
  attempts: Generated<number>;
  run_at: string;
  locked_until: string | null;
  response_status: number | null;
  last_error: string | null;
  created_at: string;
  updated_at: string;
}

/** An org's one copy of some bytes (per mode), and how many assets hold it. */
export interface BlobsTable {
  org_id: string;
  mode: Mode;
  /** `sha256:<hex>` */
  checksum: string;
  blob_key: string;
  size: number;
  /** Assets holding these bytes, the trash included; the bytes go with the last. */
  ref_count: number;
  created_at: string;
}

export interface Database {
  orgs: OrgsTable;
  api_keys: ApiKeysTable;
  directories: DirectoriesTable;
  assets: AssetsTable;
  asset_tags: AssetTagsTable;
  download_tokens: DownloadTokensTable;
  jobs: JobsTable;
  upload_parts: UploadPartsTable;
  renditions: RenditionsTable;
  asset_versions: AssetVersionsTable;
  asset_events: AssetEventsTable;
  webhooks: WebhooksTable;
  webhook_deliveries: WebhookDeliveriesTable;
  blobs: BlobsTable;
}

export type AssetRow = Selectable<AssetsTable>;
export type DirectoryRow = Selectable<DirectoriesTable>;
export type ApiKeyRow = Selectable<ApiKeysTable>;
export type JobRow = Selectable<JobsTable>;
export type UploadPartRow = Selectable<UploadPartsTable>;
export type RenditionRow = Selectable<RenditionsTable>;
export type AssetVersionRow = Selectable<AssetVersionsTable>;
export type AssetEventRow = Selectable<AssetEventsTable>;
export type WebhookRow = Selectable<WebhooksTable>;
export type WebhookDeliveryRow = Selectable<WebhookDeliveriesTable>;
export type BlobRow = Selectable<BlobsTable>;

/** Whose data a query may touch: one org in one mode. Every repository call takes one. */
export interface Tenant {
  orgId: string;
  mode: Mode;
}
