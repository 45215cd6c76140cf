import type { Writable } from 'node:stream';
import { TracemeshError, errorMessage } from '../lib/errors.js';
import type { ErrorCode } from '../lib/errors.js';
import type { FlagSpec, ParsedArgs } from './command.js';
import { durationFlag, urlFlag } from './flag-values.js';

/**
 * What the query-API commands (`traces`, `trace`, `services`, `graph`) share:
 * the `--api` / `--json` flags, a GET with a timeout that turns every failure
 * into one clear line, and plain-text tables.
 */

export const DEFAULT_API_URL = 'http://127.0.0.1:16686';
export const DEFAULT_TIMEOUT_MS = 10_000;
const MAX_SINCE_NANOS = 30n * 86_400_000_000_000n;

export const API_FLAGS: Readonly<Record<'api' | 'json', FlagSpec>> = {
  api: { type: 'string', valueName: 'URL', description: 'query API address', default: DEFAULT_API_URL },
  json: { type: 'boolean', description: 'print the API answer as JSON' },
};

export interface QueryApiClient {
  /** The API's base URL as people write it, without a trailing slash. */
  readonly base: string;
  /** GET `path` (with the query parameters that are set) and parse the JSON answer. */
  get<T>(path: string, query?: Readonly<Record<string, string | undefined>>): Promise<T>;
}

export function apiClientFromArgs(args: ParsedArgs, timeoutMs: number = DEFAULT_TIMEOUT_MS): QueryApiClient {
  return createApiClient(urlFlag(args, 'api', DEFAULT_API_URL), timeoutMs);
}

/** Why a connection failed, in words, from the error codes Node puts on fetch failures. */
export function connectionProblem(err: unknown, timeoutMs: number): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) {
    return `no answer within ${timeoutMs / 1000}s`;
  }
  let cause: unknown = err instanceof Error ? err.cause : undefined;
  if (cause instanceof AggregateError && cause.errors.length > 0) cause = cause.errors[0];
  const code = (cause as { code?: unknown } | undefined)?.code ?? (err as { code?: unknown }).code;
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host not found';
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
      return 'connection reset';
    case 'ETIMEDOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'connection timed out';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'host unreachable';
    default:
      return errorMessage(cause ?? err);
  }
}

function codeForStatus(status: number): ErrorCode {
  if (status === 404) return 'TM_ERR_API_NOT_FOUND';
  if (status >= 400 && status < 500) return 'TM_ERR_API_BAD_PARAM';
  if (status === 503) return 'TM_ERR_STORE_QUERY';
  return 'TM_ERR_API_UNREACHABLE';
}

export function createApiClient(url: URL, timeoutMs: number = DEFAULT_TIMEOUT_MS): QueryApiClient {
  const base = `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
  const unreachable = (problem: string, cause?: unknown): TracemeshError =>
    new TracemeshError('TM_ERR_API_UNREACHABLE', `cannot reach the query API at ${base}: ${problem}`, { cause });
  return {
    base,
    async get<T>(path: string, query?: Readonly<Record<string, string | undefined>>): Promise<T> {
      const search = new URLSearchParams();
      for (const [key, value] of Object.entries(query ?? {})) {
        if (value !== undefined) search.append(key, value);
      }
      const qs = search.toString();
      let response: Response;
      let text: string;
      try {
        response = await fetch(`${base}${path}${qs.length > 0 ? `?${qs}` : ''}`, {
          headers: { accept: 'application/json' },
          signal: AbortSignal.timeout(timeoutMs),
        });
        text = await response.text();
      } catch (err) {
        throw unreachable(connectionProblem(err, timeoutMs), err);
      }
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      if (!response.ok) {
        const message = (body as { error?: { message?: unknown } } | undefined)?.error?.message;
        throw new TracemeshError(
          codeForStatus(response.status),
          typeof message === 'string' && message.length > 0 ? message : `the query API at ${base} answered HTTP ${response.status}`,
        );
      }
      if (body === undefined) throw unreachable(`HTTP ${response.status} without a JSON body (is this the query API?)`);
      return body as T;
    },
  };
}

/** `--since`, checked like the API does (a duration up to 30d); its text is what goes to the API. */
export function sinceFlag(args: ParsedArgs, fallback: string): string {
  const { text, nanos } = durationFlag(args, 'since', fallback);
  if (nanos <= 0n || nanos > MAX_SINCE_NANOS) {
    throw new TracemeshError('TM_ERR_CLI_BAD_VALUE', `--since: '${text}' is out of range (more than 0, at most 30d)`);
  }
  return text;
}

export function writeJson(out: Writable, value: unknown): void {
  out.write(`${JSON.stringify(value, null, 2)}\n`);
}

export type Align = 'left' | 'right';

/** Columns padded to their widest cell, two spaces apart; no trailing spaces. */
export function formatTable(header: readonly string[], rows: ReadonlyArray<readonly string[]>, align: readonly Align[] = []): string {
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, i) => (align[i] === 'right' ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

/** Unix nanoseconds (decimal text) -> ISO 8601 to the millisecond; the text itself when it is not a time. */
export function isoFromNanos(nanos: string): string {
  if (!/^\d{1,20}$/.test(nanos)) return nanos;
  const date = new Date(Number(BigInt(nanos) / 1_000_000n));
  return Number.isNaN(date.getTime()) ? nanos : date.toISOString();
}
