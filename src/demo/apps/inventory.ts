/**
 * `inventory`: the demo's plain-TCP service. A line server on node:net
 * (protocol in inventory-protocol.ts): "STOCK <id>" → "<id> <n>", anything
 * else → "ERR ...". There is no net instrumentation for our SDK version, so
 * each line gets a SERVER span made here, continuing the caller's trace when
 * the line carries a traceparent.
 *
 * Run: node dist/src/demo/apps/inventory.js --port 7070 --collector http://127.0.0.1:4317
 */
import net from 'node:net';
import type { Server, Socket } from 'node:net';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, propagation, trace } from '@opentelemetry/api';
import type { Context, Tracer } from '@opentelemetry/api';
import type { DemoInstrumentation } from '../instrument.js';
import { ATTR_PRODUCT_ID, ATTR_STOCK_UNITS, stockFor } from './catalog.js';
import { LineSplitter, MAX_LINE_BYTES, formatErrorAnswer, formatStockAnswer, parseInventoryRequest } from './inventory-protocol.js';
import { DEFAULT_HOST } from './config.js';
import { isMainModule, runDemoApp } from './lifecycle.js';
import type { RunningApp } from './lifecycle.js';

export interface InventoryOptions {
  /** Listen port; 0 = any free port. */
  port: number;
  /** Listen address; default 127.0.0.1 (DEFAULT_HOST). */
  host?: string;
  /** Flushed and stopped by stop(); omit when running in-process without tracing. */
  instrumentation?: DemoInstrumentation;
}

/** A connection with no bytes either way for this long is closed. */
const IDLE_TIMEOUT_MS = 30_000;
const MAX_CONNECTIONS = 512;

/** Per-line span attributes (OTel network, server and client conventions). */
const ATTR_NETWORK_TRANSPORT = 'network.transport';
const ATTR_SERVER_PORT = 'server.port';
const ATTR_CLIENT_ADDRESS = 'client.address';
const ATTR_CLIENT_PORT = 'client.port';

/** Answers one request line and records its SERVER span. */
function answerLine(tracer: Tracer, line: string, socket: Socket, serverPort: number): string {
  const request = parseInventoryRequest(line);
  const parent: Context =
    request.kind === 'stock' && request.traceparent !== undefined
      ? propagation.extract(ROOT_CONTEXT, { traceparent: request.traceparent })
      : ROOT_CONTEXT;
  const span = tracer.startSpan(
    request.kind === 'stock' ? 'STOCK' : 'invalid line',
    {
      kind: SpanKind.SERVER,
      attributes: {
        [ATTR_NETWORK_TRANSPORT]: 'tcp',
        [ATTR_SERVER_PORT]: serverPort,
        [ATTR_CLIENT_ADDRESS]: socket.remoteAddress ?? '',
        [ATTR_CLIENT_PORT]: socket.remotePort ?? 0,
      },
    },
    parent,
  );
  let answer: string;
  if (request.kind === 'stock') {
    const units = stockFor(request.productId);
    span.setAttribute(ATTR_PRODUCT_ID, request.productId);
    span.setAttribute(ATTR_STOCK_UNITS, units);
    answer = formatStockAnswer(request.productId, units);
  } else {
    span.setStatus({ code: SpanStatusCode.ERROR, message: request.reason });
    answer = formatErrorAnswer(request.reason);
  }
  span.end();
  return answer;
}

function serveConnection(tracer: Tracer, socket: Socket, serverPort: number): void {
  const splitter = new LineSplitter(MAX_LINE_BYTES);
  socket.setTimeout(IDLE_TIMEOUT_MS, () => socket.destroy());
  // A reset from a client is its business; without a listener it would crash the process.
  socket.on('error', () => socket.destroy());
  // A client that pipelines lines but does not read answers is paused, not buffered without end.
  socket.on('drain', () => socket.resume());
  socket.on('data', (chunk: Buffer) => {
    if (socket.writableEnded) return;
    const lines = splitter.push(chunk);
    if (lines === undefined) {
      socket.end(formatErrorAnswer(`line longer than ${MAX_LINE_BYTES} bytes; closing`));
      return;
    }
    let writable = true;
    for (const line of lines) writable = socket.write(answerLine(tracer, line, socket, serverPort));
    if (!writable) socket.pause();
  });
}

export async function start(options: InventoryOptions): Promise<RunningApp> {
  const tracer = trace.getTracer('tracemesh-demo-inventory');
  const sockets = new Set<Socket>();
  let serverPort = 0;
  const server: Server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    serveConnection(tracer, socket, serverPort);
  });
  server.maxConnections = MAX_CONNECTIONS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? DEFAULT_HOST, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  serverPort = typeof address === 'object' && address !== null ? address.port : options.port;
  let stopped: Promise<void> | undefined;
  return {
    port: serverPort,
    stop(): Promise<void> {
      stopped ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const socket of sockets) socket.destroy();
        await closed;
        await options.instrumentation?.shutdown();
      })();
      return stopped;
    },
  };
}

if (isMainModule(import.meta.url)) {
  await runDemoApp('inventory', (config, instrumentation) => start({ host: config.host, port: config.port, instrumentation }));
}
