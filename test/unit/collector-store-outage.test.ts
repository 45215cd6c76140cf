import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_INGEST_OPTIONS } from '../../collector/pipeline/ingest.js';
import { startCollector } from '../support/collector-harness.js';
import type { RunningCollector } from '../support/collector-harness.js';
import { craftRequest } from '../support/otlp-craft.js';
import { runStoreOutage } from '../support/outage-scenario.js';

let running: RunningCollector;

beforeAll(async () => {
  // A small spool, so an outage of a few seconds fills it and the collector must push back.
  running = await startCollector({ ingest: { ...DEFAULT_INGEST_OPTIONS, flushIntervalMs: 50, spoolLimitBytes: 256 * 1024 } });
});

afterAll(async () => {
  await running?.stop();
});

/** One valid span over gRPC, to see how the receiver answers while the spool is full. */
function grpcExport(): Promise<grpc.ServiceError | null> {
  const client = new grpc.Client(`127.0.0.1:${running.collector.grpc.port}`, grpc.credentials.createInsecure());
  const identity = (b: Buffer): Buffer => b;
  const request = Buffer.from(
    craftRequest('outage-grpc', [{ traceId: randomBytes(16), spanId: randomBytes(8), name: 'during-outage' }]),
  );
  return new Promise((resolve) => {
    client.makeUnaryRequest('/opentelemetry.proto.collector.trace.v1.TraceService/Export', identity, identity, request, (err) => {
      client.close();
      resolve(err);
    });
  });
}

describe('the store unavailable for a while under steady sending', () => {
  it('answers retryable errors once the spool is full, then stores every acknowledged span exactly once', async () => {
    let grpcAnswer: grpc.ServiceError | null = null;
    const report = await runStoreOutage(running, {
      service: 'outage-svc',
      outageMs: 2_500,
      intervalMs: 20,
      whileRefusing: async () => {
        grpcAnswer = await grpcExport();
      },
    });
    expect(report.acceptedDuringOutage).toBeGreaterThan(0);
    expect(report.refusedDuringOutage).toBeGreaterThan(0);
    expect(grpcAnswer).not.toBeNull();
    expect(grpcAnswer!.code).toBe(grpc.status.UNAVAILABLE);
    expect(grpcAnswer!.details).toContain('spool is full');
    expect(grpcAnswer!.metadata.get('grpc-status-details-bin')).toHaveLength(1);
  });
});
