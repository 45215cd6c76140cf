import { describe, expect, it } from 'vitest';
import { closestMatch, didYouMean, editDistance } from './did-you-mean.js';

describe('did-you-mean', () => {
  it('counts edits, a swap of neighbours as one', () => {
    expect(editDistance('endpoint', 'endpoints')).toBe(1);
    expect(editDistance('gprc', 'grpc')).toBe(1);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('same', 'same')).toBe(0);
  });

  it('suggests the closest known word when it is close enough', () => {
    expect(closestMatch('endpoint', ['ports', 'vips', 'endpoints'])).toBe('endpoints');
    expect(closestMatch('HTTP', ['http', 'http2', 'grpc', 'tcp'])).toBe('http');
    expect(closestMatch('namespce', ['name', 'namespace', 'labels'])).toBe('namespace');
  });

  it('suggests nothing for words that are not typos of a known one', () => {
    expect(closestMatch('replicas', ['ports', 'vips', 'endpoints'])).toBeUndefined();
    expect(closestMatch('', ['a'])).toBeUndefined();
    expect(closestMatch('x'.repeat(1000), ['x'])).toBeUndefined();
    expect(didYouMean('zzz', ['ports'])).toBe('');
  });

  it('words the hint for a message', () => {
    expect(didYouMean('endpoint', ['endpoints'])).toBe('; did you mean endpoints?');
  });
});
