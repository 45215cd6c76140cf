import { describe, expect, it } from 'vitest';
import { HEALTH_CHECK_HEADER, SOURCE_SERVICE_HEADER } from '../telemetry/attributes.js';
import { H_CONTENT_LENGTH, H_HEALTH_CHECK, H_HOST, H_OTHER, H_SOURCE_SERVICE, H_TRANSFER_ENCODING, H_X_B3_SAMPLED, fieldKindOf, fieldNameHash, headerKind } from './header-kinds.js';

/** fieldKindOf on a name embedded in a head's bytes, as the parser calls it. */
function kindOf(name: string): number {
  const bytes = Buffer.from(`GET / HTTP/1.1\r\n${name}: v\r\n\r\n`, 'latin1');
  return fieldKindOf(bytes, 16, name.length, fieldNameHash(name));
}

const KNOWN = ['host', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'proxy-connection', 'te', 'upgrade', 'expect', 'traceparent', 'tracestate', 'b3', 'x-b3-sampled', 'x-request-id', 'user-agent', 'x-forwarded-for', SOURCE_SERVICE_HEADER, HEALTH_CHECK_HEADER];

describe('fieldKindOf', () => {
  it('classifies known names in any letter case, in place', () => {
    expect(kindOf('host')).toBe(H_HOST);
    expect(kindOf('HOST')).toBe(H_HOST);
    expect(kindOf('Content-Length')).toBe(H_CONTENT_LENGTH);
    expect(kindOf('tRANSFER-eNCODING')).toBe(H_TRANSFER_ENCODING);
    expect(kindOf('X-B3-Sampled')).toBe(H_X_B3_SAMPLED);
    expect(kindOf(SOURCE_SERVICE_HEADER.toUpperCase())).toBe(H_SOURCE_SERVICE);
    expect(kindOf('X-Tracemesh-Health-Check')).toBe(H_HEALTH_CHECK);
  });

  it('agrees with the lowercase name lookup for every known name', () => {
    for (const name of KNOWN) {
      expect(headerKind(name)).not.toBe(H_OTHER);
      expect(kindOf(name)).toBe(headerKind(name));
      expect(kindOf(name.toUpperCase())).toBe(headerKind(name));
    }
  });

  it('leaves other names and near misses as H_OTHER', () => {
    for (const name of ['Accept', 'Content-Type', 'Content-Lengths', 'Content_Length', 'Hosts', 'Hos', 'Tf', 'x'.repeat(200)]) {
      expect(kindOf(name)).toBe(H_OTHER);
    }
  });

  it('does not trust the hash: a different name with a known name’s hash and length is H_OTHER', () => {
    const bytes = Buffer.from('hosu', 'latin1');
    expect(fieldKindOf(bytes, 0, 4, fieldNameHash('host'))).toBe(H_OTHER);
  });
});
