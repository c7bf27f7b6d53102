import type { IncomingMessage, RequestListener } from 'node:http';
import { useGraphQlJit } from '@envelop/graphql-jit';
import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { useDisableIntrospection } from '@graphql-yoga/plugin-disable-introspection';
import { getOperationAST } from 'graphql';
import { createYoga, type YogaServerInstance } from 'graphql-yoga';
import { tenantOf } from '../auth/principal.js';
import type { Config } from '../config.js';
import { annotate } from '../http/observe.js';
import { createGraphiQLPage } from '../http/graphiql-page.js';
import { GRAPHIQL_EXAMPLE } from '../http/operations.js';
import type { Authentication } from '../http/use-authentication.js';
import { useBodyLimit } from '../http/use-body-limit.js';
import { useCostLimit } from '../http/use-cost-limit.js';
import { createMaskError, useErrorCodes } from '../http/use-error-codes.js';
import { useGraphQLUpload } from '../http/use-graphql-upload.js';
import { useRateLimit } from '../http/use-rate-limit.js';
import { useSearchParams } from '../http/use-search-params.js';
import type { Context, Services } from '../schema/context.js';
import { buildSchema } from '../schema/index.js';
import type { Feature, GraphQLPlugin } from './feature.js';

/** GraphQL at `/graphql`: the schema, its limits and its plugins, and the per-request context. */
export interface GraphQLFeature extends Feature {
  yoga: YogaServerInstance<Record<string, unknown>, Context>;
  /** The request listener for `/graphql`. */
  handler: RequestListener;
}

/** What GraphQL is built from; `plugins` of other features run after the built-in ones. */
export interface GraphQLOptions {
  config: Config;
  services: Services;
  authentication: Authentication;
  logError: (error: unknown) => void;
  plugins?: GraphQLPlugin[];
}

/** The limits every operation passes before it runs: size, depth, aliases, cost, rate. */
function limitPlugins(config: Config, services: Services, authentication: Authentication): GraphQLPlugin[] {
  return [
    authentication.plugin,
    useGraphQLUpload({
      maxFileSize: config.maxFileSize,
      maxFiles: config.maxFilesPerRequest,
      acquireSlot: (request) => {
        const principal = authentication.principalOf(request);
        return services.uploadSlots.acquire(principal ? principal.keyId : 'anonymous');
      },
    }),
    useSearchParams(),
    useBodyLimit(config.maxJsonBodySize),
    EnvelopArmorPlugin({
      maxDepth: { n: config.graphqlLimits.depth },
      maxAliases: { n: config.graphqlLimits.aliases },
      maxDirectives: { n: config.graphqlLimits.directives },
      maxTokens: { n: config.graphqlLimits.tokens },
      costLimit: { enabled: false }, // useCostLimit: it also reads page sizes given as variables
      blockFieldSuggestion: { enabled: !config.introspection },
    }),
    useCostLimit({ maxCost: config.graphqlLimits.cost, cacheMax: config.documentCacheMax }),
    ...(config.introspection ? [] : [useDisableIntrospection()]),
    ...(config.rateLimit > 0 ? [useRateLimit(services.rateLimiter)] : []),
    useErrorCodes(),
  ];
}

/** Builds Yoga over the schema; the context holds the caller, the services and what the request is. */
export function createGraphQL({
  config,
  services,
  authentication,
  logError,
  plugins = [],
}: GraphQLOptions): GraphQLFeature {
  const graphiql = createGraphiQLPage({ title: 'assetgate GraphiQL', defaultQuery: GRAPHIQL_EXAMPLE });
  const yoga = createYoga<Record<string, unknown>, Context>({
    schema: buildSchema(),
    graphqlEndpoint: '/graphql',
    multipart: false,
    maxRequestBodySize: false,
    landingPage: false,
    batching: false,
    // GraphiQL whole from the gateway (no CDN), opening on an example and a hint for the key.
    renderGraphiQL: graphiql.render,
    logging: false, // unexpected errors are logged by maskError; expected ones are answers, not logs
    maskedErrors: { maskError: createMaskError(logError) },
    context: ({ request, req }): Context => {
      const principal = authentication.principalOf(request);
      const node = req as IncomingMessage | undefined;
      if (node && principal) annotate(node, { org: principal.orgId, keyId: principal.keyId });
      const clientAddress = node?.socket.remoteAddress ?? 'unknown';
      return { services, principal, tenant: principal && tenantOf(principal), clientAddress, req: node };
    },
    plugins: [
      graphiql.useGraphiQLPolicy(),
      ...limitPlugins(config, services, authentication),
      ...plugins,
      // Compiles each (cached) query to a function: list pages spend their time in resolvers, not the executor.
      // Subscriptions stay on graphql-js: graphql-jit does not hand a subscription's inline arguments to its resolver.
      // So do documents of several operations (GraphiQL sends all its tabs' text): the plugin keeps one compiled
      // query per document, whichever operation it was compiled for, and would run that one for every name.
      useGraphQlJit(
        {},
        {
          enableIf: (args) =>
            args.document.definitions.filter((definition) => definition.kind === 'OperationDefinition').length === 1 &&
            getOperationAST(args.document, args.operationName)?.operation !== 'subscription',
        },
      ),
    ],
  });
  return {
    yoga,
    handler: yoga as unknown as RequestListener,
    close: async () => {
      await yoga.dispose();
    },
  };
}
