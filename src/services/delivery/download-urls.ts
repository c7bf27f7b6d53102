import { randomUUID } from 'node:crypto';
import type { Principal } from '../../auth/principal.js';
import { tenantOf } from '../../auth/principal.js';
import { SignatureError, type UrlClaims, type UrlSigner } from '../../auth/url-signer.js';
import type { AssetRepository } from '../../db/asset-repository.js';
import { type AssetAccess, mayFetch } from '../assets/asset-access.js';
import type { BlobStore } from '../../blob/index.js';
import { contentDisposition } from '../../adapters/content-disposition.js';
import { isActiveType } from '../../adapters/media-type.js';
import { nowIso } from '../../db/database.js';
import type { DownloadTokenRepository } from '../../db/download-token-repository.js';
import type { AssetRow } from '../../db/types.js';
import { BadUserInputError, ForbiddenError, NotFoundError } from '../../errors.js';
import type { AssetEvents } from '../assets/asset-events.js';

const MAX_FETCH_LIMIT = 1_000_000;

export interface DownloadUrlServiceDeps {
  assets: AssetRepository;
  access: AssetAccess;
  blobs: BlobStore;
  /**
   * Hand out URLs of the store itself (a presigned GET) for downloads without a fetch
   * limit, where the store can: the bytes skip the gateway (S3_DIRECT=download|both).
   */
  direct: boolean;
  tokens: DownloadTokenRepository;
  signer: UrlSigner;
  publicUrl: string;
  /** Default and longest lifetime, seconds. */
  defaultTtl: number;
  maxTtl: number;
  /** Most URLs an asset hands out before it goes dark; null for no limit. */
  maxUrlsPerAsset: number | null;
  /** Where an asset that hands out its last URL (and so goes dark) is announced, as any change of it. */
  events: Pick<AssetEvents, 'publish'>;
  clock: () => number;
}

export interface DownloadUrl {
  url: string;
  expiresAt: string;
  remainingFetches: number | null;
}

/** The asset and grant behind a signed download URL that checked out. */
export interface SignedDownload {
  asset: AssetRow;
  claims: UrlClaims;
}

/** Expiring, optionally fetch-limited download URLs. */
export class DownloadUrlService {
  constructor(private readonly deps: DownloadUrlServiceDeps) {}

  async create(
    principal: Principal,
    assetId: string,
    /** `throughGateway`: never the store's own URL (renditions are made by the gateway). */
    options: { expiresIn?: number | null; maxFetches?: number | null; throughGateway?: boolean },
  ): Promise<DownloadUrl> {
    const { deps } = this;
    const tenant = tenantOf(principal);
    const [asset] = await deps.assets.findByIds(tenant, [assetId]);
    if (!asset) throw new NotFoundError();
    if (!asset.blob_key) throw new BadUserInputError('id', 'This asset has no stored bytes to download.');
    if (options.expiresIn != null && (!Number.isInteger(options.expiresIn) || options.expiresIn < 1)) {
      throw new BadUserInputError('expiresIn', 'expiresIn is a whole number of seconds, at least 1.');
    }
    const maxFetches = options.maxFetches ?? null;
    if (maxFetches !== null && (!Number.isInteger(maxFetches) || maxFetches < 1 || maxFetches > MAX_FETCH_LIMIT)) {
      throw new BadUserInputError('maxFetches', `maxFetches is between 1 and ${MAX_FETCH_LIMIT}.`);
    }
    // Longer lifetimes than the deployment allows are cut to its maximum; expiresAt says so.
    const ttl = Math.min(options.expiresIn ?? deps.defaultTtl, deps.maxTtl);
    const now = deps.clock();
    const expires = Math.floor(now / 1000) + ttl;
    const expiresAt = new Date(expires * 1000).toISOString();

    const counted = await deps.assets.countIssuedUrl(tenant, asset.id, {
      limit: deps.maxUrlsPerAsset,
      now: nowIso(() => now),
    });
    if (!counted) throw new NotFoundError(); // exhausted between the read and the count
    // Its last URL: gone for the API from now on, so what holds its answers (subscriptions, warm renditions) hears it.
    if (counted.exhausted_at !== null) await deps.events.publish(counted);
    // Straight from the store: not for counted URLs (the gateway counts), nor for active types
    // (HTML, SVG…), which the gateway serves only as sandboxed attachments.
    const mimeType = asset.mime_type ?? 'application/octet-stream';
    if (
      deps.direct &&
      !options.throughGateway &&
      maxFetches === null &&
      deps.blobs.presignGet &&
      !isActiveType(mimeType)
    ) {
      const url = await deps.blobs.presignGet(asset.blob_key, {
        expiresIn: ttl,
        contentType: mimeType,
        contentDisposition: contentDisposition('inline', asset.filename ?? 'file'),
      });
      return { url, expiresAt, remainingFetches: null };
    }
    const tokenId = maxFetches === null ? undefined : randomUUID();
    if (tokenId) {
      await deps.tokens.insert({
        id: tokenId,
        asset_id: asset.id,
        max_fetches: maxFetches!,
        expires_at: expiresAt,
        created_at: nowIso(() => now),
      });
    }
    const token = deps.signer.sign({
      method: 'GET',
      assetId: asset.id,
      version: asset.url_version,
      expires,
      tokenId,
      maxFetches: maxFetches ?? undefined,
      keyId: principal.keyId,
    });
    const name = encodeURIComponent(asset.filename ?? 'file');
    return { url: `${deps.publicUrl}/dl/${token}/${name}`, expiresAt, remainingFetches: maxFetches };
  }

  /**
   * Checks a signed download URL. Tampered, foreign-key and expired tokens, and those
   * of a key revoked since, are FORBIDDEN (403); an asset that is gone, replaced, made
   * private since, no longer readable by the key, without bytes, or whose fetches are
   * used up is NOT_FOUND (404). GET and HEAD alike.
   */
  async open(token: string): Promise<SignedDownload> {
    const { deps } = this;
    let claims: UrlClaims;
    try {
      claims = deps.signer.verify(token, 'GET');
    } catch (error) {
      if (error instanceof SignatureError) throw new ForbiddenError('This link is invalid or has expired.');
      throw error;
    }
    const grantor = await deps.access.principalOfKey(claims.keyId);
    if (!grantor) throw new ForbiddenError('This link is invalid or has expired.');
    const asset = await deps.assets.findByIdAnyTenant(claims.assetId);
    if (!asset?.blob_key || asset.url_version !== claims.version || !mayFetch(grantor, asset)) {
      throw new NotFoundError();
    }
    if (claims.tokenId && !((await deps.tokens.remaining(claims.tokenId)) ?? 0)) throw new NotFoundError();
    return { asset, claims };
  }

  /** Counts one completed download of an asset (by key or by signed URL). */
  countDownload(assetId: string): Promise<void> {
    return this.deps.assets.countDownloadAnyTenant(assetId);
  }

  /** Takes one fetch of a limited URL; false when it is used up. Unlimited URLs always pass. */
  async consume(claims: UrlClaims): Promise<{ ok: boolean; remaining: number | null }> {
    if (!claims.tokenId) return { ok: true, remaining: null };
    const remaining = await this.deps.tokens.consume(claims.tokenId);
    return { ok: remaining !== null, remaining };
  }
}
