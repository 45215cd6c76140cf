import { describe, expect, it } from 'vitest';
import { isTracemeshError } from '../../src/lib/errors.js';
import { parseControlPlaneUrls } from './discovery-client.js';

describe('parseControlPlaneUrls', () => {
  it('reads one URL or several separated by commas, in order', () => {
    expect(parseControlPlaneUrls('http://127.0.0.1:15010').map((u) => u.origin)).toEqual(['http://127.0.0.1:15010']);
    expect(parseControlPlaneUrls('http://a:1, http://b:2').map((u) => u.origin)).toEqual(['http://a:1', 'http://b:2']);
  });

  it('names the entry that is wrong', () => {
    for (const [text, message] of [
      ['http://a:1,', /an empty entry in 'http:\/\/a:1,'/],
      ['http://a:1,nope', /'nope' is not a URL/],
      ['https://a:1', /'https:\/\/a:1' is not an http:\/\/HOST:PORT URL/],
      ['http://a:1/path', /not an http:\/\/HOST:PORT URL/],
    ] as const) {
      let caught: unknown;
      try {
        parseControlPlaneUrls(text);
      } catch (err) {
        caught = err;
      }
      expect(isTracemeshError(caught, 'TM_ERR_CLI_BAD_VALUE')).toBe(true);
      expect((caught as Error).message).toMatch(message);
    }
  });
});
