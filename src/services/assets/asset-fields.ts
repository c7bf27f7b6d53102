import type { Insertable, Updateable } from 'kysely';
import type { Readable } from 'node:stream';
import type { AssetsTable } from '../../db/types.js';
import { BadUserInputError } from '../../errors.js';
import { validateDescription, validateTitle } from './naming.js';

/** Fields a client may set on any asset. */
export interface AssetFields {
  title?: string | null;
  description?: string | null;
  tags?: readonly string[] | null;
  directoryId?: string | null;
  isPublic?: boolean | null;
}

/** Fields only an existing asset takes. */
export interface AssetUpdate extends AssetFields {
  /** 0–1 from the left and the top; null forgets it. */
  focalPoint?: { x: number; y: number } | null;
}

/** A file to store: its bytes as a stream and the name the client gave. */
export interface FileInput extends AssetFields {
  stream: Readable;
  filename: string | null;
}

/** Client fields after validation. */
export interface CheckedFields {
  filename: string | null;
  title: string;
  description: string | null;
  tags: string[];
  directoryId: string | null;
}

/** A new asset: validated client fields plus what the caller knows (type, status, bytes…). */
export type NewAsset = Omit<Insertable<AssetsTable>, NewRowKeys> & {
  id?: string;
  fields: CheckedFields;
  isPublic: boolean | null | undefined;
};

type NewRowKeys =
  | 'id'
  | 'org_id'
  | 'mode'
  | 'title'
  | 'slug'
  | 'description'
  | 'filename'
  | 'directory_id'
  | 'is_public'
  | 'created_at'
  | 'updated_at';

/** A LINK or EXTERNAL_VIDEO asset: a URL, no bytes. */
export interface ExternalInput extends AssetFields {
  title: string;
  type: 'LINK' | 'EXTERNAL_VIDEO';
  externalUrl: string;
}

/** Columns that describe stored bytes, as `storeBytes` hands them to its `record` step. */
export interface StoredFile {
  blob_key: string;
  type: string;
  mime_type: string;
  size: number;
  checksum: string;
  width: number | null;
  height: number | null;
}

/** The columns `fields` change on an existing asset, validated (the folder and the tags aside). */
export function patchOf(fields: AssetUpdate): Updateable<AssetsTable> {
  const patch: Updateable<AssetsTable> = {};
  if (fields.title != null) patch.title = validateTitle(fields.title);
  if (fields.description !== undefined) patch.description = validateDescription(fields.description);
  if (fields.isPublic != null) patch.is_public = fields.isPublic ? 1 : 0;
  if (fields.focalPoint !== undefined) {
    const { x, y } = fields.focalPoint ?? { x: null, y: null };
    const inside = (value: number | null) => value === null || (Number.isFinite(value) && value >= 0 && value <= 1);
    if (!inside(x) || !inside(y)) throw new BadUserInputError('focalPoint', 'focalPoint x and y are from 0 to 1.');
    patch.focal_x = x;
    patch.focal_y = y;
  }
  return patch;
}
