/**
 * OTLP trace decode throughput on one core.
 *
 * Builds one export request of 512 spans × 10 attributes with the real
 * OpenTelemetry JS SDK and serializers, then decodes it in a bounded loop and
 * prints spans/s for the protobuf and JSON decoders.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/otlp-decode.js [seconds per decoder, default 3] [protobuf|json]
 */
import { SpanKind, context, trace } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { decodeTracesJson } from '../collector/otlp/traces-json.js';
import { decodeTracesProto } from '../collector/otlp/traces-proto.js';

const SPANS = 512;
const MAX_ITERATIONS = 100_000;
const ROUND_MS = 200;

async function buildSpans(): Promise<ReadableSpan[]> {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'reviews', 'service.version': 'v1', 'k8s.namespace.name': 'default' }),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer('tracemesh-proxy', '0.1.0');
  for (let i = 0; i < SPANS / 2; i++) {
    const server = tracer.startSpan('GET /reviews/{id}', {
      kind: SpanKind.SERVER,
      attributes: {
        'http.request.method': 'GET',
        'http.route': '/reviews/{id}',
        'url.path': `/reviews/${i}`,
        'http.response.status_code': 200,
        'server.address': 'reviews.default.svc',
        'server.port': 9080,
        'client.address': '10.0.3.17',
        'tracemesh.source.service': 'productpage',
        'tracemesh.destination.version': 'v1',
        'http.response.body.size': 1234 + i,
      },
    });
    const client = tracer.startSpan(
      'GET',
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'http.request.method': 'GET',
          'url.full': `http://ratings:9080/ratings/${i}`,
          'http.response.status_code': 200,
          'server.address': 'ratings',
          'server.port': 9080,
          'network.peer.address': '10.0.4.22',
          'tracemesh.route': 'ratings-default',
          'tracemesh.retry.attempt': 0,
          'tracemesh.circuit.state': 'closed',
          'tracemesh.upstream.latency_ms': 3.75,
        },
      },
      trace.setSpan(context.active(), server),
    );
    client.end();
    server.end();
  }
  await provider.forceFlush();
  return exporter.getFinishedSpans();
}

/**
 * Decodes in rounds of ROUND_MS until the budget is spent. The best round is
 * reported beside the overall rate: on a shared machine it is the figure
 * least disturbed by other processes.
 */
function measure(label: string, seconds: number, decode: () => number): void {
  // Warm up so the figure is the optimized code's.
  for (let i = 0; i < 200; i++) decode();
  const budgetNs = BigInt(Math.round(seconds * 1e9));
  const roundNs = BigInt(ROUND_MS * 1e6);
  const cpuBefore = process.cpuUsage();
  const started = process.hrtime.bigint();
  let spans = 0;
  let iterations = 0;
  let best = 0;
  while (iterations < MAX_ITERATIONS && process.hrtime.bigint() - started < budgetNs) {
    const roundStart = process.hrtime.bigint();
    let roundSpans = 0;
    while (iterations < MAX_ITERATIONS && process.hrtime.bigint() - roundStart < roundNs) {
      roundSpans += decode();
      iterations++;
    }
    const rate = roundSpans / (Number(process.hrtime.bigint() - roundStart) / 1e9);
    if (rate > best) best = rate;
    spans += roundSpans;
  }
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(cpuBefore);
  // CPU time counts all of the process's threads (GC helpers too).
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  console.log(
    `${label}: ${fmt(spans / elapsed)} spans/s overall, best ${ROUND_MS} ms round ${fmt(best)} spans/s, ` +
      `${fmt(spans / cpuSeconds)} spans per CPU-second (${iterations} requests of ${SPANS} spans in ${elapsed.toFixed(2)} s)`,
  );
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 3);
  const spans = await buildSpans();
  const proto = ProtobufTraceSerializer.serializeRequest(spans)!;
  const json = JsonTraceSerializer.serializeRequest(spans)!;
  const check = decodeTracesProto(proto);
  if (check.items.length !== SPANS || check.rejected !== 0) throw new Error(`bad fixture: ${JSON.stringify(check.errors)}`);
  console.log(`request: ${SPANS} spans × 10 attributes; protobuf ${proto.length} bytes, JSON ${json.length} bytes; node ${process.version}`);
  const only = process.argv[3];
  if (only !== 'json') measure('protobuf decode', seconds, () => decodeTracesProto(proto).items.length);
  if (only !== 'protobuf') measure('JSON decode    ', seconds, () => decodeTracesJson(json).items.length);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
