/**
 * The shared stack of the scaled-out benchmarks: s3rver (started here, on loopback), a
 * fresh PostgreSQL schema and Redis, and gateways started on them as separate processes
 * with the settings every gateway of a deployment shares. PostgreSQL (127.0.0.1:5432,
 * database `test`, or BENCH_DATABASE_URL) and Redis (127.0.0.1:6379, or BENCH_REDIS_URL)
 * must be up. `stop` stops the gateways and s3rver and drops the schema.
 */
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { s3rverArgs } from '../scripts/s3rver.js';
import { type Proc, serverArgs, start } from './lib.js';

const POSTGRES = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface Gateway {
  proc: Proc;
  url: string;
}

export interface Stack {
  /** s3rver's address, its process, the bucket it serves. */
  endpoint: string;
  s3: Proc;
  bucket: string;
  /** The schema the gateways use, and a client connected to the database (as its owner). */
  schema: string;
  admin: pg.Client;
  /** The `application_name` of the gateways' connections: finds their server processes. */
  applicationName: string;
  gateways: Gateway[];
  /** Starts one more gateway on the stack; `env` adds to (or overrides) the shared settings. */
  gateway(name: string, env?: Record<string, string>): Promise<Gateway>;
  stop(): Promise<void>;
}

export async function startStack(work: string, bucket = 'bench'): Promise<Stack> {
  const s3dir = path.join(work, 's3');
  await mkdir(s3dir, { recursive: true });
  const s3 = await start(s3rverArgs(s3dir, bucket));
  const endpoint = `http://127.0.0.1:${s3.port}`;
  const schema = `bench_${randomBytes(6).toString('hex')}`;
  const applicationName = `assetgate_${schema}`;
  const admin = new pg.Client({ connectionString: POSTGRES });
  try {
    await admin.connect();
    await admin.query(`create schema ${schema}`);
  } catch (error) {
    await s3.stop();
    throw error;
  }
  const options = encodeURIComponent(`-c search_path=${schema}`);
  const databaseUrl = `${POSTGRES}?options=${options}&application_name=${applicationName}`;
  const gateways: Gateway[] = [];
  return {
    endpoint,
    s3,
    bucket,
    schema,
    admin,
    applicationName,
    gateways,
    async gateway(name, env = {}) {
      const port = 20000 + Math.floor(Math.random() * 20000);
      const url = `http://127.0.0.1:${port}`;
      const proc = await start(
        serverArgs(),
        {
          PORT: String(port),
          HOST: '127.0.0.1',
          DATA_DIR: path.join(work, name),
          PUBLIC_URL: url,
          DATABASE_URL: databaseUrl,
          BLOB_STORE: `s3://${bucket}/assets`,
          S3_ENDPOINT: endpoint,
          S3_FORCE_PATH_STYLE: 'true',
          AWS_ACCESS_KEY_ID: S3_CREDENTIALS.accessKeyId,
          AWS_SECRET_ACCESS_KEY: S3_CREDENTIALS.secretAccessKey,
          REDIS_URL: REDIS,
          SIGNING_SECRET: 'bench signing secret shared by both gateways',
          RATE_LIMIT: '0',
          ...env,
        },
        port,
      );
      gateways.push({ proc, url });
      return { proc, url };
    },
    async stop() {
      for (const gateway of gateways) await gateway.proc.stop();
      await s3.stop();
      await admin.query(`drop schema ${schema} cascade`);
      await admin.end();
    },
  };
}
