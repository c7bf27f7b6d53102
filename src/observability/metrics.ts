import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { createOperationNames, methodLabel } from './metric-labels.js';

/** Where the gauges read what they report, when scraped. */
export interface MetricsSources {
  /** Jobs by state. */
  jobCounts: () => Promise<Record<string, number>>;
  /** How far behind processing is: seconds the longest-waiting due job has waited. */
  backlog: () => Promise<{ oldestAgeSeconds: number }>;
  /** Renditions being made now, and made since start. */
  renditions: () => { inFlight: number; made: number };
  /** Warm renditions held in memory (RENDITION_HOT_MAX), and the bytes they cost. */
  held: () => { entries: number; bytes: number };
}

/**
 * The gateway's Prometheus metrics (prom-client), on a registry of its own: HTTP requests
 * by route and status, GraphQL operations by name and outcome, bytes uploaded and
 * downloaded, uploads in flight, rate-limit refusals, jobs by state and their durations,
 * extraction failures, renditions, and Node's process defaults. Every label comes from a
 * closed set: routes from the route table, methods from the ones served, statuses from
 * the answers given, operation names from those known (see `createOperationNames`).
 */
export function createMetrics(sources: MetricsSources, options: { maxOperations: number }) {
  const operationNames = createOperationNames(options.maxOperations);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const requests = new Histogram({
    name: 'assetgate_http_request_duration_seconds',
    help: 'HTTP requests answered (not refused with a 4xx) by route, method and status, and how long they took.',
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
  // Refusals are counted without a method or a duration: whatever a caller invents, they add
  // one series per route and status, not a histogram per method.
  const refused = new Counter({
    name: 'assetgate_http_refused_total',
    help: 'HTTP requests refused with a client error (4xx), by route and status.',
    labelNames: ['route', 'status'],
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
  new Gauge({
    name: 'assetgate_jobs_oldest_age_seconds',
    help: 'Seconds the longest-waiting due job has waited (0: none waiting): how far behind processing is.',
    registers,
    async collect() {
      this.set((await sources.backlog()).oldestAgeSeconds);
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
    name: 'assetgate_renditions_held_bytes',
    help: 'Bytes of warm renditions held in memory (at most RENDITION_HOT_MAX).',
    registers,
    collect() {
      this.set(sources.held().bytes);
    },
  });
  new Gauge({
    name: 'assetgate_renditions_held',
    help: 'Warm renditions held in memory.',
    registers,
    collect() {
      this.set(sources.held().entries);
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
      const status = String(facts.status);
      if (facts.status >= 400 && facts.status < 500) refused.inc({ route: facts.route, status });
      else requests.observe({ route: facts.route, method: methodLabel(facts.method), status }, facts.seconds);
      if (facts.upload) uploaded.inc(facts.bytesIn);
      if ((facts.route === '/download/' || facts.route === '/dl/') && facts.method === 'GET')
        downloaded.inc(facts.bytesOut);
      if (facts.status === 429) rateLimited.inc({ route: facts.route });
    },
    uploadStarted: () => uploadsInFlight.inc(),
    uploadEnded: () => uploadsInFlight.dec(),
    /** Counts an operation; `trusted` (a key's request that succeeded) may make its name known. */
    operation: (name: string, outcome: string, trusted: boolean) =>
      operations.inc({ operation: operationNames.label(name, trusted), outcome }),
    job: (kind: string, outcome: string, seconds: number) => jobDuration.observe({ kind, outcome }, seconds),
    extractionFailed: () => extractionFailures.inc(),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
