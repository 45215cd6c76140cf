/**
 * `ratings`: the demo's gRPC service (@grpc/grpc-js, service definition in
 * ratings-service.ts). Unary GetRating answers the product's rating;
 * server-streaming WatchRatings sends a few updates and ends. Server spans
 * come from the gRPC instrumentation, which continues the caller's trace
 * from the traceparent in the request metadata.
 *
 * Run: node dist/src/demo/apps/ratings.js --port 50051 --collector http://127.0.0.1:4317
 */
import { trace } from '@opentelemetry/api';
import type { ServerUnaryCall, ServerWritableStream, sendUnaryData } from '@grpc/grpc-js';
import { loadGrpc } from '../instrument.js';
import type { DemoInstrumentation } from '../instrument.js';
import { ATTR_PRODUCT_ID, ratingFor } from './catalog.js';
import { DEFAULT_HOST, formatListenAddress } from './config.js';
import { NO_FAULT_SOURCE, delayFor, faultSource, shouldFail } from './faults.js';
import type { FaultSource } from './faults.js';
import { isMainModule, runDemoApp } from './lifecycle.js';
import type { RunningApp } from './lifecycle.js';
import { MAX_RATINGS_MESSAGE_BYTES, RATINGS_SERVICE } from './ratings-service.js';
import type { Decoded, GetRatingRequest, Rating, WatchRatingsRequest } from './ratings-service.js';

export interface RatingsOptions {
  /** Listen port; 0 = any free port. */
  port: number;
  /** Listen address; default 127.0.0.1 (DEFAULT_HOST). */
  host?: string;
  /** Faults GetRating plays (delay, then UNAVAILABLE at the error rate); the demo's scenario slows ratings down this way. */
  faults?: FaultSource;
  /** Flushed and stopped by stop(); omit when running in-process without tracing. */
  instrumentation?: DemoInstrumentation;
}

/** Streams per HTTP/2 connection; the demo needs few, and a client cannot pile up more. */
const MAX_CONCURRENT_STREAMS = 100;
/** Connections idle for this long are closed with GOAWAY. */
const MAX_CONNECTION_IDLE_MS = 60_000;
/** stop() lets calls in flight finish for this long, then cuts them. */
const GRACEFUL_STOP_MS = 2_000;

export async function start(options: RatingsOptions): Promise<RunningApp> {
  const grpc = loadGrpc();
  const { status } = grpc;
  const faults = options.faults ?? NO_FAULT_SOURCE;

  const getRating = (call: ServerUnaryCall<Decoded<GetRatingRequest>, Rating>, callback: sendUnaryData<Rating>): void => {
    const request = call.request;
    if (!request.ok) {
      callback({ code: status.INVALID_ARGUMENT, details: request.error });
      return;
    }
    const { productId } = request.value;
    trace.getActiveSpan()?.setAttribute(ATTR_PRODUCT_ID, productId);
    const figures = ratingFor(productId);
    const now = faults.current();
    const answer = (): void => {
      if (shouldFail(now)) callback({ code: status.UNAVAILABLE, details: 'ratings: injected failure (demo scenario)' });
      else callback(null, { productId, stars: figures.stars, count: figures.count });
    };
    const delay = delayFor(now);
    if (delay === undefined) answer();
    else void delay.then(answer);
  };

  const watchRatings = (call: ServerWritableStream<Decoded<WatchRatingsRequest>, Rating>): void => {
    const request = call.request;
    if (!request.ok) {
      // grpc-js's way to end a server stream with a status: an 'error' event carrying code and details.
      call.emit('error', { code: status.INVALID_ARGUMENT, details: request.error });
      return;
    }
    const { productId, updates } = request.value;
    trace.getActiveSpan()?.setAttribute(ATTR_PRODUCT_ID, productId);
    const figures = ratingFor(productId);
    // At most MAX_WATCH_UPDATES small messages: bounded without waiting for 'drain'.
    for (let i = 0; i < updates && !call.cancelled; i++) {
      call.write({ productId, stars: figures.stars, count: figures.count + i });
    }
    call.end();
  };

  const server = new grpc.Server({
    'grpc.max_receive_message_length': MAX_RATINGS_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_RATINGS_MESSAGE_BYTES,
    'grpc.max_concurrent_streams': MAX_CONCURRENT_STREAMS,
    'grpc.max_connection_idle_ms': MAX_CONNECTION_IDLE_MS,
  });
  server.addService(RATINGS_SERVICE, { GetRating: getRating, WatchRatings: watchRatings });
  const port = await new Promise<number>((resolve, reject) => {
    const target = formatListenAddress({ host: options.host ?? DEFAULT_HOST, port: options.port });
    server.bindAsync(target, grpc.ServerCredentials.createInsecure(), (err, boundPort) => {
      if (err === null) {
        resolve(boundPort);
        return;
      }
      server.forceShutdown();
      faults.close();
      reject(err);
    });
  });

  let stopped: Promise<void> | undefined;
  return {
    port,
    stop(): Promise<void> {
      stopped ??= (async () => {
        await new Promise<void>((resolve) => {
          const cut = setTimeout(() => {
            server.forceShutdown();
            resolve();
          }, GRACEFUL_STOP_MS);
          cut.unref();
          server.tryShutdown(() => {
            clearTimeout(cut);
            resolve();
          });
        });
        faults.close();
        await options.instrumentation?.shutdown();
      })();
      return stopped;
    },
  };
}

if (isMainModule(import.meta.url)) {
  await runDemoApp('ratings', (config, instrumentation) =>
    start({ host: config.host, port: config.port, faults: faultSource(config.faultFile, 'ratings'), instrumentation }),
  );
}
