/**
 * node:http2 options for both sides of the proxy, derived once from the
 * limits: what bounds a session's memory, its header lists and its streams.
 */
import type { ClientSessionOptions, ServerOptions } from 'node:http2';
import type { ProxyLimits } from '../limits.js';

/**
 * Concurrent streams a downstream client may open on one session (advertised
 * in SETTINGS; node refuses the excess with RST_STREAM REFUSED_STREAM). 100 is
 * what grpc-go and nghttp2 servers advertise and the minimum RFC 9113 recommends.
 */
export const MAX_CONCURRENT_STREAMS = 100;

/**
 * Memory nghttp2 may hold per session, in MB (node's unit), before it refuses
 * new streams. Flow control keeps each stream's buffered data to a window, so
 * this only bites on abuse (floods of headers, pings or settings).
 */
export const MAX_SESSION_MEMORY_MB = 16;

/** Pseudo-headers are counted by node too; leave room for the five a request or response can carry. */
const PSEUDO_HEADER_ALLOWANCE = 5;

export function serverOptions(limits: ProxyLimits): ServerOptions {
  return {
    maxSessionMemory: MAX_SESSION_MEMORY_MB,
    maxHeaderListPairs: limits.maxHeaderCount + PSEUDO_HEADER_ALLOWANCE,
    // The server never pushes, so this only bounds what node assumes before the client's SETTINGS.
    peerMaxConcurrentStreams: MAX_CONCURRENT_STREAMS,
    settings: {
      enablePush: false,
      maxConcurrentStreams: MAX_CONCURRENT_STREAMS,
      maxHeaderListSize: limits.maxHeaderBytes,
    },
  };
}

export function clientOptions(limits: ProxyLimits): ClientSessionOptions {
  return {
    maxSessionMemory: MAX_SESSION_MEMORY_MB,
    maxHeaderListPairs: limits.maxHeaderCount + PSEUDO_HEADER_ALLOWANCE,
    // Until the upstream's SETTINGS arrive, node assumes this many streams are allowed.
    peerMaxConcurrentStreams: MAX_CONCURRENT_STREAMS,
    settings: {
      enablePush: false,
      maxHeaderListSize: limits.maxHeaderBytes,
    },
  };
}
