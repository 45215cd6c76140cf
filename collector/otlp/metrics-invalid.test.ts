import { describe, it, expect } from 'vitest';
import { isTracemeshError } from '../../src/lib/errors.js';
import { decodeMetricsJson } from './metrics-json.js';
import { decodeMetricsProto } from './metrics-proto.js';
import { ProtoWriter, WIRE_FIXED64, WIRE_LEN, WIRE_VARINT } from './wire.js';

const M0 = 'resource_metrics[0].scope_metrics[0].metrics[0]';

/** One resource, one scope, one metric named `m` whose data member `dataField` holds the given points. */
function request(dataField: number, points: Array<(w: ProtoWriter) => void>, extraMetric?: (w: ProtoWriter) => void): Uint8Array {
  const w = new ProtoWriter();
  w.fork().fork().fork();
  w.tag(1, WIRE_LEN).string('m');
  w.fork();
  for (const p of points) {
    w.fork();
    p(w);
    w.join(1);
  }
  w.join(dataField);
  extraMetric?.(w);
  w.join(2).join(2).join(1);
  return w.finish();
}

const GAUGE = 5;
const HISTOGRAM = 9;

function gaugePoint(value: number, time = 10n): (w: ProtoWriter) => void {
  return (w) => {
    w.tag(3, WIRE_FIXED64).fixed64(time);
    w.tag(4, WIRE_FIXED64).double(value);
  };
}

function thrown(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (isTracemeshError(err, 'TM_ERR_OTLP_MALFORMED')) return err.message;
    throw err;
  }
  throw new Error('nothing thrown');
}

describe('metrics data point errors reject only that point', () => {
  it('3 good points and 2 bad ones give 3 items and 2 rejected', () => {
    const result = decodeMetricsProto(
      request(GAUGE, [
        gaugePoint(1),
        gaugePoint(2, 0n), // time 0
        gaugePoint(3),
        (w) => w.tag(3, WIRE_FIXED64).fixed64(5n), // no value
        gaugePoint(5),
      ]),
    );
    expect(result.items.map((p) => (p.kind === 'gauge' ? p.value : NaN))).toEqual([1, 3, 5]);
    expect(result.rejected).toBe(2);
    expect(result.errors).toEqual([
      `${M0}.gauge.data_points[1].time_unix_nano: is 0 (required)`,
      `${M0}.gauge.data_points[3].value: neither as_double nor as_int is set`,
    ]);
  });

  it('names wrong wire types, bad exemplar ids and inconsistent buckets', () => {
    const result = decodeMetricsProto(
      request(HISTOGRAM, [
        (w) => {
          w.tag(3, WIRE_FIXED64).fixed64(1n);
          w.tag(4, WIRE_VARINT).varint(3); // count is fixed64
        },
        (w) => {
          w.tag(3, WIRE_FIXED64).fixed64(1n);
          w.fork().tag(3, WIRE_FIXED64).double(1).tag(4, WIRE_LEN).bytes(new Uint8Array(3)).join(8);
        },
        (w) => {
          w.tag(3, WIRE_FIXED64).fixed64(1n);
          w.fork().fixed64(1n).fixed64(2n).join(6); // 2 counts
          w.fork().double(1).double(2).join(7); // 2 bounds
        },
        (w) => {
          w.tag(3, WIRE_FIXED64).fixed64(1n);
          w.tag(7, WIRE_LEN).bytes(new Uint8Array(12)); // packed doubles, 12 bytes
        },
      ]),
    );
    expect(result.items).toHaveLength(0);
    expect(result.rejected).toBe(4);
    expect(result.errors[0]).toMatch(/histogram\.data_points\[0\]\.count: wire type 0 \(varint\), expected 1 \(fixed64\), at byte \d+$/);
    expect(result.errors[1]).toBe(`${M0}.histogram.data_points[1].exemplars[0].span_id: expected 8 bytes, got 3`);
    expect(result.errors[2]).toBe(
      `${M0}.histogram.data_points[2].bucket_counts: 2 bucket counts for 2 explicit bounds (expected 3, or none of either)`,
    );
    expect(result.errors[3]).toMatch(/histogram\.data_points\[3\]\.explicit_bounds: packed field 7 at byte \d+ is 12 bytes long, not a multiple of 8$/);
  });

  it('a metric with two data members, a truncated request and a point overrunning its Gauge reject the request', () => {
    expect(thrown(() => decodeMetricsProto(request(GAUGE, [gaugePoint(1)], (w) => w.fork().join(7))))).toBe(
      `${M0}.sum: has both gauge and sum; the data is a oneof`,
    );
    const body = request(GAUGE, [gaugePoint(1)]);
    expect(thrown(() => decodeMetricsProto(body.subarray(0, body.length - 3)))).toMatch(
      /^resource_metrics\[0\]: length-delimited field 1 at byte 0 runs past the end/,
    );
    const w = new ProtoWriter();
    w.fork().fork().fork().fork();
    w.tag(1, WIRE_LEN).varint(100).raw([1, 2]);
    w.join(GAUGE).join(2).join(2).join(1);
    expect(thrown(() => decodeMetricsProto(w.finish()))).toMatch(
      new RegExp(`^${M0.replace(/[[\].]/g, '\\$&')}\\.gauge\\.data_points\\[0\\]: length-delimited field 1 at byte \\d+ runs past the end \\(needs 100 bytes, 2 left\\)$`),
    );
  });

  it('OTLP/JSON: wrong types reject the point with its path; shape errors above it throw', () => {
    const body = JSON.stringify({
      resourceMetrics: [
        {
          scopeMetrics: [
            {
              metrics: [
                {
                  name: 'm',
                  histogram: {
                    dataPoints: [
                      { timeUnixNano: '1', count: '2', bucketCounts: ['1', '1'], explicitBounds: [5] },
                      { timeUnixNano: '1', count: 'two' },
                      { timeUnixNano: '1', bucketCounts: [1, -1], explicitBounds: [5] },
                      { timeUnixNano: '1', exemplars: [{ asDouble: 1, traceId: 'xyz' }] },
                      { timeUnixNano: '1', min: 'low' },
                    ],
                  },
                },
              ],
            },
          ],
        },
      ],
    });
    const result = decodeMetricsJson(body);
    expect(result.items).toHaveLength(1);
    expect(result.items[0]).toMatchObject({ kind: 'histogram', count: 2n, bucketCounts: [1n, 1n], explicitBounds: [5] });
    expect(result.errors).toEqual([
      `${M0}.histogram.data_points[1].count: expected an unsigned 64-bit integer, got "two"`,
      `${M0}.histogram.data_points[2].bucket_counts[1]: -1 is out of range for an unsigned 64-bit integer`,
      `${M0}.histogram.data_points[3].exemplars[0].trace_id: expected 32 hex digits (16 bytes), got 3 characters`,
      `${M0}.histogram.data_points[4].min: expected a number, got "low"`,
    ]);
    expect(thrown(() => decodeMetricsJson('{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"gauge":{},"sum":{}}]}]}]}'))).toBe(
      `${M0}: has both gauge and sum; the data is a oneof`,
    );
    expect(thrown(() => decodeMetricsJson('{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"gauge":{"dataPoints":7}}]}]}]}'))).toBe(
      `${M0}.gauge.data_points: expected an array, got number`,
    );
    expect(thrown(() => decodeMetricsJson('{"resourceMetrics":'))).toMatch(/^invalid JSON: /);
  });
});
