/* eslint-disable */
import * as types from './graphql.js';
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';

/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "\n  fragment AssetFields on Asset {\n    id\n    title\n    slug\n    description\n    type\n    status\n    failureReason\n    filename\n    mimeType\n    size\n    checksum\n    width\n    height\n    pageCount\n    wordCount\n    duration\n    externalUrl\n    embedUrl\n    thumbnailUrl\n    url\n    tags\n    directory {\n      id\n      name\n    }\n    isPublic\n    downloadCount\n    createdAt\n    updatedAt\n  }\n": typeof types.AssetFieldsFragmentDoc,
    "\n  mutation UploadAsset($input: UploadAssetInput!) {\n    uploadAsset(input: $input) {\n      asset {\n        ...AssetFields\n      }\n    }\n  }\n": typeof types.UploadAssetDocument,
    "\n  mutation UploadAssets($input: UploadAssetsInput!) {\n    uploadAssets(input: $input) {\n      assets {\n        ...AssetFields\n      }\n      failures {\n        index\n        filename\n        code\n        message\n      }\n    }\n  }\n": typeof types.UploadAssetsDocument,
    "\n  mutation CreateAsset($input: CreateAssetInput!) {\n    createAsset(input: $input) {\n      asset {\n        ...AssetFields\n      }\n    }\n  }\n": typeof types.CreateAssetDocument,
    "\n  query GetAsset($id: ID!) {\n    asset(id: $id) {\n      ...AssetFields\n    }\n  }\n": typeof types.GetAssetDocument,
    "\n  query ListAssets(\n    $first: Int\n    $after: String\n    $last: Int\n    $before: String\n    $filter: AssetFilter\n    $orderBy: AssetOrder\n  ) {\n    assets(first: $first, after: $after, last: $last, before: $before, filter: $filter, orderBy: $orderBy) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        hasPreviousPage\n        startCursor\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          ...AssetFields\n        }\n      }\n    }\n  }\n": typeof types.ListAssetsDocument,
    "\n  mutation UpdateAsset($input: UpdateAssetInput!) {\n    updateAsset(input: $input) {\n      asset {\n        ...AssetFields\n      }\n    }\n  }\n": typeof types.UpdateAssetDocument,
    "\n  mutation DeleteAsset($input: DeleteAssetInput!) {\n    deleteAsset(input: $input) {\n      deletedId\n    }\n  }\n": typeof types.DeleteAssetDocument,
    "\n  mutation RestoreAsset($input: RestoreAssetInput!) {\n    restoreAsset(input: $input) {\n      asset {\n        id\n      }\n    }\n  }\n": typeof types.RestoreAssetDocument,
    "\n  mutation CreateReplaceUrl($input: CreateReplaceUrlInput!) {\n    createReplaceUrl(input: $input) {\n      uploadUrl\n      expiresAt\n    }\n  }\n": typeof types.CreateReplaceUrlDocument,
    "\n  mutation CreateDirectory($input: CreateDirectoryInput!) {\n    createDirectory(input: $input) {\n      directory {\n        id\n        name\n      }\n    }\n  }\n": typeof types.CreateDirectoryDocument,
    "\n  mutation CreateUploadUrl($input: CreateUploadUrlInput!) {\n    createUploadUrl(input: $input) {\n      uploadUrl\n      expiresAt\n      asset {\n        ...AssetFields\n      }\n    }\n  }\n": typeof types.CreateUploadUrlDocument,
    "\n  mutation CreateDownloadUrl($input: CreateDownloadUrlInput!) {\n    createDownloadUrl(input: $input) {\n      url\n      expiresAt\n      remainingFetches\n    }\n  }\n": typeof types.CreateDownloadUrlDocument,
};
const documents: Documents = {
    "\n  fragment AssetFields on Asset {\n    id\n    title\n    slug\n    description\n    type\n    status\n    failureReason\n    filename\n    mimeType\n    size\n    checksum\n    width\n    height\n    pageCount\n    wordCount\n    duration\n    externalUrl\n    embedUrl\n    thumbnailUrl\n    url\n    tags\n    directory {\n      id\n      name\n    }\n    isPublic\n    downloadCount\n    createdAt\n    updatedAt\n  }\n": types.AssetFieldsFragmentDoc,
    "\n  mutation UploadAsset($input: UploadAssetInput!) {\n    uploadAsset(input: $input) {\n      asset {\n        ...AssetFields\n      }\n    }\n  }\n": types.UploadAssetDocument,
    "\n  mutation UploadAssets($input: UploadAssetsInput!) {\n    uploadAssets(input: $input) {\n      assets {\n        ...AssetFields\n      }\n      failures {\n        index\n        filename\n        code\n        message\n      }\n    }\n  }\n": types.UploadAssetsDocument,
    "\n  mutation CreateAsset($input: CreateAssetInput!) {\n    createAsset(input: $input) {\n      asset {\n        ...AssetFields\n      }\n    }\n  }\n": types.CreateAssetDocument,
    "\n  query GetAsset($id: ID!) {\n    asset(id: $id) {\n      ...AssetFields\n    }\n  }\n": types.GetAssetDocument,
    "\n  query ListAssets(\n    $first: Int\n    $after: String\n    $last: Int\n    $before: String\n    $filter: AssetFilter\n    $orderBy: AssetOrder\n  ) {\n    assets(first: $first, after: $after, last: $last, before: $before, filter: $filter, orderBy: $orderBy) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        hasPreviousPage\n        startCursor\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          ...AssetFields\n        }\n      }\n    }\n  }\n": types.ListAssetsDocument,
    "\n  mutation UpdateAsset($input: UpdateAssetInput!) {\n    updateAsset(input: $input) {\n      asset {\n        ...AssetFields\n      }\n    }\n  }\n": types.UpdateAssetDocument,
    "\n  mutation DeleteAsset($input: DeleteAssetInput!) {\n    deleteAsset(input: $input) {\n      deletedId\n    }\n  }\n": types.DeleteAssetDocument,
    "\n  mutation RestoreAsset($input: RestoreAssetInput!) {\n    restoreAsset(input: $input) {\n      asset {\n        id\n      }\n    }\n  }\n": types.RestoreAssetDocument,
    "\n  mutation CreateReplaceUrl($input: CreateReplaceUrlInput!) {\n    createReplaceUrl(input: $input) {\n      uploadUrl\n      expiresAt\n    }\n  }\n": types.CreateReplaceUrlDocument,
    "\n  mutation CreateDirectory($input: CreateDirectoryInput!) {\n    createDirectory(input: $input) {\n      directory {\n        id\n        name\n      }\n    }\n  }\n": types.CreateDirectoryDocument,
    "\n  mutation CreateUploadUrl($input: CreateUploadUrlInput!) {\n    createUploadUrl(input: $input) {\n      uploadUrl\n      expiresAt\n      asset {\n        ...AssetFields\n      }\n    }\n  }\n": types.CreateUploadUrlDocument,
    "\n  mutation CreateDownloadUrl($input: CreateDownloadUrlInput!) {\n    createDownloadUrl(input: $input) {\n      url\n      expiresAt\n      remainingFetches\n    }\n  }\n": types.CreateDownloadUrlDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 *
 *
 * @example
 * ```ts
 * const query = graphql(`query GetUser($id: ID!) { user(id: $id) { name } }`);
 * ```
 *
 * The query argument is unknown!
 * Please regenerate the types.
 */
export function graphql(source: string): unknown;

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment AssetFields on Asset {\n    id\n    title\n    slug\n    description\n    type\n    status\n    failureReason\n    filename\n    mimeType\n    size\n    checksum\n    width\n    height\n    pageCount\n    wordCount\n    duration\n    externalUrl\n    embedUrl\n    thumbnailUrl\n    url\n    tags\n    directory {\n      id\n      name\n    }\n    isPublic\n    downloadCount\n    createdAt\n    updatedAt\n  }\n"): (typeof documents)["\n  fragment AssetFields on Asset {\n    id\n    title\n    slug\n    description\n    type\n    status\n    failureReason\n    filename\n    mimeType\n    size\n    checksum\n    width\n    height\n    pageCount\n    wordCount\n    duration\n    externalUrl\n    embedUrl\n    thumbnailUrl\n    url\n    tags\n    directory {\n      id\n      name\n    }\n    isPublic\n    downloadCount\n    createdAt\n    updatedAt\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation UploadAsset($input: UploadAssetInput!) {\n    uploadAsset(input: $input) {\n      asset {\n        ...AssetFields\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation UploadAsset($input: UploadAssetInput!) {\n    uploadAsset(input: $input) {\n      asset {\n        ...AssetFields\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation UploadAssets($input: UploadAssetsInput!) {\n    uploadAssets(input: $input) {\n      assets {\n        ...AssetFields\n      }\n      failures {\n        index\n        filename\n        code\n        message\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation UploadAssets($input: UploadAssetsInput!) {\n    uploadAssets(input: $input) {\n      assets {\n        ...AssetFields\n      }\n      failures {\n        index\n        filename\n        code\n        message\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation CreateAsset($input: CreateAssetInput!) {\n    createAsset(input: $input) {\n      asset {\n        ...AssetFields\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation CreateAsset($input: CreateAssetInput!) {\n    createAsset(input: $input) {\n      asset {\n        ...AssetFields\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query GetAsset($id: ID!) {\n    asset(id: $id) {\n      ...AssetFields\n    }\n  }\n"): (typeof documents)["\n  query GetAsset($id: ID!) {\n    asset(id: $id) {\n      ...AssetFields\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query ListAssets(\n    $first: Int\n    $after: String\n    $last: Int\n    $before: String\n    $filter: AssetFilter\n    $orderBy: AssetOrder\n  ) {\n    assets(first: $first, after: $after, last: $last, before: $before, filter: $filter, orderBy: $orderBy) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        hasPreviousPage\n        startCursor\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          ...AssetFields\n        }\n      }\n    }\n  }\n"): (typeof documents)["\n  query ListAssets(\n    $first: Int\n    $after: String\n    $last: Int\n    $before: String\n    $filter: AssetFilter\n    $orderBy: AssetOrder\n  ) {\n    assets(first: $first, after: $after, last: $last, before: $before, filter: $filter, orderBy: $orderBy) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        hasPreviousPage\n        startCursor\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          ...AssetFields\n        }\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation UpdateAsset($input: UpdateAssetInput!) {\n    updateAsset(input: $input) {\n      asset {\n        ...AssetFields\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation UpdateAsset($input: UpdateAssetInput!) {\n    updateAsset(input: $input) {\n      asset {\n        ...AssetFields\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation DeleteAsset($input: DeleteAssetInput!) {\n    deleteAsset(input: $input) {\n      deletedId\n    }\n  }\n"): (typeof documents)["\n  mutation DeleteAsset($input: DeleteAssetInput!) {\n    deleteAsset(input: $input) {\n      deletedId\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation RestoreAsset($input: RestoreAssetInput!) {\n    restoreAsset(input: $input) {\n      asset {\n        id\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation RestoreAsset($input: RestoreAssetInput!) {\n    restoreAsset(input: $input) {\n      asset {\n        id\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation CreateReplaceUrl($input: CreateReplaceUrlInput!) {\n    createReplaceUrl(input: $input) {\n      uploadUrl\n      expiresAt\n    }\n  }\n"): (typeof documents)["\n  mutation CreateReplaceUrl($input: CreateReplaceUrlInput!) {\n    createReplaceUrl(input: $input) {\n      uploadUrl\n      expiresAt\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation CreateDirectory($input: CreateDirectoryInput!) {\n    createDirectory(input: $input) {\n      directory {\n        id\n        name\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation CreateDirectory($input: CreateDirectoryInput!) {\n    createDirectory(input: $input) {\n      directory {\n        id\n        name\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation CreateUploadUrl($input: CreateUploadUrlInput!) {\n    createUploadUrl(input: $input) {\n      uploadUrl\n      expiresAt\n      asset {\n        ...AssetFields\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation CreateUploadUrl($input: CreateUploadUrlInput!) {\n    createUploadUrl(input: $input) {\n      uploadUrl\n      expiresAt\n      asset {\n        ...AssetFields\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation CreateDownloadUrl($input: CreateDownloadUrlInput!) {\n    createDownloadUrl(input: $input) {\n      url\n      expiresAt\n      remainingFetches\n    }\n  }\n"): (typeof documents)["\n  mutation CreateDownloadUrl($input: CreateDownloadUrlInput!) {\n    createDownloadUrl(input: $input) {\n      url\n      expiresAt\n      remainingFetches\n    }\n  }\n"];

export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}

export type DocumentType<TDocumentNode extends DocumentNode<any, any>> = TDocumentNode extends DocumentNode<  infer TType,  any>  ? TType  : never;