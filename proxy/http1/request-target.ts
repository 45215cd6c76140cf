/**
 * The request target (RFC 9112 §3.2): origin-form ("/x?y", authority from
 * Host), absolute-form ("http://reviews:9080/x", as sent to a forward proxy;
 * forwarded in origin-form), asterisk-form ("*", OPTIONS only) and
 * authority-form ("host:port", CONNECT only). One per connection, reused.
 */
import { H_HOST } from './header-kinds.js';
import type { HttpHead } from './head.js';

const DEFAULT_HTTP_PORT = 80;

// reg-name / IPv4 characters: unreserved, pct-encoded ('%'), sub-delims.
const HOST_CHAR = new Uint8Array(128);
for (const c of "-._~%!$&'()*+,;=") HOST_CHAR[c.charCodeAt(0)] = 1;
for (let c = 48; c <= 57; c++) HOST_CHAR[c] = 1;
for (let c = 65; c <= 90; c++) HOST_CHAR[c] = 1;
for (let c = 97; c <= 122; c++) HOST_CHAR[c] = 1;

export class RequestTarget {
  /** The client used this proxy as a forward proxy (absolute-form). */
  absolute = false;
  /** Authority as addressed: the URI's, else the Host field's; port 80 when not given. */
  host = '';
  port = 0;
  /** The target in origin-form, for the upstream request line. */
  origin = '';
  path = '';
  /** Without the '?'; '' when none. */
  query = '';
  error = '';

  reset(): void {
    this.absolute = false;
    this.host = '';
    this.port = 0;
    this.origin = '';
    this.path = '';
    this.query = '';
    this.error = '';
  }

  /** Host and port of `text[start, end)` ("host", "host:port", "[v6]:port"); false when invalid. */
  parseAuthority(text: string, start: number, end: number): boolean {
    let hostStart = start;
    let hostEnd: number;
    let portStart: number;
    if (text.charCodeAt(start) === 91) {
      // '[' IPv6 literal ']'
      const close = text.indexOf(']', start);
      if (close < 0 || close >= end) return this.invalid('malformed IPv6 authority');
      for (let i = start + 1; i < close; i++) {
        const c = text.charCodeAt(i);
        if (!(c === 58 || c === 46 || (c >= 48 && c <= 57) || ((c | 0x20) >= 97 && (c | 0x20) <= 102))) return this.invalid('malformed IPv6 authority');
      }
      hostStart = start + 1;
      hostEnd = close;
      portStart = close + 1;
      if (portStart < end && text.charCodeAt(portStart) !== 58) return this.invalid('malformed authority');
    } else {
      hostEnd = start;
      while (hostEnd < end) {
        const c = text.charCodeAt(hostEnd);
        if (c === 58) break;
        if (c >= 128 || HOST_CHAR[c] !== 1) return this.invalid('invalid character in authority');
        hostEnd++;
      }
      portStart = hostEnd;
    }
    if (hostEnd === hostStart) return this.invalid('empty host in authority');
    let port = DEFAULT_HTTP_PORT;
    if (portStart < end) {
      // ':' port; an empty port means the default (RFC 3986 §3.2.3).
      if (end - portStart > 1) {
        port = 0;
        for (let i = portStart + 1; i < end; i++) {
          const c = text.charCodeAt(i);
          if (c < 48 || c > 57 || end - portStart > 6) return this.invalid('invalid port in authority');
          port = port * 10 + (c - 48);
        }
        if (port === 0 || port > 65535) return this.invalid('invalid port in authority');
      }
    }
    this.host = text.slice(hostStart, hostEnd);
    this.port = port;
    return true;
  }

  private invalid(reason: string): boolean {
    this.error = reason;
    return false;
  }

  private splitQuery(origin: string): void {
    this.origin = origin;
    const q = origin.indexOf('?');
    if (q < 0) {
      this.path = origin;
      this.query = '';
    } else {
      this.path = origin.slice(0, q);
      this.query = origin.slice(q + 1);
    }
  }

  /** Reads the target of a parsed request (not CONNECT). False with `error` set when it is unusable. */
  resolve(head: HttpHead): boolean {
    this.reset();
    const target = head.target;
    const first = target.charCodeAt(0);
    if (first === 47) {
      // '/': origin-form; the authority is the Host field.
      this.splitQuery(target);
      return this.authorityFromHost(head);
    }
    if (target === '*') {
      if (head.method !== 'OPTIONS') return this.invalid('asterisk-form request target is only valid for OPTIONS');
      this.origin = '*';
      this.path = '*';
      return this.authorityFromHost(head);
    }
    if (target.length > 7 && (first | 0x20) === 104 && target.slice(0, 7).toLowerCase() === 'http://') {
      this.absolute = true;
      let authorityEnd = 7;
      while (authorityEnd < target.length) {
        const c = target.charCodeAt(authorityEnd);
        if (c === 47 || c === 63 || c === 35) break; // '/', '?', '#'
        if (c === 64) return this.invalid('userinfo in the request target is not allowed'); // '@'
        authorityEnd++;
      }
      if (!this.parseAuthority(target, 7, authorityEnd)) return false;
      const rest = target.slice(authorityEnd);
      this.splitQuery(rest === '' ? '/' : rest.charCodeAt(0) === 63 ? '/' + rest : rest);
      return true;
    }
    if (target.includes('://')) return this.invalid('only http:// absolute-form targets are proxied (use CONNECT for TLS)');
    return this.invalid('malformed request target');
  }

  /** CONNECT's authority-form target. */
  resolveConnect(head: HttpHead): boolean {
    this.reset();
    const target = head.target;
    const colon = target.lastIndexOf(':');
    if (colon < 0 || colon === target.length - 1) return this.invalid('CONNECT target must be host:port');
    return this.parseAuthority(target, 0, target.length);
  }

  private authorityFromHost(head: HttpHead): boolean {
    const i = head.firstOf[H_HOST] ?? -1;
    if (i < 0) return true; // HTTP/1.0 without Host: no authority
    const start = head.valueStarts[i] as number;
    const end = head.valueEnds[i] as number;
    if (start === end) return true; // "Host:" with an empty value is allowed when the URI has no authority
    return this.parseAuthority(head.text, start, end);
  }
}
