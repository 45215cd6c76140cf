import { describe, expect, it } from 'vitest';
import { decodeTracesProto } from '../../collector/otlp/traces-proto.js';
import { HttpObservation, setPeers } from './http-observation.js';
import { HttpSpanRecord } from './http-span.js';
import type { AttributeValue, SpanAttributeWriter } from './span-record.js';
import { encodeResource, encodeScope, exportRequestHead } from './span-sink-lean-encoder.js';
import { EncodedSpanQueue } from './span-store-encoded.js';

const self = { service: 'reviews', namespace: 'bookinfo', version: 'v2' };
const peer = { service: 'productpage', namespace: 'bookinfo', version: 'v1' };

function inboundServer(): HttpObservation {
  const obs = new HttpObservation('inbound', 'server', 'http1', { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', sampled: true, traceState: 'k=v' });
  obs.method = 'GET';
  obs.host = 'reviews';
  obs.port = 9080;
  obs.path = '/reviews/7';
  obs.query = 'x=1';
  obs.userAgent = 'curl/8';
  obs.requestId = 'rid-1';
  obs.clientAddress = '10.0.0.7';
  obs.clientPort = 51000;
  obs.requestBytes = 0;
  obs.responseBytes = 1024;
  obs.statusCode = 200;
  obs.upstreamAddress = '127.0.0.1';
  obs.upstreamPort = 9081;
  setPeers(obs, self, peer);
  obs.endTimeMs = obs.startTimeMs + 2;
  return obs;
}

function outboundGrpcClient(): HttpObservation {
  const obs = new HttpObservation('outbound', 'client', 'grpc', undefined);
  obs.method = 'POST';
  obs.host = 'ratings';
  obs.port = 9090;
  obs.path = '/ratings.Ratings/Get';
  obs.rpcService = 'ratings.Ratings';
  obs.rpcMethod = 'Get';
  obs.statusCode = 200;
  obs.grpcStatus = 14;
  obs.upstreamAddress = '10.0.0.9';
  obs.upstreamPort = 15006;
  obs.routeName = 'ratings-route';
  obs.attempt = 2;
  setPeers(obs, self, { service: 'ratings', namespace: 'bookinfo', version: 'v1' });
  obs.addFlag('UC', 'upstream reset');
  obs.endTimeMs = obs.startTimeMs + 5;
  return obs;
}

class Collect implements SpanAttributeWriter {
  readonly entries: Array<[string, AttributeValue]> = [];
  string(key: string, value: string): void {
    this.entries.push([key, value]);
  }
  int(key: string, value: number): void {
    this.entries.push([key, value]);
  }
  bool(key: string, value: boolean): void {
    this.entries.push([key, value]);
  }
}

describe('HttpSpanRecord', () => {
  it('carries the semantic-convention and mesh attributes of an inbound server span', () => {
    const obs = inboundServer();
    const span = new HttpSpanRecord(obs, '-', false);
    expect(span).toMatchObject({ traceId: obs.traceId, spanId: obs.spanId, parentSpanId: 'b7ad6b7169203331', traceState: 'k=v', name: 'GET', kind: 'server', status: 'unset', statusMessage: '' });
    expect(span.attributes).toEqual({
      'http.request.method': 'GET',
      'url.path': '/reviews/7',
      'url.scheme': 'http',
      'server.address': 'reviews',
      'server.port': 9080,
      'client.address': '10.0.0.7',
      'client.port': 51000,
      'network.protocol.name': 'http',
      'network.protocol.version': '1.1',
      'http.request.body.size': 0,
      'http.response.body.size': 1024,
      'tracemesh.direction': 'inbound',
      'tracemesh.protocol': 'http1',
      'tracemesh.source.service': 'productpage',
      'tracemesh.source.namespace': 'bookinfo',
      'tracemesh.source.version': 'v1',
      'tracemesh.destination.service': 'reviews',
      'tracemesh.destination.namespace': 'bookinfo',
      'tracemesh.destination.version': 'v2',
      'tracemesh.response_flags': '-',
      'tracemesh.attempt': 1,
      'http.response.status_code': 200,
      'url.query': 'x=1',
      'user_agent.original': 'curl/8',
      'tracemesh.request_id': 'rid-1',
      'tracemesh.upstream.address': '127.0.0.1:9081',
    });
    // Built once, on first read.
    expect(span.attributes).toBe(span.attributes);
  });

  it('names gRPC client spans by method and marks them as errors with rpc attributes and the peer', () => {
    const span = new HttpSpanRecord(outboundGrpcClient(), 'UC', true);
    expect(span).toMatchObject({ name: 'ratings.Ratings/Get', kind: 'client', status: 'error', statusMessage: 'upstream reset' });
    expect(span.attributes).toMatchObject({
      'network.protocol.version': '2',
      'tracemesh.route': 'ratings-route',
      'tracemesh.attempt': 2,
      'network.peer.address': '10.0.0.9',
      'network.peer.port': 15006,
      'peer.service': 'ratings',
      'rpc.system': 'grpc',
      'rpc.service': 'ratings.Ratings',
      'rpc.method': 'Get',
      'rpc.grpc.status_code': 14,
      'error.type': 'UC',
      'tracemesh.response_flags': 'UC',
    });
  });

  it('hands the same attributes, in the same order, to a writer as the map holds, and encodes them so', () => {
    const records = [new HttpSpanRecord(inboundServer(), '-', false), new HttpSpanRecord(outboundGrpcClient(), 'UC', true), new HttpSpanRecord(inboundServer(), '-', false)];
    const queue = new EncodedSpanQueue(10, 10);
    for (const record of records) {
      const w = new Collect();
      record.writeAttributes(w);
      expect(w.entries).toEqual(Object.entries(record.attributes));
      queue.add(record);
    }
    const batch = queue.take();
    const decoded = decodeTracesProto(Buffer.concat([exportRequestHead(encodeResource({ 'service.name': 'reviews' }), encodeScope('s'), batch.length), batch.bytes]));
    expect(decoded.errors).toEqual([]);
    decoded.items.forEach((span, i) => {
      const want = Object.entries(records[i]!.attributes).map(([k, v]) => [k, String(v)]);
      expect(span.attributes.map((a) => [a.key, a.value])).toEqual(want);
      expect(span.name).toBe(records[i]!.name);
    });
  });
});
