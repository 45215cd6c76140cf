import { describe, it, expect } from 'vitest';
import { TracemeshError } from '../../src/lib/errors.js';
import { decodeTracesJson } from './traces-json.js';
import { decodeTracesProto } from './traces-proto.js';
import { PARENT_ID, SPAN_ID, TRACE_ID, span, tracesRequest, writeStringKeyValue } from './craft.test-helper.js';
import { ProtoWriter, WIRE_FIXED64, WIRE_LEN, WIRE_VARINT } from './wire.js';

/** The TM_ERR_OTLP_MALFORMED message `fn` throws (fails the test on anything else). */
function malformed(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TracemeshError);
    expect((err as TracemeshError).code).toBe('TM_ERR_OTLP_MALFORMED');
    return (err as TracemeshError).message;
  }
  throw new Error('expected TM_ERR_OTLP_MALFORMED, nothing was thrown');
}

const SPAN0 = 'resource_spans[0].scope_spans[0].spans[0]';

describe('protobuf request framing errors reject the whole request', () => {
  const valid = tracesRequest([span(), span({ spanId: PARENT_ID })]);

  it('accepts the untouched request', () => {
    const result = decodeTracesProto(valid);
    expect(result.items).toHaveLength(2);
    expect(result.rejected).toBe(0);
  });

  it.each([1, 2, 3, 10, 40, Math.floor(valid.length / 2), valid.length - 1])(
    'truncated to %i bytes: names resource_spans[0] and the overrun',
    (cut) => {
      const message = malformed(() => decodeTracesProto(valid.subarray(0, cut)));
      expect(message).toMatch(/^resource_spans\[0\]: (varint at byte 1 runs past the end|length-delimited field 1 at byte 0 runs past the end \(needs \d+ bytes, \d+ left\))$/);
    },
  );

  it('names the scope_spans whose length runs past its ResourceSpans, with offset and sizes', () => {
    const w = new ProtoWriter();
    w.fork();
    w.fork().join(2); // scope_spans[0]: empty
    w.tag(2, WIRE_LEN).varint(300).raw([1, 2, 3]); // scope_spans[1]: claims 300 bytes, 3 left
    w.join(1);
    const body = w.finish();
    // [0a len] [12 00] [12 ac 02 01 02 03]: the second scope_spans tag is at byte 4.
    expect(malformed(() => decodeTracesProto(body))).toBe(
      'resource_spans[0].scope_spans[1]: length-delimited field 2 at byte 4 runs past the end (needs 300 bytes, 3 left)',
    );
  });

  it('names the span whose own length runs past its ScopeSpans', () => {
    const w = new ProtoWriter();
    w.fork().fork();
    w.tag(2, WIRE_LEN).varint(50).raw([0x0a, 0x00]);
    w.join(2).join(1);
    expect(malformed(() => decodeTracesProto(w.finish()))).toMatch(
      /^resource_spans\[0\]\.scope_spans\[0\]\.spans\[0\]: length-delimited field 2 at byte \d+ runs past the end \(needs 50 bytes, 2 left\)$/,
    );
  });

  it('rejects resource_spans sent with the wrong wire type', () => {
    const body = new ProtoWriter().tag(1, WIRE_VARINT).varint(5).finish();
    expect(malformed(() => decodeTracesProto(body))).toBe(
      'resource_spans[0]: wire type 0 (varint), expected 2 (length-delimited), at byte 0',
    );
  });

  it.each([
    [3, /field 1 at byte 0 uses wire type 3 \(start group\); groups are not supported/],
    [4, /field 1 at byte 0 uses wire type 4 \(end group\); groups are not supported/],
    [6, /invalid wire type 6 at byte 0/],
    [7, /invalid wire type 7 at byte 0/],
  ])('rejects wire type %i', (wireType, expected) => {
    expect(malformed(() => decodeTracesProto(new Uint8Array([(1 << 3) | wireType, 0, 0, 0, 0, 0, 0, 0, 0])))).toMatch(expected);
  });

  it('rejects a varint over 10 bytes and a field number of 0', () => {
    const body = new Uint8Array([0x10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]);
    expect(malformed(() => decodeTracesProto(body))).toBe('varint at byte 1 is longer than 10 bytes');
    expect(malformed(() => decodeTracesProto(new Uint8Array([0x02, 0x00])))).toBe('invalid field number 0 at byte 0');
  });

  it('skips unknown top-level fields of every wire type', () => {
    const w = new ProtoWriter();
    w.tag(99, WIRE_VARINT).varint(2n ** 63n);
    w.tag(98, WIRE_FIXED64).fixed64(1n);
    w.tag(97, WIRE_LEN).string('future');
    w.tag(96, 5).fixed32(7);
    const body = Buffer.concat([w.finish(), tracesRequest([span()])]);
    expect(decodeTracesProto(body).items).toHaveLength(1);
  });
});

