import { TracemeshError } from '../../src/lib/errors.js';

/**
 * A TM_ERR_OTLP_MALFORMED error that learns its field path on the way up.
 *
 * Decoders throw it where the problem is found, knowing only the local detail
 * ("wire type 0 (varint), expected 2 (length-delimited), at byte 57"); each
 * enclosing message decoder catches it and puts its own segment in front
 * (`trace_id`, `spans[3]`, `scope_spans[1]`, ...). The path strings are thus
 * only built when something is wrong, never on the happy path.
 */
export class OtlpMalformedError extends TracemeshError {
  /** What is wrong, without the path. */
  readonly detail: string;
  /** Dotted field path from the request root, e.g. `resource_spans[0].scope_spans[1].spans[3].trace_id`; '' when the problem is at the root. */
  path: string;

  constructor(detail: string, path = '') {
    super('TM_ERR_OTLP_MALFORMED', path === '' ? detail : `${path}: ${detail}`);
    this.name = 'OtlpMalformedError';
    this.detail = detail;
    this.path = path;
  }

  /** Puts `segment` in front of the path (an empty segment changes nothing). */
  within(segment: string): this {
    if (segment === '') return this;
    this.path = this.path === '' ? segment : `${segment}.${this.path}`;
    this.message = `${this.path}: ${this.detail}`;
    return this;
  }
}

/**
 * Rethrows `err` with `segment` added to its path. Anything that is not an
 * OtlpMalformedError is a bug in the decoder and goes up untouched.
 */
export function rethrowWithin(err: unknown, segment: string): never {
  if (err instanceof OtlpMalformedError) throw err.within(segment);
  throw err;
}

/** The item-level catch: true for the errors that reject one span or data point. */
export function isMalformed(err: unknown): err is OtlpMalformedError {
  return err instanceof OtlpMalformedError;
}
