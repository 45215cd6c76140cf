/**
 * What the control-plane commands (`apply`, `get`, `delete`, `proxies`)
 * share: the `--control-plane` flag and a JSON call with a deadline that
 * turns every connection failure into one clear line. HTTP answers are
 * returned, not thrown: a 400 (the problems of a refused change) and a 404
 * mean different things to each command.
 */
import type { ConfigIssue } from '../config/issues.js';
import { TracemeshError } from '../lib/errors.js';
import type { FlagSpec, ParsedArgs } from './command.js';
import { urlFlag } from './flag-values.js';
import { connectionProblem } from './api-client.js';

export const DEFAULT_CONTROL_PLANE_URL = 'http://127.0.0.1:15010';
export const CONTROL_PLANE_TIMEOUT_MS = 30_000;

export const CONTROL_PLANE_FLAG: FlagSpec = {
  type: 'string',
  valueName: 'URL',
  description: 'the control plane\'s address',
  default: DEFAULT_CONTROL_PLANE_URL,
};

export interface ControlPlaneAnswer {
  readonly status: number;
  /** The parsed JSON body; undefined for an empty answer (204). */
  readonly body: unknown;
}

export interface ControlPlaneClient {
  /** The control plane's base URL as people write it, without a trailing slash. */
  readonly base: string;
  call(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<ControlPlaneAnswer>;
}

export function controlPlaneClientFromArgs(args: ParsedArgs, timeoutMs: number = CONTROL_PLANE_TIMEOUT_MS): ControlPlaneClient {
  return createControlPlaneClient(urlFlag(args, 'control-plane', DEFAULT_CONTROL_PLANE_URL), timeoutMs);
}


export function createControlPlaneClient(url: URL, timeoutMs: number = CONTROL_PLANE_TIMEOUT_MS): ControlPlaneClient {
  const base = `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
  return {
    base,
    async call(method, path, body) {
      let response: Response;
      let text: string;
      try {
        response = await fetch(`${base}${path}`, {
          method,
          headers: body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          signal: AbortSignal.timeout(timeoutMs),
        });
        text = await response.text();
      } catch (err) {
        throw new TracemeshError('TM_ERR_CP_UNREACHABLE', `cannot reach the control plane at ${base}: ${connectionProblem(err, timeoutMs)}${refusedHint(err)}`, { cause: err });
      }
      if (text.length === 0) return { status: response.status, body: undefined };
      try {
        return { status: response.status, body: JSON.parse(text) as unknown };
      } catch {
        throw new TracemeshError('TM_ERR_CP_BAD_ANSWER', `${method} ${base}${path} answered HTTP ${response.status} without a JSON body (is this the control plane?)`);
      }
    },
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The `message` of an error answer, or a sentence naming the status. */
export function answerMessage(answer: ControlPlaneAnswer, base: string): string {
  const message = isRecord(answer.body) ? answer.body['message'] : undefined;
  return typeof message === 'string' && message.length > 0 ? message : `the control plane at ${base} answered HTTP ${answer.status}`;
}

/** The structured problems of a 400 answer (a refused change); [] when it has none. */
export function answerIssues(answer: ControlPlaneAnswer): ConfigIssue[] {
  const issues = isRecord(answer.body) ? answer.body['issues'] : undefined;
  if (!Array.isArray(issues)) return [];
  return issues.filter((i): i is ConfigIssue => isRecord(i) && typeof i['file'] === 'string' && typeof i['message'] === 'string');
}

/** The body of a 2xx answer as a JSON object; anything else is an error naming what happened. */
export function expectObject(answer: ControlPlaneAnswer, base: string): Record<string, unknown> {
  if (answer.status < 200 || answer.status > 299) {
    const code = answer.status === 404 ? 'TM_ERR_CP_NOT_FOUND' : answer.status >= 400 && answer.status < 500 ? 'TM_ERR_CP_REJECTED' : 'TM_ERR_CP_BAD_ANSWER';
    throw new TracemeshError(code, answerMessage(answer, base));
  }
  if (!isRecord(answer.body)) throw new TracemeshError('TM_ERR_CP_BAD_ANSWER', `the control plane at ${base} answered HTTP ${answer.status} without a JSON object`);
  return answer.body;
}

/** A refused connection to the control plane usually means it is not running. */
function refusedHint(err: unknown): string {
  const cause = err instanceof Error ? err.cause : undefined;
  const first = cause instanceof AggregateError && cause.errors.length > 0 ? cause.errors[0] : cause;
  return (first as { code?: unknown } | undefined)?.code === 'ECONNREFUSED' ? ' (is `tracemesh control-plane` running?)' : '';
}
