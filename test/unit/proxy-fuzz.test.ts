/**
 * Issue 3, robustness: thousands of random and mutated HTTP/1 requests and
 * HTTP/2 frame sequences against a real Proxy's inbound listener (→ app) and
 * another's outbound listener (explicit forward proxy → static Service), each
 * case on its own connection with a deadline. The proxies must answer only
 * well-formed HTTP, refuse what is malformed (and close after a refusal),
 * never forward a request RFC 9112 makes malformed, never hang past their
 * own limits, and afterwards still serve valid HTTP/1 and HTTP/2 requests
 * with no connection left over and no unbounded heap growth.
 *
 * Reproduce a failure: FUZZ_SEED=<seed printed> (and FUZZ_ONLY=http1:<index>
 * or http2:<index> for one case). FUZZ_HTTP1_CASES / FUZZ_HTTP2_CASES change
 * the counts, FUZZ_CONCURRENCY the cases in flight (1 pins an uncaught
 * exception on one case).
 */
import http2 from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS, type ProxyLimits } from '../../proxy/limits.js';
import type { Proxy } from '../../proxy/proxy.js';
import { testSidecar } from '../support/sidecar.js';
import type { ServiceSpec } from '../../src/config/types.js';
import { exchange, runBounded, type RawOutcome } from '../support/fuzz/exchange.js';
import { proxyFlags, readHttp1Answer } from '../support/fuzz/http1-answer.js';
import { http1Case, validGet, type Http1Case } from '../support/fuzz/http1-cases.js';
import { http2Case, type Http2Case } from '../support/fuzz/http2-cases.js';
import { knownHttp1Cases, knownHttp2Cases } from '../support/fuzz/known-cases.js';
import { readH2Answer } from '../support/fuzz/h2-frames.js';
import { gcFunction, heapAfterGc, waitFor } from '../support/fuzz/poll.js';
import { STREAM_HTTP1, STREAM_HTTP2, caseRandom, fuzzSeed } from '../support/fuzz/random.js';
import { startFuzzUpstream, type FuzzUpstream } from '../support/fuzz/upstream.js';
import { http1Done, http1Problems, http2Done, http2Problems } from '../support/fuzz/verdicts.js';

const SEED = fuzzSeed();
const HTTP1_CASES = countFromEnv('FUZZ_HTTP1_CASES', 3_000);
const HTTP2_CASES = countFromEnv('FUZZ_HTTP2_CASES', 1_000);
const ONLY = onlyFromEnv();
/** Cases in flight at once: enough to overlap the proxies' timeouts, few enough for a shared 2-core machine. */
const CONCURRENCY = countFromEnv('FUZZ_CONCURRENCY', 16) || 1;
/**
 * Per case. Every limit below is at most 1 s, so an HTTP/1 case still open
 * after this is a hang (the margin is for a loaded machine). An HTTP/2
 * session may legitimately stay open with a stream in flight, so its cases
 * only wait as long as their checks need.
 */
const HTTP1_DEADLINE_MS = 5_000;
const HTTP2_DEADLINE_MS = 3_000;
/** Heap growth allowed across the run (after GC): a leak per connection over ~8,000 connections shows well above it. */
const MAX_HEAP_GROWTH_BYTES = 32 * 1024 * 1024;
/** Failures printed in full; the rest are counted. */
const MAX_REPORTED = 25;

/** Short limits, so every way a case can stall ends well within the deadlines above. */
const FUZZ_LIMITS: ProxyLimits = {
  ...DEFAULT_LIMITS,
  requestHeaderTimeoutMs: 500,
  idleTimeoutMs: 1_000,
  streamIdleTimeoutMs: 1_000,
  requestTimeoutMs: 1_000,
  connectTimeoutMs: 1_000,
  upstreamIdleTimeoutMs: 1_000,
};

const SERVICE = 'fuzz-app';
const HTTP1_PORT = 8080;
const HTTP2_PORT = 8081;

function countFromEnv(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 1_000_000) throw new Error(`${name}: '${text}' is not a case count (0…1000000)`);
  return n;
}

function onlyFromEnv(): { protocol: 'http1' | 'http2'; index: number } | undefined {
  const text = process.env['FUZZ_ONLY'];
  if (text === undefined || text === '') return undefined;
  const m = /^(http1|http2):(\d+)$/.exec(text);
  if (m === null) throw new Error(`FUZZ_ONLY: '${text}' is not http1:<index> or http2:<index>`);
  return { protocol: m[1] as 'http1' | 'http2', index: Number(m[2]) };
}

interface FuzzedListener {
  readonly name: 'inbound' | 'outbound';
  readonly proxy: Proxy;
  readonly port: number;
}

