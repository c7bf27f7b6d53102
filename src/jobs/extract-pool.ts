import { Piscina } from 'piscina';
import { createLimiter } from '../adapters/limiter.js';
import type { ExtractRequest, ExtractResult, PageRenderRequest, RenderRequest, RenderResult } from './extract-types.js';

/** Options of `createExtractPool`. */
export interface ExtractPoolOptions {
  /** Worker threads. @default 2 */
  threads: number;
  /** Longest extraction; the worker is terminated past it. @default 30000 */
  timeoutMs: number;
  /** Heap cap of a worker, MiB; a worker over it is terminated. @default 256 */
  memoryMb: number;
  /**
   * How long a worker may wait for work before it exits, giving its heap and libvips'
   * buffers back to the system; the next job starts a new one (about 100 ms). @default 10000
   */
  idleTimeoutMs: number;
}

/** An extraction that could not be done on these bytes: the asset ends FAILED with `reason`. */
export class ExtractionFailure extends Error {
  constructor(
    readonly reason: string,
    options?: ErrorOptions,
  ) {
    super(reason, options);
  }
}

function describe(error: unknown, timeoutMs: number): string {
  const e = error as { name?: string; code?: string; message?: string };
  if (e?.name === 'AbortError' || e?.name === 'TimeoutError') return `processing took longer than ${timeoutMs} ms`;
  if (e?.code === 'ERR_WORKER_OUT_OF_MEMORY') return 'processing needed more memory than allowed';
  return `could not read the file: ${e?.message ?? String(error)}`.slice(0, 500);
}

/**
 * Worker threads for extraction (piscina). Anything that goes wrong inside a worker
 * (a parser's error, the time cap, the memory cap) becomes an `ExtractionFailure`;
 * the server and the other workers carry on.
 */
export function createExtractPool(options: ExtractPoolOptions) {
  // From source (tests, `npm run dev`) the worker is TypeScript and needs tsx.
  const fromSource = import.meta.url.endsWith('.ts');
  const pool = new Piscina({
    filename: new URL(`./extract-worker.${fromSource ? 'ts' : 'js'}`, import.meta.url).href,
    maxThreads: options.threads,
    minThreads: 0,
    idleTimeout: options.idleTimeoutMs,
    resourceLimits: { maxOldGenerationSizeMb: options.memoryMb, maxYoungGenerationSizeMb: 32 },
    execArgv: fromSource ? ['--import', 'tsx'] : [],
  });
  // Jobs in progress outnumber the threads (JOB_CONCURRENCY per EXTRACT_THREADS): they wait here
  // for a thread, so that the time limit below counts the work and not the wait.
  const limiter = createLimiter(options.threads);
  async function call<T>(name: string, request: unknown): Promise<T> {
    try {
      return await limiter.run(() => pool.run(request, { name, signal: AbortSignal.timeout(options.timeoutMs) }));
    } catch (error) {
      throw new ExtractionFailure(describe(error, options.timeoutMs), { cause: error });
    }
  }
  return {
    run: (request: ExtractRequest): Promise<ExtractResult> => call('default', request),
    /** Makes an image rendition (see `render` in the worker), under the same caps. */
    render: (request: RenderRequest): Promise<RenderResult> => call('render', request),
    /** Makes a rendition of one page of a PDF (see `renderPage`), under the same caps. */
    renderPage: (request: PageRenderRequest): Promise<RenderResult> => call('renderPage', request),
    /** Worker threads alive now: none once the pool has been idle for `idleTimeoutMs`. */
    get threads(): number {
      return pool.threads.length;
    },
    close: () => pool.destroy(),
  };
}

export type ExtractPool = ReturnType<typeof createExtractPool>;
