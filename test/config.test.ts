import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { loadConfig, parseBytes } from '../src/config.js';
import { ConfigError } from '../src/errors.js';

test('defaults are the embedded set-up under ./data', () => {
  const config = loadConfig({}, '/srv/app');
  assert.equal(config.port, 4000);
  assert.equal(config.dataDir, '/srv/app/data');
  assert.equal(config.databaseUrl, `sqlite:${path.join('/srv/app/data', 'assetgate.db')}`);
  assert.equal(config.blobStore, 'fs');
  assert.equal(config.publicUrl, 'http://localhost:4000');
  assert.equal(config.maxFileSize, 200 * 1024 ** 2);
  assert.equal(config.maxFilesPerRequest, 100);
  assert.equal(config.databasePool, 10);
  assert.equal(config.databasePoolWait, 10);
});

test('background CPU work leaves one core to the event loop; four jobs are in progress per thread', () => {
  const at = (cores: number, env = {}) => loadConfig(env, '/srv/app', cores);
  assert.deepEqual([at(2).extractThreads, at(2).jobConcurrency], [1, 4]);
  assert.deepEqual([at(8).extractThreads, at(8).jobConcurrency], [7, 28]);
  assert.deepEqual([at(1).extractThreads, at(1).jobConcurrency], [1, 4]);
  assert.deepEqual([at(64).extractThreads, at(64).jobConcurrency], [63, 64]);
  assert.equal(at(8, { JOB_CONCURRENCY: '0' }).jobConcurrency, 0);
  assert.deepEqual(
    [at(8, { EXTRACT_THREADS: '2' }).extractThreads, at(8, { EXTRACT_THREADS: '2' }).jobConcurrency],
    [2, 8],
  );
  assert.throws(() => at(8, { EXTRACT_THREADS: '0' }), /EXTRACT_THREADS/);
});

test('sizes accept units', () => {
  assert.equal(parseBytes('X', '10MB'), 10_000_000);
  assert.equal(parseBytes('X', '200MiB'), 200 * 1024 ** 2);
  assert.equal(parseBytes('X', '4 GiB'), 4 * 1024 ** 3);
  assert.equal(parseBytes('X', '1234'), 1234);
});

test('a bad value stops start-up with a message naming the variable', () => {
  const cases: [Record<string, string>, string][] = [
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ PUBLIC_URL: 'not a url' }, 'PUBLIC_URL'],
    [{ PUBLIC_URL: 'ftp://x' }, 'PUBLIC_URL'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL'],
    [{ BLOB_STORE: 'dropbox' }, 'BLOB_STORE'],
    [{ BLOB_STORE: 's3://' }, 'BLOB_STORE'],
    [{ BLOB_STORE: 's3://Bad_Bucket' }, 'BLOB_STORE'],
    [{ S3_ENDPOINT: 'localhost:9000' }, 'S3_ENDPOINT'],
    [{ S3_FORCE_PATH_STYLE: 'perhaps' }, 'S3_FORCE_PATH_STYLE'],
    [{ S3_DIRECT: 'sometimes' }, 'S3_DIRECT'],
    [{ AWS_ACCESS_KEY_ID: 'only-the-id' }, 'AWS_SECRET_ACCESS_KEY'],
    [{ REDIS_URL: 'localhost:6379' }, 'REDIS_URL'],
    [{ MAX_FILE_SIZE: 'huge' }, 'MAX_FILE_SIZE'],
    [{ MAX_FILES_PER_REQUEST: '0' }, 'MAX_FILES_PER_REQUEST'],
    [{ DATABASE_POOL: '0' }, 'DATABASE_POOL'],
    [{ DATABASE_POOL: 'ten' }, 'DATABASE_POOL'],
    [{ DATABASE_POOL_WAIT: '0' }, 'DATABASE_POOL_WAIT'],
    [{ DATABASE_POOL_WAIT: 'a while' }, 'DATABASE_POOL_WAIT'],
    [{ GRAPHQL_INTROSPECTION: 'maybe' }, 'GRAPHQL_INTROSPECTION'],
    [{ RENDITION_HOT_TTL: '61' }, 'RENDITION_HOT_TTL'],
    [{ RENDITION_HOT_MAX: 'lots' }, 'RENDITION_HOT_MAX'],
  ];
  for (const [env, variable] of cases) {
    assert.throws(
      () => loadConfig(env),
      (error: unknown) =>
        error instanceof ConfigError && error.variable === variable && error.message.startsWith(variable),
      JSON.stringify(env),
    );
  }
});

