import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { MAX_RETRY_BODY_BYTES } from '../limits.js';
import { ReplayableBody } from './request-body.js';

describe('ReplayableBody', () => {
  it('keeps chunks up to the limit and writes them again in order', () => {
    const body = new ReplayableBody(10);
    expect(body.add(Buffer.from('hello'))).toBe(true);
    expect(body.add(Buffer.from('world'))).toBe(true);
    const out = new PassThrough();
    body.writeTo(out);
    out.end();
    expect(out.read()?.toString()).toBe('helloworld');
    expect(body.replayable).toBe(true);
  });

  it('drops everything once a chunk takes it over the limit, and keeps counting', () => {
    const body = new ReplayableBody(10);
    body.add(Buffer.from('hello'));
    expect(body.add(Buffer.from('world!'))).toBe(false);
    expect(body.replayable).toBe(false);
    expect(body.add(Buffer.from('x'))).toBe(false);
    expect(body.size).toBe(12);
    const out = new PassThrough();
    body.writeTo(out);
    out.end();
    expect(out.read()).toBeNull();
  });

  it('defaults to the proxy-wide retry body limit', () => {
    const body = new ReplayableBody();
    expect(body.add(Buffer.alloc(MAX_RETRY_BODY_BYTES))).toBe(true);
    expect(body.add(Buffer.alloc(1))).toBe(false);
  });
});
