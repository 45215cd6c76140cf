import { describe, expect, it } from 'vitest';
import { isTracemeshError } from '../../lib/errors.js';
import { parseEtcdUrls } from './etcd-urls.js';

describe('parseEtcdUrls', () => {
  it('normalises one or more client URLs, 2379 when no port is written', () => {
    expect(parseEtcdUrls('http://127.0.0.1:2379')).toEqual(['http://127.0.0.1:2379']);
    expect(parseEtcdUrls('http://etcd-0, http://etcd-1:80,https://[::1]')).toEqual(['http://etcd-0:2379', 'http://etcd-1:80', 'https://[::1]:2379']);
  });

  const bad: Array<[string, RegExp]> = [
    ['', /--etcd: expected one or more etcd client URLs separated by commas/],
    ['http://a:1,,http://b:2', /expected one or more etcd client URLs/],
    ['localhost:2379', /--etcd: 'localhost:2379' has no scheme; write http:\/\/localhost:2379/],
    ['http://', /--etcd: 'http:\/\/' is not a URL/],
    ['ftp://etcd:2379', /the scheme must be http or https, not ftp/],
    ['http://user:secret@etcd:2379', /user names and passwords in the URL are not supported/],
    ['http://etcd:2379/v3', /an etcd client URL has no path, query or fragment/],
  ];
  it.each(bad)('refuses %j', (text, message) => {
    let caught: unknown;
    try {
      parseEtcdUrls(text);
    } catch (err) {
      caught = err;
    }
    expect(isTracemeshError(caught, 'TM_ERR_CLI_BAD_VALUE')).toBe(true);
    expect((caught as Error).message).toMatch(message);
  });
});
