import type { IncomingMessage, ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { getOperationAST } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { sql } from 'kysely';
import type { BlobStore } from '../blob/index.js';
import type { Db } from '../db/database.js';
import type { BacklogFigures } from '../jobs/backlog.js';
import { OPERATION_NAME_MAX } from '../observability/metric-labels.js';
import type { Metrics } from '../observability/metrics.js';
import type { Context } from '../schema/context.js';
import { AppError, NotFoundError, UnauthenticatedError } from '../errors.js';
import { annotate } from './observe.js';
import { answering } from './router.js';

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(text);
}

/** What GraphiQL opens with: who the key is, the first page of assets, previews, and an upload URL. */
export const GRAPHIQL_EXAMPLE = `# Welcome to assetgate. Put your API key in the Headers tab below:
#   { "Authorization": "Bearer sk_live_..." }
# then run an operation with ▶.

query Viewer {
  viewer { org scopes mode usage { assetCount bytesStored } }
}

query FirstPage {
  assets(first: 20) {
    totalCount
    edges { node { id title type status size mimeType thumbnailUrl url } }
    pageInfo { hasNextPage endCursor }
  }
}

# PDFs, videos and audio have pictures too, made after upload: the first page, the poster
# frame (the first picture from 10% in that is not black) or the waveform; previewFailure
# says why one could not be made. Another page or frame: PageOrFrame, with the ids in the
# Variables tab: { "pdf": "…", "video": "…" }.
query Previews {
  assets(first: 10, filter: { types: [PDF, VIDEO, AUDIO] }) {
    edges {
      node {
        id title type pageCount duration
        preview: imageUrl(width: 512, format: WEBP)
        srcSet(widths: [256, 512, 1024], format: WEBP)
        metadata { previewFailure }
      }
    }
  }
}

query PageOrFrame($pdf: ID!, $video: ID!) {
  pdf: asset(id: $pdf) { pageCount page2: imageUrl(width: 1024, page: 2) }
  video: asset(id: $video) { duration at2s: imageUrl(width: 1024, time: 2.5) }
}

mutation UploadUrl {
  createUploadUrl(input: { filename: "hello.txt", size: 6 }) {
    uploadUrl expiresAt asset { id status }
  }
}
`;

const READY_PROBE_KEY = '00/00000000-0000-4000-8000-000000000000';

/**
 * Whether this gateway should get traffic: its database answers, its blob store answers
 * (a `head` of a key that is never written), and it is not shutting down. It also carries
 * the processing `backlog` (null when the database does not answer), which never makes it 503.
 */
export async function readiness(deps: {
  db: Db;
  blobs: BlobStore;
  backlog: () => Promise<BacklogFigures>;
  shuttingDown: () => boolean;
}) {
  const check = async (probe: () => Promise<unknown>) => {
    try {
      await Promise.race([
        probe(),
        new Promise((_, reject) => setTimeout(() => reject(new Error('no answer in 2 s')), 2000).unref()),
      ]);
      return 'up';
    } catch (error) {
      return `down: ${(error as Error).message}`.slice(0, 200);
    }
  };
  let backlog: BacklogFigures | null = null;
  const [database, store] = await Promise.all([
    check(async () => {
      await sql`select 1`.execute(deps.db);
      backlog = await deps.backlog();
    }),
    check(() => deps.blobs.head(READY_PROBE_KEY)),
  ]);
  const shuttingDown = deps.shuttingDown();
  // The backlog informs (an orchestrator scales workers on it) but never turns the answer
  // 503: a gateway behind on processing still serves requests well.
  return { ok: database === 'up' && store === 'up' && !shuttingDown, database, store, shuttingDown, backlog };
}

/** `/metrics`: Prometheus text for a caller with the bearer token; without METRICS_TOKEN there are none (404). */
export function createMetricsRoute(metrics: Metrics, token: string | null) {
  return answering(['GET', 'HEAD'], async (req: IncomingMessage, res: ServerResponse) => {
    if (token === null) throw new NotFoundError('Metrics', 'Metrics are off (METRICS_TOKEN).');
    const given = Buffer.from(/^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? '');
    const expected = Buffer.from(token);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      res.setHeader('WWW-Authenticate', 'Bearer');
      throw new UnauthenticatedError('The metrics token is required.');
    }
    res.statusCode = 200;
    res.setHeader('Content-Type', metrics.registry.contentType);
    res.setHeader('Cache-Control', 'no-store');
    res.end(await metrics.registry.metrics());
  });
}

/**
 * Counts GraphQL operations by name and outcome, and names the operation in the request's
 * log line. A name becomes a label once a key's request under it succeeded (see
 * `createOperationNames`): names an anonymous caller invents all count as `other`.
 */
export function useOperationMetrics(metrics: Metrics): Plugin<Context> {
  return {
    onExecute({ args }) {
      const operation = getOperationAST(args.document, args.operationName);
      const name = (operation?.name?.value ?? `anonymous ${operation?.operation ?? 'operation'}`).slice(
        0,
        OPERATION_NAME_MAX,
      );
      const context = args.contextValue as Context;
      if (context.req) annotate(context.req, { operation: name });
      return {
        onExecuteDone({ result }) {
          if (Symbol.asyncIterator in result) return; // a subscription: its events are not operations
          const first = result.errors?.[0];
          if (!first) return metrics.operation(name, 'ok', context.principal != null);
          const original = first.originalError;
          const code =
            first.extensions?.code ?? (original instanceof AppError ? original.code : 'INTERNAL_SERVER_ERROR');
          metrics.operation(name, String(code), false);
        },
      };
    },
  };
}