test('the shared engines: an S3 bucket with a prefix, its connection, Redis', () => {
  const config = loadConfig({
    BLOB_STORE: 's3://my-assets/prod/eu',
    S3_ENDPOINT: 'http://127.0.0.1:9000/',
    S3_FORCE_PATH_STYLE: 'true',
    AWS_ACCESS_KEY_ID: 'id',
    AWS_SECRET_ACCESS_KEY: 'secret',
    S3_DIRECT: 'download',
    REDIS_URL: 'redis://:pw@127.0.0.1:6379/2',
  });
  assert.equal(config.blobStore, 's3://my-assets/prod/eu');
  assert.deepEqual(config.s3, {
    endpoint: 'http://127.0.0.1:9000',
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'id', secretAccessKey: 'secret' },
    direct: 'download',
  });
  assert.equal(config.redisUrl, 'redis://:pw@127.0.0.1:6379/2');
  assert.throws(
    () => loadConfig({ REDIS_URL: 'http://:secret-password@x' }),
    (error: Error) => !error.message.includes('secret-password'),
    'a refused REDIS_URL is not echoed (it may hold a password)',
  );
});

test('PUBLIC_URL loses its trailing slash', () => {
  assert.equal(loadConfig({ PUBLIC_URL: 'https://cdn.example.com/' }).publicUrl, 'https://cdn.example.com');
});

test('durations, quotas and media patterns', () => {
  const config = loadConfig({
    DOWNLOAD_URL_TTL: '15m',
    EXTRACT_TIMEOUT: '250ms',
    DATABASE_POOL_WAIT: '500ms',
    ORG_STORAGE_QUOTA: '5GiB',
    ALLOWED_MEDIA_TYPES: 'image/*, application/pdf',
    THUMBNAIL_SIZES: '512,64,512',
    IMPORT_ALLOW: '10.0.0.0/8,intranet.example',
  });
  assert.equal(config.downloadUrlTtl, 900);
  assert.equal(config.extractTimeout, 0.25);
  assert.equal(config.databasePoolWait, 0.5);
  assert.equal(config.orgStorageQuota, 5 * 1024 ** 3);
  assert.deepEqual(config.allowedMediaTypes, ['image/*', 'application/pdf']);
  assert.deepEqual(config.thumbnailSizes, [64, 512]);
  assert.deepEqual(config.importAllow, ['10.0.0.0/8', 'intranet.example']);
  for (const [env, variable] of [
    [{ DOWNLOAD_URL_TTL: 'a while' }, 'DOWNLOAD_URL_TTL'],
    [{ DOWNLOAD_URL_TTL: '8d' }, 'DOWNLOAD_URL_TTL'],
    [{ SIGNING_SECRET: 'short' }, 'SIGNING_SECRET'],
    [{ ALLOWED_MEDIA_TYPES: 'images' }, 'ALLOWED_MEDIA_TYPES'],
    [{ THUMBNAIL_SIZES: '5' }, 'THUMBNAIL_SIZES'],
    [{ SIGNING_PREVIOUS_UNTIL: 'soon' }, 'SIGNING_PREVIOUS_UNTIL'],
  ] as [Record<string, string>, string][]) {
    assert.throws(
      () => loadConfig(env),
      (e: unknown) => e instanceof ConfigError && e.variable === variable,
      variable,
    );
  }
});
