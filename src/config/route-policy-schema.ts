/**
 * The parts of a Route rule that shape how a matched request is handled once
 * its destination is chosen: header edits, mirroring, retries and fault
 * injection (Istio's headers, mirror, retries and fault), each with the
 * builder of its model. route-schema.ts puts them together.
 */
import * as z from 'zod';
import { headerMap, headerName, headerValue, httpStatus, uniqueHeaderNames } from './http-schema-parts.js';
import {
  AT_KEY,
  atLeastOneOf,
  dnsLabel,
  duration,
  exactlyOneOf,
  integer,
  listOf,
  nonEmptyListOf,
  oneOf,
  percent,
  portNumber,
  resolveServiceRef,
  serviceRef,
  strictFields,
  uniqueItems,
  whenList,
  whenMapping,
  whenValid,
} from './schema-parts.js';
import type { FaultSpec, HeaderEdit, HeaderEdits, HeaderValue, MirrorSpec, RetryCondition, RetryPolicy } from './types.js';

// Framing and connection headers belong to the proxy: editing them would break the message on the wire.
const PROXY_OWNED_HEADERS: ReadonlySet<string> = new Set([
  'connection',
  'content-length',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

function checkEditableNames(names: readonly string[], ctx: z.RefinementCtx, path: (name: string, index: number) => PropertyKey[], request: boolean): void {
  names.forEach((name, index) => {
    const lower = name.toLowerCase();
    if (PROXY_OWNED_HEADERS.has(lower)) {
      ctx.addIssue({ code: 'custom', path: path(name, index), message: `header ${name} is managed by the proxy and cannot be edited`, params: AT_KEY, input: name });
    } else if (request && lower === 'host') {
      ctx.addIssue({ code: 'custom', path: path(name, index), message: 'the host is changed with rewrite.host, not as a header', params: AT_KEY, input: name });
    }
  });
}

function headerValues(request: boolean) {
  return headerMap(headerValue(), 'a mapping of header names to values')
    .superRefine(uniqueHeaderNames, whenMapping)
    .superRefine((entries, ctx) => checkEditableNames(Object.keys(entries), ctx, (name) => [name], request), whenMapping);
}

function headerEditSchema(request: boolean) {
  return strictFields(
    {
      set: headerValues(request).optional(),
      add: headerValues(request).optional(),
      remove: listOf(headerName(), 'a list of header names')
        .superRefine((names, ctx) => checkEditableNames(names.filter((name) => typeof name === 'string'), ctx, (_name, index) => [index], request), whenList)
        .optional(),
    },
    'a mapping with any of set, add and remove',
  );
}

export const headerEditsSchema = strictFields(
  { request: headerEditSchema(true).optional(), response: headerEditSchema(false).optional() },
  'a mapping with request and/or response header edits',
);

type ParsedHeaderEdit = z.output<ReturnType<typeof headerEditSchema>>;

function toHeaderValues(entries: Readonly<Record<string, string>> | undefined): HeaderValue[] {
  return Object.entries(entries ?? {}).map(([name, value]) => ({ name: name.toLowerCase(), value }));
}

function buildHeaderEdit(parsed: ParsedHeaderEdit | undefined): HeaderEdit {
  return {
    set: toHeaderValues(parsed?.set),
    add: toHeaderValues(parsed?.add),
    remove: (parsed?.remove ?? []).map((name) => name.toLowerCase()),
  };
}

export function buildHeaderEdits(parsed: z.output<typeof headerEditsSchema> | undefined): HeaderEdits {
  return { request: buildHeaderEdit(parsed?.request), response: buildHeaderEdit(parsed?.response) };
}

export const mirrorSchema = strictFields(
  { service: serviceRef(), subset: dnsLabel().optional(), port: portNumber().optional(), percent: percent().default(100) },
  'a mirror: a mapping with service and optionally subset, port and percent',
);

export function buildMirror(parsed: z.output<typeof mirrorSchema>, namespace: string): MirrorSpec {
  return {
    service: resolveServiceRef(parsed.service, namespace),
    subset: parsed.subset ?? null,
    port: parsed.port ?? null,
    percent: parsed.percent,
  };
}

export const RETRY_CONDITIONS = ['5xx', 'gateway-error', 'reset', 'connect-failure', 'retriable-status-codes'] as const satisfies readonly RetryCondition[];

/** Retrying what a request never reached the application for, or what a gateway says is transient, is always safe. */
const DEFAULT_RETRY_ON: readonly RetryCondition[] = ['connect-failure', 'reset', 'gateway-error'];
// Envoy's defaults: 25ms base, the maximum ten times the base.
const DEFAULT_BACKOFF_BASE_MS = 25;
const BACKOFF_MAX_FACTOR = 10;
// Envoy's retry budget defaults.
const DEFAULT_BUDGET_PERCENT = 20;
const DEFAULT_MIN_RETRIES_PER_SECOND = 3;

const backoffSchema = strictFields(
  { base: duration('1ms', '1m').optional(), max: duration('1ms', '10m').optional() },
  'a mapping with base and optionally max',
).superRefine((value, ctx) => {
  if (value.base !== undefined && value.max !== undefined && value.max < value.base) {
    ctx.addIssue({ code: 'custom', path: ['max'], message: 'expected a duration at least as long as base', input: value.max });
  }
}, whenValid(['base'], ['max']));

const budgetSchema = strictFields(
  { percent: percent().optional(), minRetriesPerSecond: integer(0, 1_000_000).optional() },
  'a mapping with percent and optionally minRetriesPerSecond',
);

const MAX_RETRY_ATTEMPTS = 10;

export const retriesSchema = strictFields(
  {
    attempts: integer(0, MAX_RETRY_ATTEMPTS, `an integer 0..${MAX_RETRY_ATTEMPTS} (retries after the first try)`),
    perTryTimeout: duration('1ms', '24h').optional(),
    retryOn: nonEmptyListOf(oneOf(RETRY_CONDITIONS), `a non-empty list of ${RETRY_CONDITIONS.join(', ')}`)
      .superRefine(
        uniqueItems('retryOn', (item) => (typeof item === 'string' ? item : undefined), (condition) => condition),
        whenList,
      )
      .optional(),
    retriableStatusCodes: nonEmptyListOf(httpStatus(100, 599), 'a non-empty list of HTTP status codes')
      .superRefine(
        uniqueItems('retriableStatusCodes', (item) => (typeof item === 'number' ? String(item) : undefined), (code) => `status ${code}`),
        whenList,
      )
      .optional(),
    backoff: backoffSchema.optional(),
    budget: budgetSchema.optional(),
  },
  'a mapping with attempts and optionally perTryTimeout, retryOn, retriableStatusCodes, backoff and budget',
).superRefine((value, ctx) => {
  const retryOn: unknown = value.retryOn;
  const listsCodes = Array.isArray(retryOn) && retryOn.includes('retriable-status-codes');
  if (value.retriableStatusCodes !== undefined && Array.isArray(retryOn) && !listsCodes) {
    ctx.addIssue({
      code: 'custom',
      path: ['retriableStatusCodes'],
      message: 'are retried only when retryOn includes retriable-status-codes',
      params: AT_KEY,
      input: value.retriableStatusCodes,
    });
  }
  if (listsCodes && value.retriableStatusCodes === undefined) {
    ctx.addIssue({ code: 'custom', path: ['retriableStatusCodes'], message: 'missing; retryOn includes retriable-status-codes, so list the codes', input: undefined });
  }
}, whenMapping);

export function buildRetries(parsed: z.output<typeof retriesSchema>): RetryPolicy {
  const codes = parsed.retriableStatusCodes ?? [];
  // Listing codes without retryOn means retrying them (on top of the defaults).
  const retryOn = parsed.retryOn ?? (codes.length > 0 ? [...DEFAULT_RETRY_ON, 'retriable-status-codes'] : DEFAULT_RETRY_ON);
  const baseMs = parsed.backoff?.base ?? DEFAULT_BACKOFF_BASE_MS;
  return {
    attempts: parsed.attempts,
    perTryTimeoutMs: parsed.perTryTimeout ?? null,
    retryOn: [...retryOn],
    retriableStatusCodes: [...codes],
    backoff: { baseMs, maxMs: parsed.backoff?.max ?? Math.max(baseMs, baseMs * BACKOFF_MAX_FACTOR) },
    budget: {
      percent: parsed.budget?.percent ?? DEFAULT_BUDGET_PERCENT,
      minRetriesPerSecond: parsed.budget?.minRetriesPerSecond ?? DEFAULT_MIN_RETRIES_PER_SECOND,
    },
  };
}

/** gRPC status names (grpc/status.h) → codes; OK is left out: an abort with OK is not an abort. */
export const GRPC_STATUS_CODES: ReadonlyMap<string, number> = new Map([
  ['CANCELLED', 1],
  ['UNKNOWN', 2],
  ['INVALID_ARGUMENT', 3],
  ['DEADLINE_EXCEEDED', 4],
  ['NOT_FOUND', 5],
  ['ALREADY_EXISTS', 6],
  ['PERMISSION_DENIED', 7],
  ['RESOURCE_EXHAUSTED', 8],
  ['FAILED_PRECONDITION', 9],
  ['ABORTED', 10],
  ['OUT_OF_RANGE', 11],
  ['UNIMPLEMENTED', 12],
  ['INTERNAL', 13],
  ['UNAVAILABLE', 14],
  ['DATA_LOSS', 15],
  ['UNAUTHENTICATED', 16],
]);

const GRPC_STATUS_NAMES = [...GRPC_STATUS_CODES.keys()] as [string, ...string[]];

const delaySchema = strictFields({ fixed: duration('1ms', '1h'), percent: percent().default(100) }, 'a mapping with fixed and optionally percent');

const abortSchema = strictFields(
  { status: httpStatus(400, 599).optional(), grpcStatus: oneOf(GRPC_STATUS_NAMES).optional(), percent: percent().default(100) },
  'a mapping with status or grpcStatus, and optionally percent',
).superRefine(exactlyOneOf(['status', 'grpcStatus']), whenMapping);

export const faultSchema = strictFields({ delay: delaySchema.optional(), abort: abortSchema.optional() }, 'a mapping with delay and/or abort').superRefine(
  atLeastOneOf(['delay', 'abort']),
  whenMapping,
);

export function buildFault(parsed: z.output<typeof faultSchema>): FaultSpec {
  const delay = parsed.delay === undefined ? null : { fixedMs: parsed.delay.fixed, percent: parsed.delay.percent };
  const abort = parsed.abort;
  if (abort === undefined) return { delay, abort: null };
  if (abort.status !== undefined) return { delay, abort: { kind: 'http', status: abort.status, percent: abort.percent } };
  return { delay, abort: { kind: 'grpc', status: GRPC_STATUS_CODES.get(abort.grpcStatus as string) as number, percent: abort.percent } };
}
