import { BadUserInputError } from '../../errors.js';

/** Parses an absolute http(s) URL a client gave, or throws BAD_USER_INPUT naming `field`. */
export function parseHttpUrl(raw: string, field: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new BadUserInputError(field, 'Must be an absolute URL.');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new BadUserInputError(field, 'Only http and https URLs are accepted.');
  }
  if (raw.length > 2048) throw new BadUserInputError(field, 'URL must be at most 2048 characters.');
  return url;
}

const YOUTUBE_ID = /^[A-Za-z0-9_-]{6,20}$/;

/** The player URL for a YouTube or Vimeo page, or null for other providers. */
export function embedUrlFor(url: URL): string | null {
  const host = url.hostname.toLowerCase().replace(/^www\.|^m\./, '');
  let youtube: string | null | undefined;
  if (host === 'youtu.be') youtube = url.pathname.split('/')[1];
  else if (host === 'youtube.com' || host === 'youtube-nocookie.com') {
    const [, first, second] = url.pathname.split('/');
    youtube =
      first === 'watch' ? url.searchParams.get('v') : ['embed', 'shorts', 'live', 'v'].includes(first) ? second : null;
  }
  if (youtube && YOUTUBE_ID.test(youtube)) return `https://www.youtube.com/embed/${youtube}`;
  if (host === 'vimeo.com' || host === 'player.vimeo.com') {
    const id = url.pathname.split('/').find((part) => /^\d+$/.test(part));
    if (id) return `https://player.vimeo.com/video/${id}`;
  }
  return null;
}
