import type { CodegenConfig } from '@graphql-codegen/cli';

/** Types this app's own operations against the schema the installed gateway package ships. */
const config: CodegenConfig = {
  schema: 'node_modules/assetgate/schema.graphql',
  documents: ['src/**/*.ts', '!src/gql/**'],
  ignoreNoDocuments: false,
  generates: {
    'src/gql/': {
      preset: 'client',
      presetConfig: { fragmentMasking: false },
      config: {
        useTypeImports: true,
        enumsAsTypes: true,
        emitLegacyCommonJSImports: false, // .js endings, as NodeNext resolution wants
        scalars: { DateTime: 'string', Upload: 'File | Blob' },
      },
    },
  },
};

export default config;
