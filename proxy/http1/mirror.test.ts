import { describe, expect, it } from 'vitest';
import { shadowAuthority } from './mirror.js';

describe('shadowAuthority', () => {
  it('puts -shadow after the host and before any port, as Envoy does', () => {
    expect(shadowAuthority('reviews:9080')).toBe('reviews-shadow:9080');
    expect(shadowAuthority('reviews')).toBe('reviews-shadow');
    expect(shadowAuthority('[::1]:80')).toBe('[::1]-shadow:80');
    expect(shadowAuthority('[::1]')).toBe('[::1]-shadow');
  });
});
