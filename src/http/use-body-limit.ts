import type { Plugin } from 'graphql-yoga';
import { PayloadTooLargeError } from '../errors.js';
import { toGraphQLError } from './use-error-codes.js';
import { isMultipart } from './use-graphql-upload.js';

/**
 * Caps non-multipart request bodies (JSON, form posts) at `maxBytes`, by header and
 * while reading. Yoga's own cap is off because it would refuse large uploads too.
 */
export function useBodyLimit(maxBytes: number): Plugin {
  const tooLarge = () => toGraphQLError(new PayloadTooLargeError(maxBytes, 'The request body'), { wholeRequest: true });
  return {
    onRequestParse({ request, requestParser, setRequestParser, fetchAPI }) {
      if (isMultipart(request) || !request.body) return;
      const length = request.headers.get('content-length');
      if (length !== null && Number(length) > maxBytes) throw tooLarge();
      // With a Content-Length the HTTP parser already stops the body there: only chunked bodies need counting.
      if (!requestParser || length !== null) return;
      setRequestParser((req) => {
        let read = 0;
        const body = req.body!.pipeThrough(
          new TransformStream<Uint8Array, Uint8Array>({
            transform(chunk, controller) {
              read += chunk.byteLength;
              if (read > maxBytes) controller.error(tooLarge());
              else controller.enqueue(chunk);
            },
          }),
        );
        return requestParser(
          new fetchAPI.Request(req.url, {
            method: req.method,
            headers: req.headers,
            body,
            duplex: 'half',
          } as RequestInit),
        );
      });
    },
  };
}
