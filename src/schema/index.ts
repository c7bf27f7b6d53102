import type { GraphQLSchema } from 'graphql';
import { builder } from './builder.js';
import './scalars.js';
import './directory.js';
import { guardAssetFields } from './asset.js';
import './assets-query.js';
import './asset-mutations.js';
import './upload-mutations.js';
import './api-keys.js';
import './viewer.js';
import './signed-urls.js';
import './processing.js';
import './renditions.js';
import './webhooks.js';

let schema: GraphQLSchema | undefined;

/** The GraphQL schema, built once. The only caller of `toSchema()`. */
export function buildSchema(): GraphQLSchema {
  if (!schema) {
    schema = builder.toSchema({ sortSchema: false });
    guardAssetFields(schema);
  }
  return schema;
}
