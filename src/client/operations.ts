import { graphql } from './gql/index.js';

/** The operations the typed client sends; `npm run codegen` types them. */

export const AssetFieldsFragment = graphql(`
  fragment AssetFields on Asset {
    id
    title
    slug
    description
    type
    status
    failureReason
    filename
    mimeType
    size
    checksum
    width
    height
    pageCount
    wordCount
    duration
    externalUrl
    embedUrl
    thumbnailUrl
    url
    tags
    directory {
      id
      name
    }
    isPublic
    downloadCount
    createdAt
    updatedAt
  }
`);

export const UploadAssetDocument = graphql(`
  mutation UploadAsset($input: UploadAssetInput!) {
    uploadAsset(input: $input) {
      asset {
        ...AssetFields
      }
    }
  }
`);

export const UploadAssetsDocument = graphql(`
  mutation UploadAssets($input: UploadAssetsInput!) {
    uploadAssets(input: $input) {
      assets {
        ...AssetFields
      }
      failures {
        index
        filename
        code
        message
      }
    }
  }
`);

export const CreateAssetDocument = graphql(`
  mutation CreateAsset($input: CreateAssetInput!) {
    createAsset(input: $input) {
      asset {
        ...AssetFields
      }
    }
  }
`);

export const GetAssetDocument = graphql(`
  query GetAsset($id: ID!) {
    asset(id: $id) {
      ...AssetFields
    }
  }
`);

export const ListAssetsDocument = graphql(`
  query ListAssets(
    $first: Int
    $after: String
    $last: Int
    $before: String
    $filter: AssetFilter
    $orderBy: AssetOrder
  ) {
    assets(first: $first, after: $after, last: $last, before: $before, filter: $filter, orderBy: $orderBy) {
      totalCount
      pageInfo {
        hasNextPage
        hasPreviousPage
        startCursor
        endCursor
      }
      edges {
        cursor
        node {
          ...AssetFields
        }
      }
    }
  }
`);

export const UpdateAssetDocument = graphql(`
  mutation UpdateAsset($input: UpdateAssetInput!) {
    updateAsset(input: $input) {
      asset {
        ...AssetFields
      }
    }
  }
`);

export const DeleteAssetDocument = graphql(`
  mutation DeleteAsset($input: DeleteAssetInput!) {
    deleteAsset(input: $input) {
      deletedId
    }
  }
`);

export const RestoreAssetDocument = graphql(`
  mutation RestoreAsset($input: RestoreAssetInput!) {
    restoreAsset(input: $input) {
      asset {
        id
      }
    }
  }
`);

export const CreateReplaceUrlDocument = graphql(`
  mutation CreateReplaceUrl($input: CreateReplaceUrlInput!) {
    createReplaceUrl(input: $input) {
      uploadUrl
      expiresAt
    }
  }
`);

export const CreateDirectoryDocument = graphql(`
  mutation CreateDirectory($input: CreateDirectoryInput!) {
    createDirectory(input: $input) {
      directory {
        id
        name
      }
    }
  }
`);

export const CreateUploadUrlDocument = graphql(`
  mutation CreateUploadUrl($input: CreateUploadUrlInput!) {
    createUploadUrl(input: $input) {
      uploadUrl
      expiresAt
      asset {
        ...AssetFields
      }
    }
  }
`);

export const CreateDownloadUrlDocument = graphql(`
  mutation CreateDownloadUrl($input: CreateDownloadUrlInput!) {
    createDownloadUrl(input: $input) {
      url
      expiresAt
      remainingFetches
    }
  }
`);
