import { describe, expect, it } from 'vitest';
import { isTracemeshError } from '../lib/errors.js';
import { parseRegistration } from './requests.js';

const GOOD = { id: 'web.default@host:1', service: 'web', namespace: 'default', version: 'v1', labels: { track: 'stable' }, address: '10.0.0.7', port: 15006 };

function problem(body: unknown): string {
  try {
    parseRegistration(body);
  } catch (err) {
    if (isTracemeshError(err, 'TM_ERR_CP_PROTOCOL')) return err.message;
    throw err;
  }
  throw new Error('expected TM_ERR_CP_PROTOCOL');
}

describe('registrations', () => {
  it('accept an address or host name and Kubernetes-style labels', () => {
    expect(parseRegistration(GOOD)).toEqual(GOOD);
    expect(parseRegistration({ ...GOOD, address: 'web-0.web.shop.svc', labels: undefined }).labels).toEqual({});
    expect(parseRegistration({ ...GOOD, address: 'fd00::7' }).address).toBe('fd00::7');
  });

  // What passes here becomes an endpoint in every proxy's snapshot: anything the
  // endpoint schema refuses would make every proxy NACK until it expired.
  it.each([
    [{ ...GOOD, address: 'not an address' }, /^registration: "address": expected an IPv4 or IPv6 address or a host name, got "not an address"/],
    [{ ...GOOD, address: '10.0.0.7:80' }, /^registration: "address": expected an IPv4 or IPv6 address or a host name/],
    [{ ...GOOD, labels: { 'has space': 'x' } }, /^registration: "labels\.has space": expected a label key/],
    [{ ...GOOD, labels: { app: 'not valid!' } }, /^registration: "labels\.app": expected a label value/],
    [{ ...GOOD, labels: { app: 3 } }, /^registration: "labels\.app": expected a label value/],
    [{ ...GOOD, labels: [] }, /^registration: "labels": expected a mapping of label names to values/],
    [{ ...GOOD, port: 0 }, /^registration: "port" must be a port number/],
    [{ ...GOOD, service: 'Web' }, /^registration: "service" 'Web' is not a name/],
  ])('refuse %j naming the field', (body, message) => {
    expect(problem(body)).toMatch(message);
  });
});
