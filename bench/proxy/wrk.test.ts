import { describe, expect, it } from 'vitest';
import { parseDuration, parseWrkOutput, wrkArgs } from './wrk.js';

/** wrk 4.1.0 output captured on this machine. */
const OUTPUT = `Running 1s test @ http://127.0.0.1:18090/
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   394.13us  818.31us   5.95ms   88.21%
    Req/Sec    24.54k     5.04k   34.07k    70.00%
  Latency Distribution
     50%   55.00us
     75%  137.00us
     90%    1.45ms
     99%    3.80ms
  24506 requests in 1.00s, 26.06MB read
  Non-2xx or 3xx responses: 12
  Socket errors: connect 0, read 3, write 0, timeout 1
Requests/sec:  24427.20
Transfer/sec:     25.97MB
`;

describe('wrk', () => {
  it('reads the figures of a --latency report', () => {
    expect(parseWrkOutput(OUTPUT)).toEqual({
      threads: 1,
      connections: 2,
      requests: 24506,
      seconds: 1,
      requestsPerSecond: 24427.2,
      p50Us: 55,
      p75Us: 137,
      p90Us: 1450,
      p99Us: 3800,
      meanUs: 394.13,
      maxUs: 5950,
      non2xx: 12,
      socketErrors: { connect: 0, read: 3, write: 0, timeout: 1 },
    });
  });

  it('converts every unit wrk prints', () => {
    expect(parseDuration('82.00us')).toBe(82);
    expect(parseDuration('1.5ms')).toBe(1500);
    expect(parseDuration('2.00s')).toBe(2_000_000);
    expect(parseDuration('1.00m')).toBe(60_000_000);
    expect(() => parseDuration('fast')).toThrow(/cannot read/);
  });

  it('names what is missing from output that is not a latency report', () => {
    expect(() => parseWrkOutput(OUTPUT.replace(/ {5}99%.*\n/, ''))).toThrow(/99% latency/);
    expect(() => parseWrkOutput('unable to connect to 127.0.0.1:1 Connection refused')).toThrow(/threads and M connections/);
  });

  it('sends the Host header only when asked', () => {
    const base = { wrk: 'wrk', core: 0, url: 'http://127.0.0.1:1/', connections: 50, threads: 1, durationSeconds: 3 };
    expect(wrkArgs(base)).toEqual(['-t', '1', '-c', '50', '-d', '3s', '--latency', '--timeout', '10s', 'http://127.0.0.1:1/']);
    expect(wrkArgs({ ...base, hostHeader: 'bench-server:8080' })).toContain('Host: bench-server:8080');
  });
});
