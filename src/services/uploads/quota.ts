import type { OrgRepository } from '../../db/org-repository.js';
import type { Repositories } from '../../db/repositories.js';
import { InsufficientStorageError } from '../../errors.js';

/** Reservations grow in steps of this many bytes: one UPDATE per MiB, not per chunk. */
const STEP = 1024 * 1024;

/**
 * Bytes promised to one upload. `ensure` grows the promise as bytes arrive (failing
 * with INSUFFICIENT_STORAGE when the org's quota would be passed; without a quota it
 * promises nothing and costs no statement), `settle` turns it
 * into stored bytes inside the transaction that records the asset, and `release`
 * gives it back when the upload fails.
 */
export class Reservation {
  #reserved = 0;
  #closed = false;

  /** `orgId`'s bytes under `limit` (the QuotaService that opens it), `held` of them reserved already. */
  constructor(
    private readonly limit: Pick<QuotaService, 'orgs' | 'quota'>,
    private readonly orgId: string,
    held = 0,
  ) {
    this.#reserved = held;
  }

  async ensure(total: number): Promise<void> {
    // Without a quota nothing can run out: the stored bytes are counted when the asset is recorded.
    if (this.limit.quota === null || total <= this.#reserved) return;
    const want = Math.ceil(total / STEP) * STEP - this.#reserved;
    if (!(await this.limit.orgs.reserve(this.orgId, want, this.limit.quota))) {
      // What remains may still fit byte for byte (the last step rounds up).
      const exact = total - this.#reserved;
      if (!(await this.limit.orgs.reserve(this.orgId, exact, this.limit.quota))) {
        throw new InsufficientStorageError(`The organization's storage quota of ${this.limit.quota} bytes is used up.`);
      }
      this.#reserved += exact;
      return;
    }
    this.#reserved += want;
  }

  /** Takes the org's row: in the transaction that records the asset, before any copy's row (see BlobRepository). */
  async settle(tx: Pick<Repositories, 'orgs'>, stored: number): Promise<void> {
    this.#closed = true;
    await tx.orgs.settle(this.orgId, this.#reserved, stored);
  }

  /**
   * Hands what is reserved to a record that keeps it (a resumable upload's row, which
   * gives it back when the upload completes or is dropped); returns the bytes.
   */
  handOver(): number {
    this.#closed = true;
    return this.#reserved;
  }

  async release(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.limit.orgs.release(this.orgId, this.#reserved);
  }
}

/** The storage quota of orgs. */
export class QuotaService {
  constructor(
    readonly orgs: OrgRepository,
    readonly quota: number | null,
  ) {}

  /** A reservation for one upload; `held` bytes already reserved for it (by a resumable upload's parts) join it. */
  open(orgId: string, held = 0): Reservation {
    return new Reservation(this, orgId, held);
  }

  /** Fails early when `bytes` more would not fit now (a two-step upload's declared size). */
  async check(orgId: string, bytes: number): Promise<void> {
    if (this.quota === null) return;
    const { used, reserved } = await this.orgs.usage(orgId);
    if (used + reserved + bytes > this.quota) {
      throw new InsufficientStorageError(`The organization's storage quota of ${this.quota} bytes is used up.`);
    }
  }
}
