/**
 * The scale-out rows: the gateway on an S3 store (s3rver, started here) against the
 * same server driven directly with the AWS SDK, and L1 with two gateways on
 * PostgreSQL against one, on the stack of bench/stack.ts (PostgreSQL and Redis must be up).
 */
import { createReadStream } from 'node:fs';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import autocannon from 'autocannon';
import { type Proc, MiB, cpuMicros, drain, median, multipartBody, send, timed } from './lib.js';
import { S3_CREDENTIALS, startStack } from './stack.js';

export interface ScaleOutInput {
  work: string;
  /** The large file of U1, and its size. */
  big: string;
  size: number;
  runs: number;
  /** Assets listed by L1, and seconds per load run. */
  assets: number;
  seconds: number;
  procs: Proc[];
  row: (...cells: (string | number)[]) => void;
}

export async function scaleOut(input: ScaleOutInput): Promise<Record<string, unknown>> {
  const { work, big, size, runs, procs, row } = input;
  const fmt = (n: number, digits = 1) => n.toFixed(digits);

  const stack = await startStack(work);
  procs.push(stack.s3);
  const client = new S3Client({
    region: 'us-east-1',
    endpoint: stack.endpoint,
    forcePathStyle: true,
    credentials: S3_CREDENTIALS,
  });
  const gateway = (name: string) => stack.gateway(name, { MAX_FILE_SIZE: '2GiB', JOB_CONCURRENCY: '1' });
  try {
    const a = await gateway('gw-a');
    const key = /\b(sk_live_default_[0-9a-f]{48})\b/.exec(a.proc.output())![1];
    const auth = { authorization: `Bearer ${key}` };
    const gql = async (url: string, query: string, variables: unknown = {}) =>
      (await (
        await fetch(`${url}/graphql`, {
          method: 'POST',
          headers: { ...auth, 'content-type': 'application/json' },
          body: JSON.stringify({ query, variables }),
        })
      ).json()) as any;

    // U1 on S3: the gateway against lib-storage with the same part size and parts in flight.
    const upload = () =>
      multipartBody(
        [
          [
            'operations',
            JSON.stringify({
              query: 'mutation($f: Upload!) { uploadAsset(input: { file: $f }) { asset { id } } }',
              variables: { f: null },
            }),
          ],
          ['map', '{"0":["variables.f"]}'],
        ],
        [{ field: '0', path: big, name: 'big.bin' }],
      );
    const u1 = { assetgate: [] as number[], sdk: [] as number[] };
    let id = '';
    for (let run = 0; run < runs; run++) {
      // Each run stores the file anew (identical bytes are kept once): the one before goes for good first.
      if (id)
        await gql(a.url, 'mutation($id: ID!) { deleteAsset(input: { id: $id, permanently: true }) { deletedId } }', {
          id,
        });
      let text = '';
      u1.assetgate.push(
        size /
          MiB /
          ((await timed(async () => {
            text = (await send(`${a.url}/graphql`, 'POST', upload(), { ...auth, 'x-graphql-yoga-csrf': '1' })).text;
          })) /
            1000),
      );
      id = JSON.parse(text).data.uploadAsset.asset.id;
      u1.sdk.push(
        size /
          MiB /
          ((await timed(() =>
            new Upload({
              client,
              params: { Bucket: 'bench', Key: `direct/big-${run}`, Body: createReadStream(big) },
              partSize: 8 * MiB,
              queueSize: 2,
            }).done(),
          )) /
            1000),
      );
    }
    const u1Ratio = median(u1.assetgate) / median(u1.sdk);
    row(
      'U1 on S3',
      `${size / MiB} MiB into s3rver`,
      `${fmt(median(u1.assetgate))} MB/s`,
      `${fmt(median(u1.sdk))} MB/s (the SDK's multipart upload, same parts)`,
      fmt(u1Ratio, 2),
      '≥ 0.8',
      u1Ratio >= 0.8 ? 'met' : 'missed',
    );

    // D1 on S3: a signed URL through the gateway against GetObject streamed by the SDK.
    const signed = (await gql(a.url, 'mutation($id: ID!) { createDownloadUrl(input: { id: $id }) { url } }', { id }))
      .data.createDownloadUrl.url;
    // Both read the same object (an upload's blob key is `<2 chars>/<asset uuid>`), in alternating order.
    const uuid = Buffer.from(id, 'base64url').toString().split(':')[1];
    const objectKey = `assets/${uuid.slice(0, 2)}/${uuid}`;
    const d1 = { assetgate: [] as number[], sdk: [] as number[] };
    // Where the CPU of each way goes, per GiB: the gateway, s3rver, and the client (this process).
    const d1Cpu = { assetgate: { gateway: 0, s3rver: 0, client: 0 }, sdk: { gateway: 0, s3rver: 0, client: 0 } };
    const accounted = async (way: 'assetgate' | 'sdk', fn: () => Promise<unknown>) => {
      const pids = { gateway: a.proc.child.pid!, s3rver: stack.s3.child.pid! };
      const before = { gateway: await cpuMicros(pids.gateway), s3rver: await cpuMicros(pids.s3rver) };
      const client0 = process.cpuUsage();
      const ms = await timed(fn);
      const client1 = process.cpuUsage(client0);
      d1Cpu[way].gateway += (await cpuMicros(pids.gateway)) - before.gateway;
      d1Cpu[way].s3rver += (await cpuMicros(pids.s3rver)) - before.s3rver;
      d1Cpu[way].client += client1.user + client1.system;
      return ms;
    };
    const viaGateway = async () =>
      d1.assetgate.push(size / MiB / ((await accounted('assetgate', () => drain(signed))) / 1000));
    const viaSdk = async () =>
      d1.sdk.push(
        size /
          MiB /
          ((await accounted('sdk', async () => {
            const { Body } = await client.send(new GetObjectCommand({ Bucket: 'bench', Key: objectKey }));
            for await (const chunk of Body as AsyncIterable<Uint8Array>) void chunk;
          })) /
            1000),
      );
    for (let run = 0; run < runs; run++) {
      if (run % 2) await viaSdk().then(viaGateway);
      else await viaGateway().then(viaSdk);
    }
    const d1Ratio = median(d1.assetgate) / median(d1.sdk);
    // CPU seconds per GiB moved, each way, each process.
    const perGiB = (micros: number) => micros / 1e6 / ((runs * size) / 1024 ** 3);
    const d1CpuPerGiB = Object.fromEntries(
      Object.entries(d1Cpu).map(([way, used]) => [
        way,
        Object.fromEntries(Object.entries(used).map(([name, micros]) => [name, Number(perGiB(micros).toFixed(2))])),
      ]),
    );
    console.log(`D1 on S3, CPU seconds per GiB: ${JSON.stringify(d1CpuPerGiB)}`);
    row(
      'D1 on S3',
      `${size / MiB} MiB from s3rver via a signed URL`,
      `${fmt(median(d1.assetgate))} MB/s`,
      `${fmt(median(d1.sdk))} MB/s (GetObject with the SDK)`,
      fmt(d1Ratio, 2),
      '≥ 0.8',
      d1Ratio >= 0.8 ? 'met' : 'missed',
    );

    // L1 on PostgreSQL: one gateway, then two sharing the load (16 connections in all).
    for (let i = 0; i < input.assets; i += 50) {
      await gql(
        a.url,
        `mutation { ${Array.from(
          { length: 50 },
          (_, j) =>
            `a${j}: createAsset(input: { title: "asset ${i + j}", type: LINK, externalUrl: "https://example.com/${i + j}", tags: ["tag-${j % 5}"] }) { asset { id } }`,
        ).join(' ')} }`,
      );
    }
    const b = await gateway('gw-b');
    const body = JSON.stringify({
      query: '{ assets(first: 50) { edges { node { id title mimeType size width height createdAt tags } } } }',
    });
    const load = (url: string, connections: number) =>
      autocannon({
        url: `${url}/graphql`,
        method: 'POST',
        connections,
        duration: input.seconds,
        headers: { ...auth, 'content-type': 'application/json' },
        body,
      }) as unknown as Promise<autocannon.Result>;
    const l1 = { one: [] as number[], two: [] as number[], errors: 0 };
    for (let run = 0; run < runs; run++) {
      const one = await load(a.url, 16);
      l1.one.push(one.requests.average);
      const both = await Promise.all([load(a.url, 8), load(b.url, 8)]);
      l1.two.push(both[0].requests.average + both[1].requests.average);
      l1.errors += [one, ...both].reduce((n, r) => n + r.errors + r.non2xx, 0);
    }
    const l1Ratio = median(l1.two) / median(l1.one);
    row(
      'L1 two gateways',
      `assets(first: 50) over ${input.assets.toLocaleString('en')} assets on PostgreSQL, 16 connections split over two gateways`,
      `${fmt(median(l1.two), 0)} req/s`,
      `${fmt(median(l1.one), 0)} req/s (one gateway, 16 connections)`,
      fmt(l1Ratio, 2),
      '(reported: on 2 cores, the cost of sharing)',
      l1.errors === 0 ? 'reported' : `${l1.errors} errors`,
    );
    return {
      U1_S3: { mbPerSecond: { assetgate: median(u1.assetgate), sdk: median(u1.sdk) }, runs: u1 },
      D1_S3: {
        mbPerSecond: { assetgate: median(d1.assetgate), sdk: median(d1.sdk) },
        runs: d1,
        cpuSecondsPerGiB: d1CpuPerGiB,
      },
      L1_TWO: { rps: { one: median(l1.one), two: median(l1.two) }, errors: l1.errors },
    };
  } finally {
    client.destroy();
    await stack.stop();
  }
}
