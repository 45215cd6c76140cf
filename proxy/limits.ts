/**
 * Limits and timeouts every listener enforces, in one place with their
 * defaults (Envoy's where Envoy has one). Parsed once from flags, shared
 * read-only by every connection.
 */
export interface ProxyLimits {
  /** Request or response head (request line + headers), bytes. Over it: 431. Envoy: 60 KiB. */
  readonly maxHeaderBytes: number;
  /** Header fields per message. Over it: 431. Envoy: 100. */
  readonly maxHeaderCount: number;
  /** Request target length. Over it: 414. */
  readonly maxUrlLength: number;
  /** A request head must arrive completely within this (slowloris). 408 + close. */
  readonly requestHeaderTimeoutMs: number;
  /** A downstream connection with no request in flight is closed after this. */
  readonly idleTimeoutMs: number;
  /** No bytes either way on an active stream for this long: the stream is ended (SI). */
  readonly streamIdleTimeoutMs: number;
  /** Connecting to an upstream endpoint; over it: 503 UF. Envoy: 5 s (cluster connect_timeout default). */
  readonly connectTimeoutMs: number;
  /** From the end of the request to the response head; over it: 504 UT. Envoy route default: 15 s. 0 = none. */
  readonly requestTimeoutMs: number;
  /** How long protocol detection waits for the client's first bytes before treating it as server-first TCP. */
  readonly detectTimeoutMs: number;
  /** Idle upstream keep-alive connections kept per endpoint. */
  readonly maxIdleUpstreamPerEndpoint: number;
  /** An idle upstream keep-alive connection is closed after this. */
  readonly upstreamIdleTimeoutMs: number;
}

export const DEFAULT_LIMITS: ProxyLimits = {
  maxHeaderBytes: 60 * 1024,
  maxHeaderCount: 100,
  maxUrlLength: 16 * 1024,
  requestHeaderTimeoutMs: 10_000,
  idleTimeoutMs: 300_000,
  streamIdleTimeoutMs: 300_000,
  connectTimeoutMs: 5_000,
  requestTimeoutMs: 15_000,
  detectTimeoutMs: 100,
  maxIdleUpstreamPerEndpoint: 64,
  upstreamIdleTimeoutMs: 60_000,
};

/**
 * A request body is buffered up to this many bytes while a retry or a mirror
 * may need to send it again; a longer body streams as usual and that request
 * is not retried (nor mirrored). Envoy's per-request buffer limit is 16 KiB
 * by default; 64 KiB covers the usual JSON and gRPC request.
 */
export const MAX_RETRY_BODY_BYTES = 64 * 1024;

/** Mirrored copies in flight per proxy direction; beyond it a copy is dropped and counted (a mirror never queues). */
export const MAX_MIRRORS_IN_FLIGHT = 64;
