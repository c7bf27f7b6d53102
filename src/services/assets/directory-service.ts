import { randomUUID } from 'node:crypto';
import { nowIso } from '../../db/database.js';
import type { DirectoryRepository } from '../../db/directory-repository.js';
import type { DirectoryRow, Tenant } from '../../db/types.js';
import { BadUserInputError, NotFoundError } from '../../errors.js';

const MAX_NAME = 255;

/** Folder use cases. */
export class DirectoryService {
  constructor(
    private readonly directories: DirectoryRepository,
    private readonly clock: () => number = Date.now,
  ) {}

  async create(tenant: Tenant, input: { name: string; parentId?: string | null }): Promise<DirectoryRow> {
    const name = input.name.replace(/[\u0000-\u001f\u007f/\\]/g, '').trim();
    if (!name || name.length > MAX_NAME) {
      throw new BadUserInputError('name', `Name must be 1 to ${MAX_NAME} characters, without slashes.`);
    }
    if (input.parentId) {
      const [parent] = await this.directories.findByIds(tenant, [input.parentId]);
      if (!parent) throw new NotFoundError('Directory');
    }
    return this.directories.insert({
      id: randomUUID(),
      org_id: tenant.orgId,
      mode: tenant.mode,
      name,
      parent_id: input.parentId ?? null,
      created_at: nowIso(this.clock),
    });
  }

  /** The tenant's folders by id, aligned with `ids` (`undefined` where there is none). */
  findByIds(tenant: Tenant, ids: readonly string[]): Promise<(DirectoryRow | undefined)[]> {
    return this.directories.findByIds(tenant, ids);
  }

  /** Folders under `parentId`, or the top-level ones. */
  list(tenant: Tenant, parentId: string | null): Promise<DirectoryRow[]> {
    return this.directories.list(tenant, parentId);
  }

  async delete(tenant: Tenant, id: string): Promise<void> {
    if (!(await this.directories.delete(tenant, id))) throw new NotFoundError('Directory');
  }
}
