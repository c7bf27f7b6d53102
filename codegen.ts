import type { CodegenConfig } from '@graphql-codegen/cli';

/** Generates the typed client documents from `schema.graphql`: `npm run codegen`. */
const config: CodegenConfig = {
  schema: 'schema.graphql',
  documents: ['src/client/operations.ts'],
  ignoreNoDocuments: false,
  generates: {
    'src/client/gql/': {
      preset: 'client',
      presetConfig: { fragmentMasking: false },
      config: {
        useTypeImports: true,
        enumsAsTypes: true,
        emitLegacyCommonJSImports: false,
        scalars: { DateTime: 'string', Upload: 'File | Blob' },
      },
    },
  },
};

export default config;
