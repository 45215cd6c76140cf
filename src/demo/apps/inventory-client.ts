/**
 * web's client of `inventory`: one TCP connection per query (direct, or a
 * CONNECT tunnel through the explicit proxy), one line out, one line back.
 * No instrumentation covers node:net, so the CLIENT span is made here and
 * its traceparent rides on the request line (inventory-protocol.ts).
 */
import net from 'node:net';
import type { Socket } from 'node:net';
import { SpanKind, SpanStatusCode, context, propagation, trace } from '@opentelemetry/api';
import type { Tracer } from '@opentelemetry/api';
import { TracemeshError, errorMessage } from '../../lib/errors.js';
import { ATTR_PRODUCT_ID, ATTR_STOCK_UNITS } from './catalog.js';
import type { PeerAddress, ProxyAddress } from './config.js';
import { connectViaProxy } from './connect-via-proxy.js';
import { LineSplitter, MAX_LINE_BYTES, formatStockRequest, parseStockAnswer } from './inventory-protocol.js';

export interface InventoryClientOptions {
  /** Where inventory listens, as this app names it (`inventory:7070` behind a proxy). */
  readonly target: PeerAddress;
  /** Explicit-mode proxy; undefined connects straight to `target`. */
  readonly proxy: ProxyAddress | undefined;
  /** Bounds connecting (with the CONNECT answer, behind a proxy), and then the answer line. */
  readonly timeoutMs: number;
}

interface TraceCarrier {
  traceparent?: string;
}

function connectDirect(target: PeerAddress, timeoutMs: number): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const socket = net.connect({ host: target.host, port: target.port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new TracemeshError('TM_ERR_UPSTREAM', `inventory at ${target.host}:${target.port}: no connection within ${timeoutMs} ms`));
    }, timeoutMs);
    timer.unref();
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(new TracemeshError('TM_ERR_UPSTREAM', `inventory at ${target.host}:${target.port}: ${errorMessage(err)}`, { cause: err }));
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
  });
}

/** Sends one line and resolves with the first line that comes back; the socket is closed either way. */
function exchangeLine(socket: Socket, line: string, timeoutMs: number, where: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const splitter = new LineSplitter(MAX_LINE_BYTES);
    let settled = false;
    const finish = (answer: string | undefined, failure: string | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (answer !== undefined) resolve(answer);
      else reject(new TracemeshError('TM_ERR_UPSTREAM', `inventory at ${where}: ${failure ?? 'no answer'}`));
    };
    const timer = setTimeout(() => finish(undefined, `no answer within ${timeoutMs} ms`), timeoutMs);
    timer.unref();
    socket.on('data', (chunk: Buffer) => {
      const lines = splitter.push(chunk);
      if (lines === undefined) finish(undefined, `answer longer than ${MAX_LINE_BYTES} bytes`);
      else if (lines.length > 0) finish(lines[0], undefined);
    });
    socket.on('error', (err) => finish(undefined, errorMessage(err)));
    socket.on('close', () => finish(undefined, 'connection closed before an answer'));
    socket.write(line);
  });
}

export class InventoryClient {
  private readonly options: InventoryClientOptions;
  private readonly tracer: Tracer;
  private readonly where: string;

  constructor(options: InventoryClientOptions, tracer: Tracer) {
    this.options = options;
    this.tracer = tracer;
    this.where = `${options.target.host}:${options.target.port}`;
  }

  /** Units of `productId` in stock; TM_ERR_UPSTREAM naming the address and what went wrong. */
  async stock(productId: string): Promise<number> {
    const { target } = this.options;
    const span = this.tracer.startSpan('STOCK', {
      kind: SpanKind.CLIENT,
      attributes: {
        'network.transport': 'tcp',
        'server.address': target.host,
        'server.port': target.port,
        [ATTR_PRODUCT_ID]: productId,
      },
    });
    const spanContext = trace.setSpan(context.active(), span);
    const carrier: TraceCarrier = {};
    propagation.inject(spanContext, carrier);
    try {
      const units = await context.with(spanContext, () => this.query(productId, carrier.traceparent));
      span.setAttribute(ATTR_STOCK_UNITS, units);
      return units;
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(err) });
      throw err;
    } finally {
      span.end();
    }
  }

  private async query(productId: string, traceparent: string | undefined): Promise<number> {
    const { target, proxy, timeoutMs } = this.options;
    const socket =
      proxy === undefined
        ? await connectDirect(target, timeoutMs)
        : await connectViaProxy(proxy, target.host, target.port, { timeoutMs });
    const answer = await exchangeLine(socket, formatStockRequest(productId, traceparent), timeoutMs, this.where);
    return parseStockAnswer(answer, productId);
  }
}