describe('protobuf span errors reject only that span', () => {
  function rejection(spec: Parameters<typeof span>[0]): string {
    const result = decodeTracesProto(tracesRequest([span(spec)]));
    expect(result.items).toHaveLength(0);
    expect(result.rejected).toBe(1);
    expect(result.errors).toHaveLength(1);
    return result.errors[0]!;
  }

  it.each([
    ['trace_id of 15 bytes', { traceId: TRACE_ID.subarray(1) }, `${SPAN0}.trace_id: expected 16 bytes, got 15`],
    ['missing trace_id', { traceId: undefined }, `${SPAN0}.trace_id: expected 16 bytes, got 0`],
    ['all-zero trace_id', { traceId: Buffer.alloc(16) }, `${SPAN0}.trace_id: all 16 bytes are zero`],
    ['span_id of 9 bytes', { spanId: Buffer.alloc(9, 1) }, `${SPAN0}.span_id: expected 8 bytes, got 9`],
    ['all-zero span_id', { spanId: Buffer.alloc(8) }, `${SPAN0}.span_id: all 8 bytes are zero`],
    ['parent_span_id of 4 bytes', { parentSpanId: Buffer.alloc(4, 1) }, `${SPAN0}.parent_span_id: expected 8 bytes or none, got 4`],
    ['kind 6', { kind: 6 }, `${SPAN0}.kind: 6 is not a SpanKind (0..5)`],
    ['negative kind', { kind: -1 }, `${SPAN0}.kind: -1 is not a SpanKind (0..5)`],
    ['end before start', { start: 2_000n, end: 1_999n }, `${SPAN0}.end_time_unix_nano: 1999 is before start_time_unix_nano 2000`],
  ])('%s', (_name, spec, expected) => {
    expect(rejection(spec as Parameters<typeof span>[0])).toBe(expected);
  });

  it('trace_id sent as a varint', () => {
    const message = rejection({ traceId: undefined, extra: (w) => w.tag(1, WIRE_VARINT).varint(7) });
    expect(message).toMatch(new RegExp(`^${escape(SPAN0)}\\.trace_id: wire type 0 \\(varint\\), expected 2 \\(length-delimited\\), at byte \\d+$`));
  });

  it('start_time sent as length-delimited', () => {
    expect(rejection({ extra: (w) => w.tag(7, WIRE_LEN).string('noon') })).toMatch(
      /spans\[0\]\.start_time_unix_nano: wire type 2 \(length-delimited\), expected 1 \(fixed64\)/,
    );
  });

  it('a status code out of range, and a bad status field', () => {
    expect(rejection({ extra: (w) => w.fork().tag(3, WIRE_VARINT).varint(3).join(15) })).toBe(`${SPAN0}.status.code: 3 is not a StatusCode (0..2)`);
    expect(rejection({ extra: (w) => w.fork().tag(2, WIRE_VARINT).varint(3).join(15) })).toMatch(
      /spans\[0\]\.status\.message: wire type 0 \(varint\), expected 2/,
    );
  });

  it('an attribute whose length runs past the span', () => {
    const message = rejection({
      extra: (w) => {
        writeStringKeyValue(w, 9, 'ok', 'fine');
        w.tag(9, WIRE_LEN).varint(40).raw([0x0a, 0x01, 0x61]);
      },
    });
    expect(message).toMatch(
      new RegExp(`^${escape(SPAN0)}\\.attributes\\[1\\]: length-delimited field 9 at byte \\d+ runs past the end \\(needs 40 bytes, 3 left\\)$`),
    );
  });

  it('an attribute key or value sent with the wrong wire type', () => {
    expect(rejection({ extra: (w) => w.fork().tag(1, WIRE_VARINT).varint(1).join(9) })).toMatch(
      new RegExp(`^${escape(SPAN0)}\\.attributes\\[0\\]\\.key: wire type 0 \\(varint\\), expected 2 \\(length-delimited\\), at byte \\d+$`),
    );
    expect(
      rejection({ extra: (w) => w.fork().tag(1, WIRE_LEN).string('k').fork().tag(1, WIRE_FIXED64).fixed64(1n).join(2).join(9) }),
    ).toMatch(/spans\[0\]\.attributes\[0\]\.value\.string_value: wire type 1 \(fixed64\), expected 2 \(length-delimited\), at byte \d+$/);
    expect(rejection({ extra: (w) => w.tag(10, WIRE_LEN).string('x') })).toMatch(/spans\[0\]\.dropped_attributes_count: wire type 2/);
  });

  it('a malformed attribute value deep inside', () => {
    const message = rejection({
      extra: (w) => {
        // attributes[0] = { key: 'k', value: { array_value: { values: [ {int_value: <wrong wire type>} ] } } }
        w.fork().tag(1, WIRE_LEN).string('k');
        w.fork().fork().fork().tag(3, WIRE_LEN).string('x').join(1).join(5).join(2);
        w.join(9);
      },
    });
    expect(message).toMatch(
      new RegExp(`^${escape(SPAN0)}\\.attributes\\[0\\]\\.value\\.array_value\\.values\\[0\\]\\.int_value: wire type 2 \\(length-delimited\\), expected 0 \\(varint\\)`),
    );
  });

  it('a truncated event and a bad link', () => {
    expect(
      rejection({
        extra: (w) => {
          w.fork().tag(2, WIRE_LEN).string('e0').join(11);
          w.fork().tag(1, WIRE_FIXED64).raw([1, 2, 3]).join(11);
        },
      }),
    ).toMatch(/spans\[0\]\.events\[1\]\.time_unix_nano: fixed64 field 1 at byte \d+ runs past the end \(needs 8 bytes, 3 left\)/);
    expect(
      rejection({
        extra: (w) => {
          w.fork().tag(1, WIRE_LEN).bytes(TRACE_ID).tag(2, WIRE_LEN).bytes(SPAN_ID).join(13);
          w.fork().tag(1, WIRE_LEN).bytes(TRACE_ID.subarray(0, 8)).tag(2, WIRE_LEN).bytes(SPAN_ID).join(13);
        },
      }),
    ).toBe(`${SPAN0}.links[1].trace_id: expected 16 bytes, got 8`);
  });

  it('a span field sent with the wrong wire type in ScopeSpans rejects one span', () => {
    const w = new ProtoWriter();
    w.fork().fork();
    w.tag(2, WIRE_VARINT).varint(12345);
    w.fork();
    w.join(2);
    w.join(2).join(1);
    const body = Buffer.concat([w.finish(), tracesRequest([span()])]);
    const result = decodeTracesProto(body);
    expect(result.items).toHaveLength(1);
    expect(result.rejected).toBe(2);
    expect(result.errors[0]).toBe('resource_spans[0].scope_spans[0].spans[0]: wire type 0 (varint), expected 2 (length-delimited), at byte 4');
    expect(result.errors[1]).toBe('resource_spans[0].scope_spans[0].spans[1].trace_id: expected 16 bytes, got 0');
  });

  it('3 good spans and 2 bad ones give 3 items and 2 rejected', () => {
    const result = decodeTracesProto(
      tracesRequest([
        span({ name: 'a' }),
        span({ name: 'b', spanId: Buffer.alloc(8) }),
        span({ name: 'c', parentSpanId: PARENT_ID }),
        span({ name: 'd', kind: 77 }),
        span({ name: 'e', kind: 3 }),
      ]),
    );
    expect(result.items.map((s) => s.name)).toEqual(['a', 'c', 'e']);
    expect(result.rejected).toBe(2);
    expect(result.errors).toEqual([
      'resource_spans[0].scope_spans[0].spans[1].span_id: all 8 bytes are zero',
      'resource_spans[0].scope_spans[0].spans[3].kind: 77 is not a SpanKind (0..5)',
    ]);
    expect(result.items[1]!.parentSpanId).toBe('53995c3f42cd8ad8');
    expect(result.items[2]!.kind).toBe('Client');
    expect(result.items[0]!.resource.serviceName).toBe('svc');
  });

  it('keeps the first 10 messages and counts every rejection', () => {
    const spans = Array.from({ length: 25 }, (_, i) => span({ name: `s${i}`, kind: i % 2 === 0 ? 9 : 1 }));
    const result = decodeTracesProto(tracesRequest(spans));
    expect(result.items).toHaveLength(12);
    expect(result.rejected).toBe(13);
    expect(result.errors).toHaveLength(10);
    expect(result.errors[9]).toBe('resource_spans[0].scope_spans[0].spans[18].kind: 9 is not a SpanKind (0..5)');
  });

  it('invalid UTF-8 is replaced, not rejected; an all-zero parent means a root span', () => {
    const bad = [0x61, 0xff, 0x62, 0xe2, 0x82, 0x63, 0xed, 0xa0, 0x80];
    const result = decodeTracesProto(
      tracesRequest([
        span({
          parentSpanId: Buffer.alloc(8),
          extra: (w) => {
            w.tag(5, WIRE_LEN).bytes(new Uint8Array(bad));
            w.fork().tag(1, WIRE_LEN).bytes(new Uint8Array(bad)).fork().tag(1, WIRE_LEN).string('v').join(2).join(9);
          },
        }),
      ]),
    );
    expect(result.rejected).toBe(0);
    const expected = new TextDecoder().decode(new Uint8Array(bad));
    expect(result.items[0]!.name).toBe(expected);
    expect(result.items[0]!.attributes[0]!.key).toBe(expected);
    expect(result.items[0]!.parentSpanId).toBe('');
  });

  it('skips unknown fields inside spans, attributes and values', () => {
    const result = decodeTracesProto(
      tracesRequest([
        span({
          extra: (w) => {
            w.tag(100, WIRE_LEN).string('future span field');
            w.tag(101, WIRE_VARINT).varint(1);
            w.fork().tag(1, WIRE_LEN).string('k').tag(3, WIRE_FIXED64).fixed64(9n);
            w.fork().tag(8, WIRE_LEN).string('future value type').tag(1, WIRE_LEN).string('v').join(2);
            w.join(9);
          },
        }),
      ]),
    );
    expect(result.errors).toEqual([]);
    expect(result.items[0]!.attributes).toEqual([{ key: 'k', value: 'v', type: 'string' }]);
  });

  it('duplicated attribute keys: the last value wins', () => {
    const result = decodeTracesProto(
      tracesRequest([
        span({
          extra: (w) => {
            writeStringKeyValue(w, 9, 'a', '1');
            writeStringKeyValue(w, 9, 'b', '2');
            writeStringKeyValue(w, 9, 'a', '3');
          },
        }),
      ]),
    );
    expect(result.items[0]!.attributes).toEqual([
      { key: 'a', value: '3', type: 'string' },
      { key: 'b', value: '2', type: 'string' },
    ]);
  });

  it('nesting deeper than the limit rejects the span instead of exhausting the stack', () => {
    // AnyValue{array_value{values[AnyValue{array_value{...}}]}} 500 levels deep.
    let inner: Uint8Array = new Uint8Array(0);
    for (let i = 0; i < 500; i++) {
      const arr = new ProtoWriter().tag(1, WIRE_LEN).bytes(inner).finish(); // ArrayValue { values: inner }
      inner = new ProtoWriter().tag(5, WIRE_LEN).bytes(arr).finish(); // AnyValue { array_value }
    }
    const message = rejection({ extra: (w) => w.fork().tag(1, WIRE_LEN).string('deep').tag(2, WIRE_LEN).bytes(inner).join(9) });
    expect(message).toMatch(/arrays and kvlists nest deeper than 32 levels$/);
  });
});