function fuzzProxy(service: string, appPort: number, services: ServiceSpec[]): Proxy {
  return testSidecar(service, appPort, { services, limits: FUZZ_LIMITS });
}

/** Listener figures from the admin page (`/clusters`): connections the listener still holds. */
async function activeConnections(proxy: Proxy): Promise<Record<string, number>> {
  const res = await fetch(`http://127.0.0.1:${proxy.adminPort}/clusters`);
  const body = (await res.json()) as { listeners: Array<{ name: string; activeConnections: number }> };
  return Object.fromEntries(body.listeners.map((l) => [l.name, l.activeConnections]));
}

/** One failure, with everything needed to replay it. */
function report(protocol: 'http1' | 'http2', index: number, listener: string, generator: string, bytes: Buffer, outcome: RawOutcome | undefined, problem: string): string {
  const input = bytes.subarray(0, 240).toString('latin1');
  const answer = outcome === undefined ? '' : `; answer ${outcome.data.length} bytes ${JSON.stringify(outcome.data.subarray(0, 160).toString('latin1'))}${outcome.closed ? ', closed' : ''}${outcome.timedOut ? ', timed out' : ''}`;
  return (
    `FUZZ_SEED=${SEED} FUZZ_ONLY=${protocol}:${index} (${generator}, ${listener}): ${problem}` +
    `; input ${bytes.length} bytes ${JSON.stringify(input)}${bytes.length > 240 ? '…' : ''}${answer}`
  );
}

function summarize(failures: readonly string[]): string {
  const shown = failures.slice(0, MAX_REPORTED).join('\n');
  return failures.length > MAX_REPORTED ? `${shown}\n… and ${failures.length - MAX_REPORTED} more` : shown;
}

/** First status (or what happened instead) of an HTTP/1 exchange. */
function http1Kind(outcome: RawOutcome): string {
  const first = readHttp1Answer(outcome.data).responses[0];
  if (first !== undefined) return String(first.status);
  if (outcome.timedOut) return 'deadline';
  return outcome.data.length === 0 ? 'closed silently' : 'partial';
}

/** How an HTTP/2 exchange ended. */
function http2Kind(outcome: RawOutcome): string {
  // A case without a valid preface may have been taken for TCP and answered by the app in HTTP/1.
  if (outcome.data.subarray(0, 5).toString('latin1') === 'HTTP/') return 'HTTP/1 answer';
  const goawayCode = outcome.data.length === 0 ? -1 : readH2Answer(outcome.data).goawayCode;
  if (goawayCode >= 0) return `GOAWAY ${goawayCode}`;
  if (outcome.closed) return 'closed';
  return outcome.timedOut ? 'deadline' : 'answered';
}

/** Case indexes to run: all, or the one FUZZ_ONLY names. */
function indexes(protocol: 'http1' | 'http2', total: number): number[] {
  if (ONLY !== undefined) return ONLY.protocol === protocol ? [ONLY.index] : [];
  return Array.from({ length: total }, (_, i) => i);
}

