import { UnsupportedMediaTypeError } from '../../errors.js';

/** Checks a sniffed media type against a deployment's lists; throws UNSUPPORTED_MEDIA_TYPE when refused. */
export type MediaPolicy = (mimeType: string) => void;

function matches(mimeType: string, pattern: string): boolean {
  return pattern.endsWith('/*') ? mimeType.startsWith(pattern.slice(0, -1)) : mimeType === pattern;
}

/** Denied patterns win; with allowed patterns, nothing else gets in. Patterns: `type/subtype` or `type/*`. */
export function createMediaPolicy(allowed: readonly string[], denied: readonly string[]): MediaPolicy {
  return (mimeType) => {
    if (
      denied.some((p) => matches(mimeType, p)) ||
      (allowed.length > 0 && !allowed.some((p) => matches(mimeType, p)))
    ) {
      throw new UnsupportedMediaTypeError(`Files of type ${mimeType} are not accepted here.`);
    }
  };
}
