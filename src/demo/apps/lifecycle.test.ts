import { describe, expect, it } from 'vitest';
import { parseReadyLine, readyLine } from './lifecycle.js';

describe('the ready line', () => {
  it('names the listen address, IPv6 in brackets, and parses back', () => {
    expect(readyLine('web', { host: '127.0.0.1', port: 9080 })).toBe('tracemesh-demo web listening on 127.0.0.1:9080\n');
    expect(readyLine('ratings', { host: '::', port: 50051 })).toBe('tracemesh-demo ratings listening on [::]:50051\n');
    expect(parseReadyLine(readyLine('inventory', { host: '0.0.0.0', port: 7070 }))).toEqual({ app: 'inventory', host: '0.0.0.0', port: 7070 });
    expect(parseReadyLine(readyLine('ratings', { host: 'fd00::1:2', port: 1 }))).toEqual({ app: 'ratings', host: 'fd00::1:2', port: 1 });
  });

  it('is not taken from other lines', () => {
    for (const line of ['', 'listening on 127.0.0.1:9080', 'tracemesh-demo web listening on 127.0.0.1', 'tracemesh-demo web listening on ::1:9080',
      'tracemesh-demo web listening on localhost:9080', 'tracemesh-demo web listening on 127.0.0.1:123456']) {
      expect(parseReadyLine(line), line).toBeUndefined();
    }
  });
});
