import type { GraphQLParams, Plugin } from 'graphql-yoga';
import { BadUserInputError } from '../errors.js';
import { toGraphQLError } from './use-error-codes.js';

/** The parameters of a GET or form-encoded request that carry JSON. */
const JSON_PARAMS = ['variables', 'extensions'] as const;

function isFormEncoded(request: Request): boolean {
  const type = (request.headers.get('content-type') ?? '').split(/[,;]/)[0].trim().toLowerCase();
  return request.method === 'POST' && type === 'application/x-www-form-urlencoded';
}

/** The GraphQL parameters of a query string or form body; a JSON one that does not parse is BAD_USER_INPUT. */
function paramsOf(search: URLSearchParams): GraphQLParams {
  const json: Pick<GraphQLParams, (typeof JSON_PARAMS)[number]> = {};
  for (const name of JSON_PARAMS) {
    const text = search.get(name);
    if (!text) continue;
    try {
      json[name] = JSON.parse(text);
    } catch {
      const error = new BadUserInputError(name, `The ${name} parameter is not valid JSON.`);
      throw toGraphQLError(error, { wholeRequest: true });
    }
  }
  return {
    operationName: search.get('operationName') || undefined,
    query: search.get('query') || undefined,
    ...json,
  };
}

/**
 * Parses GET query strings and `application/x-www-form-urlencoded` bodies in place of
 * graphql-yoga's parser, which lets the SyntaxError of a `variables` or `extensions`
 * that is not JSON escape as a 500: here it is a 400 naming the parameter, as a bad
 * JSON body gets.
 */
export function useSearchParams(): Plugin {
  return {
    onRequestParse({ request, requestParser, setRequestParser }) {
      if (!requestParser) return;
      if (request.method === 'GET') {
        setRequestParser((req) => paramsOf(new URL(req.url).searchParams));
      } else if (isFormEncoded(request)) {
        setRequestParser(async (req) => paramsOf(new URLSearchParams(await req.text())));
      }
    },
  };
}
