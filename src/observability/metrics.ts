import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Where the gauges read what they report, when scraped. */
export interface MetricsSources {
  /** Jobs by state. */
  jobCounts: () => Promise<Record<string, number>>;
  /** Renditions being made now, and made since start. */
  renditions: () => { inFlight: number; made: number };
}

/**
 * The gateway's Prometheus metrics (prom-client), on a registry of its own: HTTP requests
 * by route and status, GraphQL operations by name and outcome, bytes uploaded and
 * downloaded, uploads in flight, rate-limit refusals, jobs by state and their durations,
 * extraction failures, renditions, and Node's process defaults.
 */
export function createMetrics(sources: MetricsSources) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const requests = new Histogram({
    name: 'assetgate_http_request_duration_seconds',
    help: 'HTTP requests by route, method and status, and how long they took.',
    labelNames: ['route', 'method', 'status'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120],
    registers,
  });
  const operations = new Counter({
    name: 'assetgate_graphql_operations_total',
    help: 'GraphQL operations by operation name and outcome (ok, or the first error code).',
    labelNames: ['operation', 'outcome'],
    registers,
  });
  const uploaded = new Counter({
    name: 'assetgate_uploaded_bytes_total',
    help: 'Bytes received by upload requests.',
    registers,
  });
  const downloaded = new Counter({
    name: 'assetgate_downloaded_bytes_total',
    help: 'Bytes sent by downloads.',
    registers,
  });
  const uploadsInFlight = new Gauge({
    name: 'assetgate_uploads_in_flight',
    help: 'Upload requests under way.',
    registers,
  });
  const rateLimited = new Counter({
    name: 'assetgate_rate_limited_total',
    help: 'Requests refused by a rate limit or the upload slots (429), by route.',
    labelNames: ['route'],
    registers,
  });
  new Gauge({
    name: 'assetgate_jobs',
    help: 'Background jobs by state.',
    labelNames: ['state'],
    registers,
    async collect() {
      const counts = await sources.jobCounts();
      this.reset();
      for (const state of ['queued', 'running', 'done', 'failed']) this.set({ state }, counts[state] ?? 0);
    },
  });
  const jobDuration = new Histogram({
    name: 'assetgate_job_duration_seconds',
    help: 'Background jobs run, by kind and outcome (done, deferred, retry, failed).',
    labelNames: ['kind', 'outcome'],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers,
  });
  const extractionFailures = new Counter({
    name: 'assetgate_extraction_failures_total',
    help: 'Files processing could not read (the asset ended FAILED).',
    registers,
  });
  new Gauge({
    name: 'assetgate_renditions_in_flight',
    help: 'Image renditions being made now.',
    registers,
    collect() {
      this.set(sources.renditions().inFlight);
    },
  });
  new Gauge({
    name: 'assetgate_renditions_made',
    help: 'Image renditions made by this process since it started.',
    registers,
    collect() {
      this.set(sources.renditions().made);
    },
  });

  return {
    registry,
    request(facts: {
      route: string;
      method: string;
      status: number;
      seconds: number;
      bytesIn: number;
      bytesOut: number;
      upload: boolean;
    }) {
      requests.observe({ route: facts.route, method: facts.method, status: String(facts.status) }, facts.seconds);
      if (facts.upload) uploaded.inc(facts.bytesIn);
      if ((facts.route === '/download/' || facts.route === '/dl/') && facts.method === 'GET')
        downloaded.inc(facts.bytesOut);
      if (facts.status === 429) rateLimited.inc({ route: facts.route });
    },
    uploadStarted: () => uploadsInFlight.inc(),
    uploadEnded: () => uploadsInFlight.dec(),
    operation: (name: string, outcome: string) => operations.inc({ operation: name, outcome }),
    job: (kind: string, outcome: string, seconds: number) => jobDuration.observe({ kind, outcome }, seconds),
    extractionFailed: () => extractionFailures.inc(),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
