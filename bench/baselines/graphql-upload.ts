/**
 * The floor of the chosen stack for uploads: node:http + graphql-yoga +
 * graphql-upload-minimal, with a one-field schema whose resolver pipes the file to
 * disk. It is the busboy baseline's work behind GraphQL and nothing of the product:
 * no key, no hashing, no sniffing, no fsync, no database. What the gateway does per
 * upload comes on top of this.
 * `fsync` as second argument: each file and its folder are also fsynced before the
 * answer, the least a durable new file needs (the gateway does this too).
 * Prints `listening <port>` once ready.
 */
import { createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { type FileUpload, GraphQLUpload, processRequest } from 'graphql-upload-minimal';
import { createSchema, createYoga } from 'graphql-yoga';

const [dir, mode] = process.argv.slice(2);
let n = 0;

const yoga = createYoga<{ req: IncomingMessage; res: ServerResponse }>({
  schema: createSchema({
    typeDefs: /* GraphQL */ `
      scalar Upload
      type Query {
        ok: Boolean
      }
      type Asset {
        id: ID!
        size: Int!
      }
      type UploadAssetPayload {
        asset: Asset!
      }
      input UploadAssetInput {
        file: Upload!
      }
      type Mutation {
        uploadAsset(input: UploadAssetInput!): UploadAssetPayload!
      }
    `,
    resolvers: {
      Upload: GraphQLUpload,
      Mutation: {
        uploadAsset: async (_: unknown, { input }: { input: { file: Promise<FileUpload> } }) => {
          const file = await input.file;
          const id = String(n++);
          let size = 0;
          const stream = file.createReadStream().on('data', (chunk: Buffer | string) => {
            size += chunk.length;
          });
          const target = path.join(dir, `part-${id}`);
          await pipeline(stream, createWriteStream(target));
          if (mode === 'fsync') {
            await fsync(target);
            await fsync(dir);
          }
          return { asset: { id, size } };
        },
      },
    },
  }),
  multipart: false, // graphql-upload-minimal parses the body, as in the gateway
  landingPage: false,
  logging: false,
  plugins: [
    {
      onRequestParse({ request, serverContext, setRequestParser }) {
        if (!(request.headers.get('content-type') ?? '').includes('multipart/form-data')) return;
        const { req, res } = serverContext as unknown as { req: IncomingMessage; res: ServerResponse };
        setRequestParser(() => processRequest(req, res) as never);
      },
    },
  ],
});

async function fsync(file: string): Promise<void> {
  const handle = await open(file, 'r');
  await handle.sync().finally(() => handle.close());
}

const server = createServer((req, res) => yoga.handle(req, res, { req, res }));
server.listen(0, '127.0.0.1', () => console.log(`listening ${(server.address() as { port: number }).port}`));
