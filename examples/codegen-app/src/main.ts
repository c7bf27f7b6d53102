import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print } from 'graphql';
import { graphql } from './gql/index.js';

/** One typed query: codegen reads it here and writes its result and variable types to src/gql/. */
const RecentAssets = graphql(`
  query RecentAssets($first: Int!) {
    assets(first: $first) {
      totalCount
      edges {
        node {
          id
          title
          type
          status
          size
        }
      }
    }
  }
`);

/** Sends a typed document to the gateway: the result is typed by the document itself. */
async function request<R, V>(document: TypedDocumentNode<R, V>, variables: V): Promise<R> {
  const response = await fetch(`${process.env.ASSETGATE_URL}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${process.env.ASSETGATE_KEY}` },
    body: JSON.stringify({ query: print(document), variables }),
  });
  const json = (await response.json()) as { data?: R; errors?: { message: string }[] };
  if (!json.data) throw new Error(json.errors?.map((error) => error.message).join('; ') ?? `HTTP ${response.status}`);
  return json.data;
}

const { assets } = await request(RecentAssets, { first: 10 });
console.log(`${assets.totalCount} assets`);
for (const { node } of assets.edges) console.log(node.id, node.type, node.status, node.title, node.size);
