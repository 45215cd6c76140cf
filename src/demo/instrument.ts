/**
 * OpenTelemetry for the demo apps: @opentelemetry/sdk-node with the HTTP and
 * gRPC instrumentations, W3C trace context, and the OTLP gRPC trace exporter
 * to the collector. One SDK per process (it registers global providers), so
 * each app runs as its own process when traced.
 *
 * Why the apps load `node:http` and `@grpc/grpc-js` through loadHttp() /
 * loadGrpc() instead of `import`: the instrumentations patch modules as they
 * are loaded, through require-in-the-middle for CommonJS `require` and
 * import-in-the-middle for ESM `import`. The ESM path only works when Node
 * was started with a loader hook (`--experimental-loader
 * @opentelemetry/instrumentation/hook.mjs`, see that package's README,
 * "Instrumentation for ECMAScript Modules"). Checked with these versions on
 * Node 20: after sdk.start(), `await import('@grpc/grpc-js')` gives an
 * unpatched Client and Server (no gRPC spans at all), while
 * `require('@grpc/grpc-js')` gives patched ones. (An ESM import of node:http
 * did come back patched, but only because builtins are shared with the CJS
 * loader; we load both modules the same way rather than rely on that.) Our
 * modules are ESM (NodeNext), and asking everyone who runs a demo app for a
 * loader flag is fragile, so the apps `require` the two modules through
 * createRequire, at start-up and after startInstrumentation(). Type-only
 * imports are fine anywhere (they are erased).
 */
import type { RequestOptions } from 'node:http';
import { createRequire } from 'node:module';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { GrpcInstrumentation } from '@opentelemetry/instrumentation-grpc';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';

const requireCjs = createRequire(import.meta.url);

export interface InstrumentationOptions {
  /** service.name of every span this process emits. */
  serviceName: string;
  /** OTLP gRPC endpoint, e.g. http://127.0.0.1:4317. */
  collectorUrl: string;
  /** Batch span processor delay. */
  exportDelayMs: number;
}

export interface DemoInstrumentation {
  /** Flushes every span still queued and stops the SDK. Safe to call twice. */
  shutdown(): Promise<void>;
}

/** Export attempts give up after this, so a missing collector cannot stall shutdown for long. */
const EXPORT_TIMEOUT_MS = 5_000;
/** Spans queued while the collector is slow; beyond it the SDK drops (and a demo loses a little, never memory). */
const MAX_QUEUED_SPANS = 4_096;

/**
 * The CONNECT a client opens to an explicit proxy is tunnel plumbing, not a
 * request of the app. Traced, it would start a client span that never ends
 * (the answer arrives as 'connect', not 'response'; one leaked span per
 * tunnel) and send that span's traceparent on the CONNECT, where the mesh
 * proxy would take a span that is never exported for its parent.
 */
function isConnectTunnel(request: RequestOptions): boolean {
  return request.method === 'CONNECT';
}

/**
 * Starts sdk-node for this process. Call it before loadHttp()/loadGrpc() so
 * those modules come back patched.
 */
export function startInstrumentation(options: InstrumentationOptions): DemoInstrumentation {
  const exporter = new OTLPTraceExporter({ url: options.collectorUrl, timeoutMillis: EXPORT_TIMEOUT_MS });
  const sdk = new NodeSDK({
    serviceName: options.serviceName,
    textMapPropagator: new W3CTraceContextPropagator(),
    spanProcessors: [
      new BatchSpanProcessor(exporter, {
        scheduledDelayMillis: options.exportDelayMs,
        maxQueueSize: MAX_QUEUED_SPANS,
        exportTimeoutMillis: EXPORT_TIMEOUT_MS,
      }),
    ],
    // Traces only. Without these, sdk-node would read OTEL_METRICS_EXPORTER /
    // OTEL_LOGS_EXPORTER and default to OTLP/HTTP exporters aimed at
    // localhost:4318, which is not where our collector is in tests.
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [
      new HttpInstrumentation({
        // grpc-js opens its proxy tunnel with http.request({ method: 'CONNECT' }).
        ignoreOutgoingRequestHook: isConnectTunnel,
      }),
      new GrpcInstrumentation(),
    ],
  });
  sdk.start();
  let stopped: Promise<void> | undefined;
  return {
    shutdown(): Promise<void> {
      stopped ??= sdk.shutdown();
      return stopped;
    },
  };
}

/** node:http, through require so the HTTP instrumentation can patch it (see the top of this file). */
export function loadHttp(): typeof import('node:http') {
  return requireCjs('node:http') as typeof import('node:http');
}

/** @grpc/grpc-js, through require so the gRPC instrumentation can patch it (see the top of this file). */
export function loadGrpc(): typeof import('@grpc/grpc-js') {
  return requireCjs('@grpc/grpc-js') as typeof import('@grpc/grpc-js');
}
