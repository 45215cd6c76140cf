import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { gzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProtoWriter, WIRE_VARINT } from '../../collector/otlp/wire.js';
import { eventually, startCollector } from '../support/collector-harness.js';
import type { RunningCollector } from '../support/collector-harness.js';
import { craftRequest } from '../support/otlp-craft.js';

let running: RunningCollector;
let grpcClient: grpc.Client;

beforeAll(async () => {
  // Seven uploads are held open on purpose; on a loaded machine that can outlast the default 30 s
  // request timeout, which would answer 408 and release the bytes the test is counting.
  running = await startCollector({ httpRequestTimeoutMs: 300_000 });
  grpcClient = new grpc.Client(`127.0.0.1:${running.collector.grpc.port}`, grpc.credentials.createInsecure(), {
    'grpc.max_send_message_length': 64 * 1024 * 1024,
  });
});

afterAll(async () => {
  grpcClient?.close();
  await running?.stop();
});

const TRACE_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
const identity = (b: Buffer): Buffer => b;
const START = BigInt(Date.now() - 60_000) * 1_000_000n;

function grpcExport(body: Uint8Array): Promise<{ code: number; details: string; response?: Buffer }> {
  return new Promise((resolve) => {
    grpcClient.makeUnaryRequest(TRACE_PATH, identity, identity, Buffer.from(body), (err, response) => {
      if (err !== null) resolve({ code: err.code, details: err.details });
      else resolve({ code: 0, details: '', response });
    });
  });
}

async function httpExport(body: Uint8Array | string, headers: Record<string, string>): Promise<{ status: number; type: string | null; body: Buffer }> {
  const res = await fetch(`${running.httpUrl}/v1/traces`, { method: 'POST', headers, body });
  return { status: res.status, type: res.headers.get('content-type'), body: Buffer.from(await res.arrayBuffer()) };
}

const PROTOBUF = { 'content-type': 'application/x-protobuf' };
const JSON_TYPE = { 'content-type': 'application/json' };

const goodTrace = Buffer.from('4bf92f3577b34da6a3ce929d0e0e4736', 'hex');
function spanId(n: number): Buffer {
  return Buffer.from(n.toString(16).padStart(16, '0'), 'hex');
}

function validRequest(service: string): Uint8Array {
  return craftRequest(service, [{ traceId: goodTrace, spanId: spanId(1), name: 'ok' }]);
}

async function storedSpanNames(service: string): Promise<string[]> {
  const rows = await running.collector.store.query<{ SpanName: string }>(
    'SELECT SpanName FROM otel_traces WHERE ServiceName = {s:String} ORDER BY SpanName',
    { s: service },
  );
  return rows.map((r) => r.SpanName);
}

