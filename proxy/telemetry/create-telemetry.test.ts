import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isTracemeshError } from '../../src/lib/errors.js';
import { createTelemetry } from './create-telemetry.js';
import { HttpObservation, finishHttpObservation } from './http-observation.js';
import { NoExportSpanSink } from './span-sink-none.js';

const identity = { service: 'reviews', namespace: 'bookinfo', version: 'v2' };
let dir: string;

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'tracemesh-telemetry-'));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('createTelemetry', () => {
  it('without a collector: no span is built, metrics and the access log still work', async () => {
    const file = path.join(dir, 'access.log');
    const created = createTelemetry({ identity, collectorUrl: undefined, accessLog: file, defaultMetrics: false, log: () => {} });
    expect(created.spans).toBeInstanceOf(NoExportSpanSink);
    expect(created.metricsBridge).toBeUndefined();
    const obs = new HttpObservation('inbound', 'server', 'http1', undefined);
    obs.method = 'GET';
    obs.path = '/reviews/1';
    obs.statusCode = 200;
    obs.sourceService = 'productpage';
    obs.destinationService = 'reviews';
    finishHttpObservation(created.telemetry, obs);
    expect(created.telemetry.tracing).toBe(false);
    expect(created.telemetry.spans.droppedSpans).toBe(0);
    const text = await created.registry.metrics();
    expect(text).toContain('tracemesh_spans_dropped_total 0');
    expect(text).toMatch(/tracemesh_requests_total\{direction="inbound",protocol="http1",source_service="productpage"[^}]*\} 1/);
    await Promise.all([created.shutdown(), created.shutdown()]);
    const line = JSON.parse(readFileSync(file, 'utf8').trim()) as Record<string, unknown>;
    expect(line).toMatchObject({ method: 'GET', path: '/reviews/1', response_code: 200, trace_id: obs.traceId });
  });

  it('access log off: telemetry.accessLog is undefined', async () => {
    const created = createTelemetry({ identity, collectorUrl: undefined, accessLog: undefined, defaultMetrics: false });
    expect(created.telemetry.accessLog).toBeUndefined();
    await created.shutdown();
  });

  it('with a collector: a span sink of the chosen kind and a metrics bridge; shutdown is safe twice', async () => {
    const created = createTelemetry({
      identity,
      collectorUrl: 'http://127.0.0.1:1',
      accessLog: undefined,
      spanSink: 'lean',
      metricsIntervalMs: 600_000,
      defaultMetrics: false,
      log: () => {},
    });
    expect(created.metricsBridge).toBeDefined();
    expect('stats' in created.spans).toBe(true);
    await created.shutdown();
    await created.shutdown();
  });

  it('a bad collector address or access-log path fails with an error naming it', () => {
    const cases: Array<[string | undefined, string | undefined, string]> = [
      ['not a url at all://', undefined, 'not a url at all://'],
      [undefined, path.join(dir, 'no-such-dir', 'a.log'), path.join(dir, 'no-such-dir', 'a.log')],
    ];
    for (const [collectorUrl, accessLog, named] of cases) {
      let caught: unknown;
      try {
        createTelemetry({ identity, collectorUrl, accessLog, defaultMetrics: false });
      } catch (err) {
        caught = err;
      }
      expect(isTracemeshError(caught, 'TM_ERR_CONFIG_INVALID')).toBe(true);
      expect((caught as Error).message).toContain(named);
    }
  });
});
