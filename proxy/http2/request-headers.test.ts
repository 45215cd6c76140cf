import type { IncomingHttpHeaders } from 'node:http2';
import { describe, expect, it } from 'vitest';
import { SOURCE_NAMESPACE_HEADER, SOURCE_SERVICE_HEADER, SOURCE_VERSION_HEADER } from '../telemetry/attributes.js';
import { parseAuthority, peerOf, relayedHeaders, requestIdOf, traceContextOf, upstreamRequestHeaders, type UpstreamRequestFacts } from './request-headers.js';

const FACTS: UpstreamRequestFacts = {
  traceId: '0af7651916cd43dd8448eb211c80319c',
  spanId: 'b7ad6b7169203331',
  sampled: true,
  requestId: 'req-1',
  clientAddress: '10.0.0.7',
};
const SELF = { service: 'productpage', namespace: 'default', version: 'v1' };

function request(extra: IncomingHttpHeaders): IncomingHttpHeaders {
  return { ':method': 'POST', ':path': '/demo.Echo/Unary', ':scheme': 'http', ':authority': 'echo:50051', 'content-type': 'application/grpc', ...extra };
}

describe('upstream request headers', () => {
  it('keeps pseudo-headers and end-to-end fields, drops HTTP/2 connection-specific ones', () => {
    const out = upstreamRequestHeaders(
      request({ 'x-custom': 'a', cookie: 'k=v', connection: 'close', 'keep-alive': '5', 'proxy-connection': 'x', 'transfer-encoding': 'chunked', upgrade: 'h2c' }),
      FACTS,
      { rewriteTraceContext: true, self: undefined },
    );
    expect(out).toMatchObject({ ':method': 'POST', ':path': '/demo.Echo/Unary', ':authority': 'echo:50051', 'x-custom': 'a', cookie: 'k=v' });
    for (const name of ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']) expect(out[name]).toBeUndefined();
  });

  it('keeps te only as "trailers"', () => {
    expect(upstreamRequestHeaders(request({ te: 'trailers' }), FACTS, { rewriteTraceContext: true, self: undefined })['te']).toBe('trailers');
    expect(upstreamRequestHeaders(request({ te: 'gzip' }), FACTS, { rewriteTraceContext: true, self: undefined })['te']).toBeUndefined();
  });

  it('carries this proxy’s span in traceparent and keeps tracestate', () => {
    const out = upstreamRequestHeaders(
      request({ traceparent: '00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01', tracestate: 'congo=t61rcWkgMzE' }),
      FACTS,
      { rewriteTraceContext: true, self: undefined },
    );
    expect(out['traceparent']).toBe('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
    expect(out['tracestate']).toBe('congo=t61rcWkgMzE');
    expect(out['b3']).toBeUndefined();
  });

  it('rewrites any B3 fields as one b3 field with the new span id', () => {
    const out = upstreamRequestHeaders(
      request({ 'x-b3-traceid': '0af7651916cd43dd8448eb211c80319c', 'x-b3-spanid': '00f067aa0ba902b7', 'x-b3-sampled': '1', 'x-b3-parentspanid': '1111111111111111' }),
      { ...FACTS, sampled: false },
      { rewriteTraceContext: true, self: undefined },
    );
    expect(out['b3']).toBe('0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0');
    expect(out['traceparent']).toBe('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00');
    for (const name of ['x-b3-traceid', 'x-b3-spanid', 'x-b3-sampled', 'x-b3-parentspanid']) expect(out[name]).toBeUndefined();
  });

  it('passes trace fields untouched when tracing is off', () => {
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01';
    const out = upstreamRequestHeaders(request({ traceparent, 'x-b3-traceid': 'abc' }), FACTS, { rewriteTraceContext: false, self: undefined });
    expect(out['traceparent']).toBe(traceparent);
    expect(out['x-b3-traceid']).toBe('abc');
    expect(out['b3']).toBeUndefined();
  });

  it('appends the caller to x-forwarded-for and sets the request id', () => {
    const first = upstreamRequestHeaders(request({}), FACTS, { rewriteTraceContext: true, self: undefined });
    expect(first['x-forwarded-for']).toBe('10.0.0.7');
    expect(first['x-forwarded-proto']).toBe('http');
    expect(first['x-request-id']).toBe('req-1');
    const chained = upstreamRequestHeaders(request({ 'x-forwarded-for': '1.2.3.4', 'x-forwarded-proto': 'https' }), FACTS, { rewriteTraceContext: true, self: undefined });
    expect(chained['x-forwarded-for']).toBe('1.2.3.4, 10.0.0.7');
    expect(chained['x-forwarded-proto']).toBe('http');
  });

  it('outbound: replaces any peer metadata with this workload’s; inbound: strips it', () => {
    const spoofed = request({ [SOURCE_SERVICE_HEADER]: 'evil', [SOURCE_NAMESPACE_HEADER]: 'x', [SOURCE_VERSION_HEADER]: 'v9' });
    const outbound = upstreamRequestHeaders(spoofed, FACTS, { rewriteTraceContext: true, self: SELF });
    expect(outbound[SOURCE_SERVICE_HEADER]).toBe('productpage');
    expect(outbound[SOURCE_NAMESPACE_HEADER]).toBe('default');
    expect(outbound[SOURCE_VERSION_HEADER]).toBe('v1');
    const inbound = upstreamRequestHeaders(spoofed, FACTS, { rewriteTraceContext: true, self: undefined });
    for (const name of [SOURCE_SERVICE_HEADER, SOURCE_NAMESPACE_HEADER, SOURCE_VERSION_HEADER]) expect(inbound[name]).toBeUndefined();
    expect(peerOf(spoofed)).toEqual({ service: 'evil', namespace: 'x', version: 'v9' });
    expect(peerOf(request({}))).toEqual({ service: '', namespace: '', version: '' });
  });

  it('keeps a request id or makes one', () => {
    expect(requestIdOf(request({ 'x-request-id': 'abc' }))).toBe('abc');
    expect(requestIdOf(request({}))).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('reads the incoming trace context from traceparent, then B3', () => {
    expect(traceContextOf(request({}))).toBeUndefined();
    expect(traceContextOf(request({ traceparent: '00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01' }))?.spanId).toBe('00f067aa0ba902b7');
    expect(traceContextOf(request({ b3: '0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-1' }))?.traceId).toBe('0af7651916cd43dd8448eb211c80319c');
    expect(traceContextOf(request({ traceparent: 'garbage' }))).toBeUndefined();
  });

  it('relays response fields except connection-specific ones', () => {
    expect(relayedHeaders({ ':status': '200', 'content-type': 'text/plain', connection: 'close', 'grpc-status': '0' })).toEqual({
      ':status': '200',
      'content-type': 'text/plain',
      'grpc-status': '0',
    });
  });
});

describe('parseAuthority', () => {
  it('reads host and port, port 80 by default', () => {
    expect(parseAuthority('ratings:50051')).toEqual({ host: 'ratings', port: 50051 });
    expect(parseAuthority('reviews.default.svc')).toEqual({ host: 'reviews.default.svc', port: 80 });
    expect(parseAuthority('[::1]:8080')).toEqual({ host: '::1', port: 8080 });
    expect(parseAuthority('[fd00::5]')).toEqual({ host: 'fd00::5', port: 80 });
    // RFC 3986 §3.2.3: an empty port means the default.
    expect(parseAuthority('host:')).toEqual({ host: 'host', port: 80 });
  });

  it('refuses malformed authorities', () => {
    for (const bad of ['', ':80', 'host:0', 'host:65536', 'host:8o', 'host:123456', '[::1', '[::1]x', 'user@host:80']) {
      expect(parseAuthority(bad), bad).toBeUndefined();
    }
  });
});
