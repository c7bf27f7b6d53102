import { BadUserInputError } from '../../errors.js';

/** Longest title, as the peers allow. */
export const MAX_TITLE = 500;
export const MAX_DESCRIPTION = 10_000;
export const MAX_TAGS = 50;
export const MAX_TAG_LENGTH = 64;
const MAX_FILENAME_BYTES = 255;

// C0 and C1 controls, DEL, and the bidi overrides that disguise extensions.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/**
 * A client's filename made safe to store and to echo in headers: no folders, no
 * control characters, at most 255 bytes. Never used as a storage key.
 */
export function sanitizeFilename(raw: string | null | undefined): string {
  const base = (raw ?? '').split(/[\\/]/).pop() ?? '';
  let name = base.replace(UNSAFE, '').trim().replace(/^\.+/, '');
  while (Buffer.byteLength(name) > MAX_FILENAME_BYTES) name = name.slice(0, -1);
  return name || 'file';
}

/** The title shown when none is given: the filename without its extension. */
export function titleFromFilename(filename: string): string {
  return filename.replace(/\.[^.]+$/, '') || filename;
}

/** A URL-friendly form of a title: lower case ASCII words joined by dashes. */
export function slugify(title: string): string {
  const slug = title
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 80)
    .replace(/-+$/, '');
  return slug || 'asset';
}

export function validateTitle(title: string, field = 'title'): string {
  const clean = title.replace(UNSAFE, ' ').trim();
  if (!clean) throw new BadUserInputError(field, 'Title must not be empty.');
  if (clean.length > MAX_TITLE) throw new BadUserInputError(field, `Title must be at most ${MAX_TITLE} characters.`);
  return clean;
}

export function validateDescription(description: string | null | undefined): string | null {
  if (description == null) return null;
  if (description.length > MAX_DESCRIPTION) {
    throw new BadUserInputError('description', `Description must be at most ${MAX_DESCRIPTION} characters.`);
  }
  return description;
}

/** Tags trimmed, lower-cased and de-duplicated; bounded in number and length. */
export function normalizeTags(tags: readonly string[] | null | undefined, field = 'tags'): string[] {
  if (!tags) return [];
  const unique = [...new Set(tags.map((tag) => tag.replace(UNSAFE, '').trim().toLowerCase()))];
  if (unique.some((tag) => tag.length === 0)) throw new BadUserInputError(field, 'Tags must not be empty.');
  if (unique.some((tag) => tag.length > MAX_TAG_LENGTH)) {
    throw new BadUserInputError(field, `Tags must be at most ${MAX_TAG_LENGTH} characters.`);
  }
  if (unique.length > MAX_TAGS) throw new BadUserInputError(field, `At most ${MAX_TAGS} tags are allowed.`);
  return unique.sort();
}
