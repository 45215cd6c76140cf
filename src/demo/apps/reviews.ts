/**
 * `reviews`: the demo's versioned HTTP service. GET /reviews/:id asks
 * `ratings` over gRPC (through the explicit proxy in the demo) and answers
 * the product's reviews with the rating, tagged with this instance's
 * `--version`. The demo runs v1, v2 and v3 behind one mesh service
 * `reviews`; each reports spans as `reviews-<version>` so the collector's
 * aggregates tell the versions apart (the proxies' spans are `reviews`).
 *
 * Faults (`--fault-file`, faults.ts): errorRate answers 503, delayMs waits
 * before answering. The demo's scenario clock makes v3 fail this way.
 *
 * Run: node dist/src/demo/apps/reviews.js --version v2 --port 9082 --ratings 127.0.0.1:50051 \
 *        --collector http://127.0.0.1:4317 [--proxy http://127.0.0.1:15001] [--fault-file FILE]
 */
import { trace } from '@opentelemetry/api';
import { errorMessage } from '../../lib/errors.js';
import { loadGrpc, loadHttp } from '../instrument.js';
import type { DemoInstrumentation } from '../instrument.js';
import { DEFAULT_HOST } from './config.js';
import type { PeerAddress, ProxyAddress } from './config.js';
import { NO_FAULT_SOURCE, delayFor, faultSource, shouldFail } from './faults.js';
import type { FaultSource } from './faults.js';
import { serveJsonApp } from './json-server.js';
import type { JsonReply } from './json-server.js';
import { isMainModule, runDemoApp } from './lifecycle.js';
import type { RunningApp } from './lifecycle.js';
import { RatingsClient } from './ratings-client.js';

export interface ReviewsOptions {
  /** Listen port; 0 = any free port. */
  port: number;
  /** Listen address; default 127.0.0.1 (DEFAULT_HOST). */
  host?: string;
  /** v1, v2, v3 ...: in every answer and on the spans. */
  version: string;
  ratings: PeerAddress;
  proxy?: ProxyAddress | undefined;
  faults?: FaultSource;
  instrumentation?: DemoInstrumentation;
}

/** The answer of GET /reviews/:id. */
export interface ReviewsView {
  productId: string;
  version: string;
  rating: { stars: number; count: number };
  reviews: string[];
}

const PEER_TIMEOUT_MS = 2_000;
export const ATTR_REVIEWS_VERSION = 'demo.reviews_version';

/** Two made-up review lines per product; v2 and v3 add a third (they "show more"). */
export function reviewLines(productId: string, version: string): string[] {
  const lines = [`Product ${productId} does what it says.`, `Arrived quickly; would buy ${productId} again.`];
  if (version !== 'v1') lines.push(`(${version}) Reviewers with photos rate ${productId} higher.`);
  return lines;
}

export async function start(options: ReviewsOptions): Promise<RunningApp> {
  const faults = options.faults ?? NO_FAULT_SOURCE;
  const ratings = new RatingsClient(loadGrpc(), { target: options.ratings, proxy: options.proxy, deadlineMs: PEER_TIMEOUT_MS });
  const handle = async (productId: string): Promise<JsonReply> => {
    trace.getActiveSpan()?.setAttribute(ATTR_REVIEWS_VERSION, options.version);
    const now = faults.current();
    await delayFor(now);
    if (shouldFail(now)) return { status: 503, body: { error: `reviews ${options.version}: injected failure (demo scenario)` } };
    try {
      const rating = await ratings.getRating(productId);
      const view: ReviewsView = {
        productId,
        version: options.version,
        rating: { stars: rating.stars, count: rating.count },
        reviews: reviewLines(productId, options.version),
      };
      return { status: 200, body: view };
    } catch (err) {
      return { status: 502, body: { error: errorMessage(err) } };
    }
  };
  const closeClients = (): void => {
    ratings.close();
    faults.close();
  };
  return serveJsonApp(loadHttp(), { host: options.host ?? DEFAULT_HOST, port: options.port }, { prefix: '/reviews', handle }, closeClients, options.instrumentation);
}

if (isMainModule(import.meta.url)) {
  await runDemoApp('reviews', (config, instrumentation) =>
    start({
      host: config.host,
      port: config.port,
      version: config.version,
      ratings: config.ratings,
      proxy: config.proxy,
      faults: faultSource(config.faultFile, 'reviews'),
      instrumentation,
    }),
  );
}