describe('OTLP/JSON trace errors', () => {
  const good = {
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: '00f067aa0ba902b7',
    name: 'op',
    kind: 2,
    startTimeUnixNano: '1000',
    endTimeUnixNano: '2000',
  };
  function request(spans: unknown[]): string {
    return JSON.stringify({ resourceSpans: [{ resource: { attributes: [] }, scopeSpans: [{ scope: { name: 's' }, spans }] }] });
  }
  function rejection(spanJson: unknown): string {
    const result = decodeTracesJson(request([spanJson]));
    expect(result.items).toHaveLength(0);
    expect(result.rejected).toBe(1);
    return result.errors[0]!;
  }

  it('invalid JSON carries JSON.parse’s own message', () => {
    const text = '{"resourceSpans": [ {"scopeSpans": }';
    let parseMessage = '';
    try {
      JSON.parse(text);
    } catch (err) {
      parseMessage = (err as Error).message;
    }
    expect(parseMessage).not.toBe('');
    expect(malformed(() => decodeTracesJson(text))).toBe(`invalid JSON: ${parseMessage}`);
    expect(malformed(() => decodeTracesJson(Buffer.from(text)))).toBe(`invalid JSON: ${parseMessage}`);
  });

  it('request-level shape errors throw with the path', () => {
    expect(malformed(() => decodeTracesJson('[]'))).toBe('the request must be a JSON object, got array');
    expect(malformed(() => decodeTracesJson('{"resourceSpans":{}}'))).toBe('resource_spans: expected an array, got object');
    expect(malformed(() => decodeTracesJson('{"resourceSpans":[5]}'))).toBe('resource_spans[0]: expected an object, got number');
    expect(malformed(() => decodeTracesJson('{"resourceSpans":[{"scopeSpans":[{"spans":"x"}]}]}'))).toBe(
      'resource_spans[0].scope_spans[0].spans: expected an array, got string',
    );
    expect(
      malformed(() => decodeTracesJson('{"resourceSpans":[{"resource":{"attributes":[{"key":"a","value":{"intValue":"1.5"}}]}}]}')),
    ).toBe('resource_spans[0].resource.attributes[0].value.int_value: expected a 64-bit integer, got "1.5"');
  });

  it.each([
    ['traceId as a number', { ...good, traceId: 12 }, `${SPAN0}.trace_id: expected a hex string, got number`],
    ['traceId too short', { ...good, traceId: 'abcd' }, `${SPAN0}.trace_id: expected 32 hex digits (16 bytes), got 4 characters`],
    ['spanId not hex', { ...good, spanId: '00f067aa0ba902bz' }, `${SPAN0}.span_id: character "z" at 15 is not a hex digit`],
    ['spanId all zero', { ...good, spanId: '0000000000000000' }, `${SPAN0}.span_id: all 8 bytes are zero`],
    ['name as a number', { ...good, name: 5 }, `${SPAN0}.name: expected a string, got number`],
    ['kind unknown name', { ...good, kind: 'SPAN_KIND_BOGUS' }, `${SPAN0}.kind: unknown enum value "SPAN_KIND_BOGUS"`],
    ['kind out of range', { ...good, kind: 8 }, `${SPAN0}.kind: 8 is not a SpanKind (0..5)`],
    ['start not an integer', { ...good, startTimeUnixNano: '12abc' }, `${SPAN0}.start_time_unix_nano: expected an unsigned 64-bit integer, got "12abc"`],
    ['negative time', { ...good, endTimeUnixNano: -1 }, `${SPAN0}.end_time_unix_nano: -1 is out of range for an unsigned 64-bit integer`],
    ['attributes not an array', { ...good, attributes: {} }, `${SPAN0}.attributes: expected an array, got object`],
    ['bool attribute as a string', { ...good, attributes: [{ key: 'b', value: { boolValue: 'true' } }] }, `${SPAN0}.attributes[0].value.bool_value: expected a boolean, got string`],
    ['bad link span id', { ...good, links: [{ traceId: good.traceId, spanId: 'abc' }] }, `${SPAN0}.links[0].span_id: expected 16 hex digits (8 bytes), got 3 characters`],
    ['status not an object', { ...good, status: 2 }, `${SPAN0}.status: expected an object, got number`],
    ['status code name unknown', { ...good, status: { code: 'STATUS_CODE_MAYBE' } }, `${SPAN0}.status.code: unknown enum value "STATUS_CODE_MAYBE"`],
    ['end before start', { ...good, startTimeUnixNano: '3000' }, `${SPAN0}.end_time_unix_nano: 2000 is before start_time_unix_nano 3000`],
    ['span not an object', 'span', `${SPAN0}: expected an object, got string`],
  ])('%s', (_name, spanJson, expected) => {
    expect(rejection(spanJson)).toBe(expected);
  });

  it('accepts enum names, snake_case keys, numbers for 64-bit ints, uppercase hex, and ignores unknown members', () => {
    const result = decodeTracesJson(
      request([
        {
          trace_id: '4BF92F3577B34DA6A3CE929D0E0E4736',
          span_id: '00F067AA0BA902B7',
          parent_span_id: '53995c3f42cd8ad8',
          name: 'op',
          kind: 'SPAN_KIND_CONSUMER',
          start_time_unix_nano: 1000,
          end_time_unix_nano: '2000',
          status: { code: 'STATUS_CODE_ERROR', message: 'x' },
          attributes: [
            { key: 'i', value: { int_value: '-9223372036854775808' } },
            { key: 'd', value: { doubleValue: 'NaN' } },
            { key: 'b', value: { bytesValue: 'AAEC-_8' } },
            { key: 'k', value: { kvlistValue: { values: [{ key: 'x', value: { intValue: '9007199254740993' } }] } } },
          ],
          droppedAttributesCount: 3,
          futureField: { anything: true },
        },
      ]),
    );
    expect(result.errors).toEqual([]);
    const s = result.items[0]!;
    expect(s).toMatchObject({
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      parentSpanId: '53995c3f42cd8ad8',
      kind: 'Consumer',
      startTimeUnixNano: 1000n,
      statusCode: 'Error',
      statusMessage: 'x',
    });
    expect(s.attributes).toEqual([
      { key: 'i', value: '-9223372036854775808', type: 'int' },
      { key: 'd', value: 'NaN', type: 'double' },
      { key: 'b', value: 'AAEC+/8=', type: 'bytes' },
      { key: 'k', value: '{"x":"9007199254740993"}', type: 'kvlist' },
    ]);
  });

  it('attribute nesting past the limit rejects the span; nesting past what JSON.parse takes is malformed', () => {
    const nested = (depth: number) => {
      let v = '{"stringValue":"leaf"}';
      for (let i = 0; i < depth; i++) v = `{"arrayValue":{"values":[${v}]}}`;
      return `{"resourceSpans":[{"scopeSpans":[{"spans":[${JSON.stringify({ ...good, attributes: [] }).replace('"attributes":[]', `"attributes":[{"key":"deep","value":${v}}]`)}]}]}]}`;
    };
    const ok = decodeTracesJson(nested(32));
    expect(ok.rejected).toBe(0);
    expect(ok.items[0]!.attributes[0]!.value).toBe(`${'['.repeat(32)}"leaf"${']'.repeat(32)}`);
    const deep = decodeTracesJson(nested(33));
    expect(deep.rejected).toBe(1);
    expect(deep.errors[0]).toMatch(/^resource_spans\[0\]\.scope_spans\[0\]\.spans\[0\]\.attributes\[0\]\.value\.array_value(\.values\[0\]\.array_value)+: arrays and kvlists nest deeper than 32 levels$/);
    try {
      const r = decodeTracesJson(nested(200_000));
      expect(r.rejected).toBe(1);
    } catch (err) {
      expect((err as TracemeshError).code).toBe('TM_ERR_OTLP_MALFORMED');
    }
  });

  it('3 good spans and 2 bad ones give 3 items and 2 rejected', () => {
    const result = decodeTracesJson(
      request([good, { ...good, traceId: 'nothex' }, good, { ...good, kind: -4 }, { ...good, name: 'last' }]),
    );
    expect(result.items).toHaveLength(3);
    expect(result.rejected).toBe(2);
    expect(result.errors).toEqual([
      'resource_spans[0].scope_spans[0].spans[1].trace_id: expected 32 hex digits (16 bytes), got 6 characters',
      'resource_spans[0].scope_spans[0].spans[3].kind: -4 is not a SpanKind (0..5)',
    ]);
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