describe('bad input gets the right status and message, and the collector keeps serving', () => {
  it('truncated protobuf: HTTP 400 and gRPC INVALID_ARGUMENT naming where', async () => {
    const whole = validRequest('truncated');
    const cut = whole.subarray(0, whole.length - 9);
    const http = await httpExport(cut, PROTOBUF);
    expect(http.status).toBe(400);
    expect(http.type).toBe('application/x-protobuf');
    expect(http.body.toString('latin1')).toMatch(/invalid traces export request: .*resource_spans\[0\]/);
    const rpc = await grpcExport(cut);
    expect(rpc.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(rpc.details).toMatch(/runs past the end|truncated/);
  });

  it('a wrong wire type at the request level is refused; inside a span it rejects only that span', async () => {
    const requestLevel = new ProtoWriter().tag(1, WIRE_VARINT).varint(5).finish();
    const refused = await httpExport(requestLevel, PROTOBUF);
    expect(refused.status).toBe(400);
    expect(refused.body.toString('latin1')).toMatch(/resource_spans.*wire type 0/);

    const body = craftRequest('wire-types', [
      { traceId: goodTrace, spanId: spanId(1), name: 'kept' },
      { traceId: goodTrace, spanId: spanId(2), name: 'bad', wrongWireType: true },
    ]);
    const rpc = await grpcExport(body);
    expect(rpc.code).toBe(0);
    const response = ProtobufTraceSerializer.deserializeResponse(rpc.response!);
    expect(Number(response.partialSuccess?.rejectedSpans)).toBe(1);
    expect(response.partialSuccess?.errorMessage).toMatch(/spans\[1\]\.trace_id: wire type 0 \(varint\), expected 2/);
    expect(await eventually(async () => ((await storedSpanNames('wire-types')).length === 1 ? storedSpanNames('wire-types') : undefined), 'the kept span')).toEqual(['kept']);
  });

  it('ids of the wrong length: partial success with the rejected count, valid spans kept', async () => {
    const body = craftRequest('bad-ids', [
      { traceId: goodTrace, spanId: spanId(1), name: 'good-1' },
      { traceId: goodTrace.subarray(0, 15), spanId: spanId(2), name: 'short-trace-id' },
      { traceId: goodTrace, spanId: spanId(3), name: 'good-2' },
      { traceId: goodTrace, spanId: Buffer.alloc(7, 1), name: 'short-span-id' },
      { traceId: goodTrace, spanId: spanId(5), name: 'good-3' },
    ]);
    const http = await httpExport(body, PROTOBUF);
    expect(http.status).toBe(200);
    const response = ProtobufTraceSerializer.deserializeResponse(http.body);
    expect(Number(response.partialSuccess?.rejectedSpans)).toBe(2);
    expect(response.partialSuccess?.errorMessage).toContain('spans[1].trace_id: expected 16 bytes, got 15');
    expect(response.partialSuccess?.errorMessage).toContain('spans[3].span_id: expected 8 bytes, got 7');
    const names = await eventually(async () => {
      const got = await storedSpanNames('bad-ids');
      return got.length === 3 ? got : undefined;
    }, 'three good spans');
    expect(names).toEqual(['good-1', 'good-2', 'good-3']);
  });

  it('a 30 MiB body: HTTP 413 and gRPC RESOURCE_EXHAUSTED', async () => {
    const huge = Buffer.alloc(30 * 1024 * 1024, 0x0a);
    const http = await httpExport(huge, PROTOBUF);
    expect(http.status).toBe(413);
    expect(http.body.toString('latin1')).toContain('exceeds 20 MiB');
    const rpc = await grpcExport(huge);
    expect(rpc.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  });

  it('too many bytes of bodies in flight at once: later ones get 503 with Retry-After, and the bytes are released', async () => {
    const part = Buffer.alloc(17 * 1024 * 1024, 0x0a);
    const sockets: Socket[] = [];
    const receiver = running.collector.http;
    const refusal = new Promise<string>((resolve) => {
      // Seven slow uploads hold 119 MiB; the eighth crosses the 128 MiB bound.
      for (let i = 0; i < 8; i++) {
        const socket = connect(running.collector.http.port, '127.0.0.1');
        sockets.push(socket);
        let answer = '';
        socket.on('data', (d: Buffer) => {
          answer += d.toString('latin1');
          if (answer.includes('\r\n\r\n')) resolve(answer);
        });
        socket.on('error', () => {});
      }
    });
    for (const [i, socket] of sockets.entries()) {
      socket.write(`POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\ncontent-length: ${19 * 1024 * 1024}\r\n\r\n`);
      socket.write(part);
      if (i < 7) await eventually(async () => (receiver.inflightBodyBytes >= (i + 1) * part.length ? true : undefined), `upload ${i + 1} to be held`);
    }
    const answer = await refusal;
    expect(answer).toMatch(/^HTTP\/1.1 503/);
    expect(answer.toLowerCase()).toContain('retry-after: 1');
    for (const socket of sockets) socket.destroy();
    await eventually(async () => (receiver.inflightBodyBytes === 0 ? true : undefined), 'held bytes to be released');
  });

  it('a gzip body that inflates past 20 MiB: 413', async () => {
    const bomb = gzipSync(Buffer.alloc(25 * 1024 * 1024, 0));
    expect(bomb.length).toBeLessThan(1024 * 1024);
    const http = await httpExport(bomb, { ...PROTOBUF, 'content-encoding': 'gzip' });
    expect(http.status).toBe(413);
    expect(http.body.toString('latin1')).toContain('decompressed request body exceeds 20 MiB');
  });

  it('a wrong content type: 415 naming it', async () => {
    const http = await httpExport('hello', { 'content-type': 'text/plain' });
    expect(http.status).toBe(415);
    expect(JSON.parse(http.body.toString())).toEqual({ code: 3, message: expect.stringContaining("unsupported content type 'text/plain'") });
  });

  it('invalid JSON: 400 with the parser position', async () => {
    const http = await httpExport('{"resourceSpans": [', JSON_TYPE);
    expect(http.status).toBe(400);
    expect(http.type).toBe('application/json');
    expect(JSON.parse(http.body.toString()).message).toMatch(/invalid traces export request: .*JSON/i);
  });

  it('invalid gzip: 400', async () => {
    const http = await httpExport(Buffer.from('definitely not gzip'), { ...PROTOBUF, 'content-encoding': 'gzip' });
    expect(http.status).toBe(400);
    expect(http.body.toString('latin1')).toContain('invalid gzip body');
  });

  it('gzip-compressed valid protobuf and JSON are accepted', async () => {
    const http = await httpExport(gzipSync(validRequest('gzipped')), { ...PROTOBUF, 'content-encoding': 'gzip' });
    expect(http.status).toBe(200);
    expect(ProtobufTraceSerializer.deserializeResponse(http.body).partialSuccess).toBeUndefined();
    const json = JSON.stringify({
      resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'gzipped-json' } }] }, scopeSpans: [{ spans: [{ traceId: goodTrace.toString('hex'), spanId: '00000000000000aa', name: 'j', kind: 1, startTimeUnixNano: String(START), endTimeUnixNano: String(START + 5n) }] }] }],
    });
    const jsonRes = await httpExport(gzipSync(json), { ...JSON_TYPE, 'content-encoding': 'gzip' });
    expect(jsonRes.status).toBe(200);
    expect(JSON.parse(jsonRes.body.toString())).toEqual({});
  });

  it('spans older than the retention: rejected by count with the reason, not stored to expire unseen', async () => {
    const old = BigInt(Date.now() - 8 * 86_400_000) * 1_000_000n;
    const span = (id: string, start: bigint) => ({ traceId: goodTrace.toString('hex'), spanId: id, name: id, kind: 2, startTimeUnixNano: String(start), endTimeUnixNano: String(start + 1000n) });
    const json = JSON.stringify({
      resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'retention' } }] }, scopeSpans: [{ spans: [span('00000000000000b1', START), span('00000000000000b2', old), span('00000000000000b3', old)] }] }],
    });
    const res = await httpExport(json, JSON_TYPE);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body.toString())).toEqual({ partialSuccess: { rejectedSpans: '2', errorMessage: '2 spans start older than the retention of 7d' } });
    expect(await eventually(async () => ((await storedSpanNames('retention')).length === 1 ? storedSpanNames('retention') : undefined), 'the recent span')).toEqual(['00000000000000b1']);
  });

  it('wrong method and unknown path', async () => {
    expect((await fetch(`${running.httpUrl}/v1/traces`)).status).toBe(405);
    expect((await fetch(`${running.httpUrl}/v2/nothing`, { method: 'POST', headers: PROTOBUF, body: 'x' })).status).toBe(404);
  });

  it('still serves after all of the above', async () => {
    const http = await httpExport(validRequest('after-bad-input'), PROTOBUF);
    expect(http.status).toBe(200);
    const rpc = await grpcExport(validRequest('after-bad-input-grpc'));
    expect(rpc.code).toBe(0);
    await eventually(async () => ((await storedSpanNames('after-bad-input-grpc')).length === 1 ? true : undefined), 'span after bad input');
  });

  it('counts what it refused and rejected in its own Prometheus metrics', async () => {
    const res = await fetch(`${running.apiUrl}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    const value = (line: string): number => Number(new RegExp(`^${line.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);
    expect(value('tracemesh_collector_requests_invalid_total{transport="http"}')).toBeGreaterThanOrEqual(3);
    expect(value('tracemesh_collector_requests_invalid_total{transport="grpc"}')).toBeGreaterThanOrEqual(1);
    expect(value('tracemesh_collector_items_rejected_total{transport="http"}')).toBeGreaterThanOrEqual(4);
    expect(value('tracemesh_collector_store_healthy')).toBe(1);
    expect(text).toContain('tracemesh_collector_process_cpu_seconds_total');
  });
});
