import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * The arguments of `node` that run s3rver (the S3 protocol server of the tests and the
 * benchmarks) on loopback, on a free port it prints, serving `bucket` from `dir`.
 *
 * s3rver encrypts its listing's continuation tokens with DES, which OpenSSL 3 (Node 17
 * on) keeps only in its legacy provider: without the flag, every listing longer than one
 * page (1,000 objects) answers HTTP 500. The flag is given to s3rver's process alone.
 */
export function s3rverArgs(dir: string, bucket: string): string[] {
  return [
    '--openssl-legacy-provider',
    path.join(ROOT, 'node_modules/s3rver/bin/s3rver.js'),
    ...['-d', dir, '-a', '127.0.0.1', '-p', '0', '--silent', '--configure-bucket', bucket],
  ];
}
