import { errorMessage, isTracemeshError } from '../../src/lib/errors.js';
import type { ErrorCode } from '../../src/lib/errors.js';
import { BadParamError } from './params.js';

/**
 * The one mapping from an error to what the query API answers. Bad parameters
 * are 400 and name the parameter; unknown things 404; store failures 503
 * (the client may retry); anything else 500 without internals.
 */

/** What goes on the wire: the catalogue's codes, plus one for failures that are nobody's fault but ours. */
export type WireErrorCode = ErrorCode;

export interface ErrorBody {
  error: { code: WireErrorCode; parameter?: string; message: string };
}

export interface WireError {
  status: number;
  body: ErrorBody;
}

export function badParamBody(err: BadParamError): ErrorBody {
  return { error: { code: err.code, parameter: err.parameter, message: err.message } };
}

export function notFoundBody(message: string): ErrorBody {
  return { error: { code: 'TM_ERR_API_NOT_FOUND', message } };
}

export function toWireError(err: unknown): WireError {
  if (err instanceof BadParamError) return { status: 400, body: badParamBody(err) };
  if (isTracemeshError(err)) {
    switch (err.code) {
      case 'TM_ERR_API_NOT_FOUND':
        return { status: 404, body: notFoundBody(err.message) };
      case 'TM_ERR_STORE_QUERY':
      case 'TM_ERR_STORE_UNAVAILABLE':
        return { status: 503, body: { error: { code: 'TM_ERR_STORE_QUERY', message: err.message } } };
      default:
        break;
    }
  }
  // fastify's own errors (bad URL, unsupported media type, body too large...) carry a 4xx status.
  const status = (err as { statusCode?: unknown } | null)?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return { status, body: { error: { code: 'TM_ERR_API_BAD_PARAM', message: errorMessage(err) } } };
  }
  return { status: 500, body: { error: { code: 'TM_ERR_API_INTERNAL', message: 'internal error' } } };
}
