/**
 * The per-request limits of ProxyLimits (header list size and count, target
 * length) for HTTP/2 requests, answered as HTTP/1 answers them (431, 414).
 */
import { wireErrorWithStatus, type WireError } from '../errors-to-wire.js';
import type { ProxyLimits } from '../limits.js';

/**
 * The request limits HTTP/1 enforces, applied to an HTTP/2 request: node
 * enforces only its own fixed 64 KiB header block, not the SETTINGS value
 * it advertises. Size is counted as RFC 9113 §6.5.2 counts a header list
 * (name + value + 32 per field, pseudo-headers included); the count excludes
 * pseudo-headers, like HTTP/1's field count.
 */
export function checkRequestLimits(rawHeaders: readonly string[], targetLength: number, limits: ProxyLimits): WireError | undefined {
  let size = 0;
  let count = 0;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    size += name.length + (rawHeaders[i + 1] as string).length + 32;
    if (name.charCodeAt(0) !== 58 /* : */) count++;
  }
  if (size > limits.maxHeaderBytes) return wireErrorWithStatus('DPE', 431, `header list larger than ${limits.maxHeaderBytes} bytes`);
  if (count > limits.maxHeaderCount) return wireErrorWithStatus('DPE', 431, `more than ${limits.maxHeaderCount} header fields`);
  if (targetLength > limits.maxUrlLength) return wireErrorWithStatus('DPE', 414, `request target longer than ${limits.maxUrlLength} bytes`);
  return undefined;
}