describe('proxy fuzz: random and mutated HTTP/1 requests and HTTP/2 frames', () => {
  let upstream: FuzzUpstream;
  let inbound: Proxy;
  let outbound: Proxy;
  let listeners: FuzzedListener[];
  const inFlight = new Set<string>();
  const crashes: string[] = [];
  const gc = gcFunction();
  let heapBefore: number | undefined;

  // The proxies run in this process: an exception they throw asynchronously lands here, with the cases then in flight.
  const onUncaught = (err: unknown): void => {
    crashes.push(`uncaught ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n  while in flight: ${[...inFlight].join(' ') || 'nothing'} (FUZZ_SEED=${SEED})`);
  };

  beforeAll(async () => {
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onUncaught);
    upstream = await startFuzzUpstream();
    inbound = fuzzProxy(SERVICE, upstream.port, []);
    const service: ServiceSpec = {
      name: SERVICE,
      namespace: 'default',
      ports: [
        { name: 'http', port: HTTP1_PORT, protocol: 'http' },
        { name: 'h2', port: HTTP2_PORT, protocol: 'http2' },
      ],
      vips: [],
      endpoints: [{ address: '127.0.0.1', port: upstream.port, labels: { version: 'v1' } }],
    };
    outbound = fuzzProxy('fuzz-client', upstream.port, [service]);
    await Promise.all([inbound.start(), outbound.start()]);
    listeners = [
      { name: 'inbound', proxy: inbound, port: inbound.inboundPort },
      { name: 'outbound', proxy: outbound, port: outbound.outboundPort },
    ];
    console.log(`proxy fuzz: FUZZ_SEED=${SEED}, ${HTTP1_CASES} HTTP/1 and ${HTTP2_CASES} HTTP/2 cases, ${CONCURRENCY} at a time`);
  });

  afterAll(async () => {
    process.removeListener('uncaughtException', onUncaught);
    process.removeListener('unhandledRejection', onUncaught);
    await Promise.all([inbound?.stop(), outbound?.stop()]);
    await upstream?.close();
  });

  /** Runs the cases of one protocol over both listeners (case i on listener i % 2); returns the failures. */
  async function fuzz<C extends { generator: string; bytes: Buffer; splits: readonly number[]; endAfterWrite: boolean }>(
    protocol: 'http1' | 'http2',
    total: number,
    make: (index: number) => C,
    done: (c: C) => (data: Buffer) => boolean,
    deadlineMs: number,
    judge: (c: C, outcome: RawOutcome) => string[],
    /** A short word for what came back, for the run's tally. */
    kindOf: (outcome: RawOutcome) => string,
    afterCase?: (index: number) => void,
  ): Promise<string[]> {
    const failures: string[] = [];
    const tally = new Map<string, number>();
    const started = performance.now();
    const run = indexes(protocol, total);
    await runBounded(
      run.length,
      CONCURRENCY,
      async (k) => {
        const index = run[k] as number;
        const listener = listeners[index % listeners.length] as FuzzedListener;
        const c = make(index);
        const label = `${protocol}:${index}@${listener.name}`;
        inFlight.add(label);
        try {
          const outcome = await exchange({ port: listener.port, bytes: c.bytes, splits: c.splits, endAfterWrite: c.endAfterWrite, deadlineMs, done: done(c) });
          const kind = kindOf(outcome);
          tally.set(kind, (tally.get(kind) ?? 0) + 1);
          for (const problem of judge(c, outcome)) failures.push(report(protocol, index, listener.name, c.generator, c.bytes, outcome, problem));
        } finally {
          inFlight.delete(label);
        }
        afterCase?.(index);
      },
      (k, err) => failures.push(`FUZZ_SEED=${SEED} FUZZ_ONLY=${protocol}:${run[k]}: the harness failed: ${String(err)}`),
    );
    const kinds = [...tally].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ×${n}`).join(', ');
    console.log(`proxy fuzz: ${protocol}: ${run.length} cases in ${((performance.now() - started) / 1000).toFixed(1)} s; ${kinds}`);
    return failures;
  }

  it('replays HTTP/2 inputs that once crashed the process or leaked a connection: no crash, the connection is released', async () => {
    const problems: string[] = [];
    for (const l of listeners) {
      for (const known of knownHttp2Cases(`${SERVICE}:${HTTP2_PORT}`)) {
        const before = (await activeConnections(l.proxy))[l.name] ?? 0;
        const label = `known "${known.name}"@${l.name}`;
        inFlight.add(label);
        const crashesBefore = crashes.length;
        try {
          await exchange({ port: l.port, bytes: known.bytes, splits: [], endAfterWrite: false, deadlineMs: HTTP2_DEADLINE_MS, done: (data) => readH2Answer(data).goawayCode >= 0 });
          let held = before;
          const released = await waitFor(
            async () => {
              held = (await activeConnections(l.proxy))[l.name] ?? 0;
              return held <= before ? true : undefined;
            },
            'release',
            5_000,
          ).catch(() => false);
          if (!released) problems.push(`${label}: the listener still holds ${held - before} connection(s) 5 s after the client closed (limits ≤ 1 s); input ${known.bytes.toString('hex')}; found before: ${known.found}`);
        } finally {
          inFlight.delete(label);
        }
        if (crashes.length > crashesBefore) problems.push(`${label}: ${crashes.splice(crashesBefore).join('; ')}; input ${known.bytes.toString('hex')}; found before: ${known.found}`);
      }
    }
    expect(problems, problems.join('\n')).toEqual([]);
  }, 60_000);

  it('replays HTTP/1 framing the proxy once forwarded verbatim: it is normalized or refused, never a 502 from a healthy app', async () => {
    const problems: string[] = [];
    for (const l of listeners) {
      for (const known of knownHttp1Cases(`${SERVICE}:${HTTP1_PORT}`)) {
        const outcome = await exchange({ port: l.port, bytes: known.bytes, splits: [], endAfterWrite: false, deadlineMs: HTTP1_DEADLINE_MS, done: (data) => readHttp1Answer(data).complete >= 1 });
        const first = readHttp1Answer(outcome.data).responses[0];
        if (first === undefined || !known.allowed.includes(first.status)) {
          problems.push(
            `known HTTP/1 "${known.name}"@${l.name}: answered ${first === undefined ? 'nothing' : `${first.status} ${proxyFlags(first)}`}, expected one of ${known.allowed.join('/')}` +
              `; input ${JSON.stringify(known.bytes.toString('latin1'))}; found before: ${known.found}`,
          );
        }
      }
    }
    expect(problems, problems.join('\n')).toEqual([]);
  }, 60_000);

  it(`answers every HTTP/1 case with well-formed HTTP, refuses and closes on malformed requests, never forwards them, never hangs`, async () => {
    const failures = await fuzz<Http1Case>(
      'http1',
      HTTP1_CASES,
      (index) => http1Case(caseRandom(SEED, STREAM_HTTP1, index), { authority: `${SERVICE}:${HTTP1_PORT}` }),
      http1Done,
      HTTP1_DEADLINE_MS,
      (c, outcome) => http1Problems(c, outcome, HTTP1_DEADLINE_MS),
      http1Kind,
      (index) => {
        // The baseline heap is taken once the proxies' one-off allocations (pools, metric children, JIT) are done.
        if (index === Math.min(300, HTTP1_CASES - 1) && gc !== undefined) heapBefore = heapAfterGc(gc);
      },
    );
    const problems = [...crashes.splice(0), ...failures];
    expect(problems, summarize(problems)).toEqual([]);
  }, 240_000);

  it('survives every HTTP/2 case: frames answered with well-formed HTTP/2, connection errors end the session, legal frames do not', async () => {
    const failures = await fuzz<Http2Case>(
      'http2',
      HTTP2_CASES,
      (index) => http2Case(caseRandom(SEED, STREAM_HTTP2, index), { authority: `${SERVICE}:${HTTP2_PORT}` }),
      http2Done,
      HTTP2_DEADLINE_MS,
      (c, outcome) => http2Problems(c, outcome, HTTP2_DEADLINE_MS),
      http2Kind,
    );
    const problems = [...crashes.splice(0), ...failures];
    expect(problems, summarize(problems)).toEqual([]);
  }, 240_000);

  it('afterwards still serves a valid HTTP/1 request through each listener', async () => {
    for (const l of listeners) {
      const outcome = await exchange({
        port: l.port,
        bytes: validGet({ authority: `${SERVICE}:${HTTP1_PORT}` }),
        splits: [],
        endAfterWrite: false,
        deadlineMs: 5_000,
        done: (data) => readHttp1Answer(data).complete >= 1,
      });
      const answer = readHttp1Answer(outcome.data);
      expect(answer.garbage, `${l.name}: ${outcome.data.toString('latin1')}`).toBeUndefined();
      expect(answer.responses.map((r) => r.status), `${l.name}: ${outcome.data.toString('latin1')}`).toEqual([200]);
      expect(outcome.data.toString('latin1').endsWith('\r\n\r\nok'), l.name).toBe(true);
    }
  });

  it('afterwards still serves a valid HTTP/2 request through each listener', async () => {
    for (const l of listeners) {
      const client = http2.connect(`http://127.0.0.1:${l.port}`);
      client.on('error', () => {});
      try {
        const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = client.request({ ':method': 'GET', ':path': '/after-fuzz', ':authority': `${SERVICE}:${HTTP2_PORT}` });
          let status = 0;
          let body = '';
          const timer = setTimeout(() => {
            req.close();
            reject(new Error(`${l.name}: no HTTP/2 answer within 5 s`));
          }, 5_000);
          req.on('response', (headers) => {
            status = Number(headers[':status']);
          });
          req.setEncoding('utf8');
          req.on('data', (chunk: string) => {
            body += chunk;
          });
          req.on('end', () => {
            clearTimeout(timer);
            resolve({ status, body });
          });
          req.on('error', (err) => {
            clearTimeout(timer);
            reject(err);
          });
        });
        expect({ listener: l.name, status, body }).toEqual({ listener: l.name, status: 200, body: 'ok' });
      } finally {
        await new Promise<void>((resolve) => client.close(() => resolve()));
      }
    }
  });

  it('leaves no downstream connection behind', async () => {
    for (const l of listeners) {
      let last: Record<string, number> = {};
      await waitFor(
        async () => {
          last = await activeConnections(l.proxy);
          return last[l.name] === 0 ? true : undefined;
        },
        `${l.name} listener to hold no connection`,
        10_000,
        () => JSON.stringify(last),
      );
    }
    expect(crashes, crashes.join('\n')).toEqual([]);
  });

  it('has a heap that did not grow without bound over the run (after GC)', () => {
    if (gc === undefined || heapBefore === undefined) {
      console.log('proxy fuzz: no GC handle (or too few cases for a baseline); heap check skipped');
      return;
    }
    const heapAfter = heapAfterGc(gc);
    console.log(`proxy fuzz: heap after GC ${(heapBefore / 1e6).toFixed(1)} MB → ${(heapAfter / 1e6).toFixed(1)} MB`);
    expect(heapAfter - heapBefore).toBeLessThan(MAX_HEAP_GROWTH_BYTES);
  });
});
