import type { IncomingMessage, ServerResponse } from 'node:http';
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import type { Store } from '../storage/store.js';
import { serviceGraph } from './graph.js';
import {
  BadParamError,
  parseGraphParams,
  parseNoParams,
  parseQueryString,
  parseRedParams,
  parseServicesParams,
  parseTraceId,
  parseTraceSearchParams,
} from './params.js';
import { redSeries } from './red.js';
import { listServices } from './services.js';
import { searchTraces } from './trace-search.js';
import { getTrace } from './traces-by-id.js';
import { badParamBody, notFoundBody, toWireError } from './wire-errors.js';

export interface QueryApiOptions {
  store: Store;
  /** True once the store is open and the schema current; `/ready` answers 503 until then. */
  isReady: () => boolean | Promise<boolean>;
  /** The current time in Unix nanoseconds, which `since` windows end at. Default: the wall clock. */
  now?: () => bigint;
  /** fastify logging; off by default (the API must not log every request). */
  logger?: boolean;
}

/** Only GETs without bodies are served; anything bigger than this is refused before it is read. */
const BODY_LIMIT_BYTES = 16 * 1024;
/** Headers and body must arrive within this. */
const REQUEST_TIMEOUT_MS = 30_000;
/** An idle socket is closed after this (store queries are bounded to 30 s by the store itself). */
const CONNECTION_TIMEOUT_MS = 60_000;
const KEEP_ALIVE_TIMEOUT_MS = 5_000;

/**
 * The router's own refusals, before any route runs: a path parameter it cannot
 * decode or that is past its length bound. `{traceId}` is the only path
 * parameter, so the answer is the same 400 a malformed trace id gets.
 */
function sendBadTraceId(_path: string, _request: IncomingMessage, response: ServerResponse): void {
  const body = JSON.stringify(badParamBody(new BadParamError('traceId', 'is not a trace id (1-32 hex digits)')));
  response.writeHead(400, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  response.end(body);
}

function wallClockNanos(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

/**
 * The query API (DESIGN.md, "Query API"). Routes only validate (params.ts),
 * call the query for the endpoint and send its answer; every failure goes
 * through the one error mapping in wire-errors.ts. The caller listens.
 */
export function createQueryApi(options: QueryApiOptions): FastifyInstance {
  const { store, isReady } = options;
  const now = options.now ?? wallClockNanos;
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: BODY_LIMIT_BYTES,
    requestTimeout: REQUEST_TIMEOUT_MS,
    connectionTimeout: CONNECTION_TIMEOUT_MS,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    routerOptions: { querystringParser: parseQueryString, onBadUrl: sendBadTraceId, onMaxParamLength: sendBadTraceId },
  });

  app.setErrorHandler((err, _request, reply) => {
    const wire = toWireError(err);
    void reply.code(wire.status).send(wire.body);
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send(notFoundBody(`no such endpoint: ${request.method} ${request.url.split('?')[0] ?? ''}`));
  });

  app.get('/ready', async (request, reply) => {
    parseNoParams(request.query);
    let ready = false;
    try {
      ready = await isReady();
    } catch {
      ready = false;
    }
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready' });
  });

  app.get<{ Params: { traceId: string } }>('/api/v1/traces/:traceId', async (request, reply) => {
    const traceId = parseTraceId(request.params.traceId);
    parseNoParams(request.query);
    const trace = await getTrace(store, traceId);
    if (trace === undefined) return reply.code(404).send(notFoundBody(`trace ${traceId} not found`));
    return reply.send(trace);
  });

  app.get('/api/v1/traces', async (request, reply) => {
    const params = parseTraceSearchParams(request.query);
    return reply.send(await searchTraces(store, params, now()));
  });

  app.get('/api/v1/services', async (request, reply) => {
    const params = parseServicesParams(request.query);
    return reply.send(await listServices(store, params, now()));
  });

  app.get('/api/v1/graph', async (request, reply) => {
    const params = parseGraphParams(request.query);
    return reply.send(await serviceGraph(store, params, now()));
  });

  app.get('/api/v1/red', async (request, reply) => {
    const params = parseRedParams(request.query);
    return reply.send(await redSeries(store, params, now()));
  });

  return app;
}
