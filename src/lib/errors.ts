/**
 * One error catalogue for the whole project. Code branches on `code`
 * (`TM_ERR_<AREA>_<REASON>`), never on message text.
 */
export type ErrorCode =
  | 'TM_ERR_CLI_UNKNOWN_FLAG'
  | 'TM_ERR_CLI_BAD_VALUE'
  | 'TM_ERR_CLI_USAGE'
  | 'TM_ERR_OTLP_MALFORMED'
  | 'TM_ERR_OTLP_TOO_LARGE'
  | 'TM_ERR_OTLP_UNSUPPORTED_MEDIA'
  | 'TM_ERR_OTLP_BAD_ENCODING'
  | 'TM_ERR_STORE_UNAVAILABLE'
  | 'TM_ERR_STORE_QUERY'
  | 'TM_ERR_STORE_MIGRATION'
  | 'TM_ERR_QUEUE_FULL'
  | 'TM_ERR_API_BAD_PARAM'
  | 'TM_ERR_API_NOT_FOUND'
  | 'TM_ERR_API_UNREACHABLE'
  | 'TM_ERR_API_INTERNAL'
  | 'TM_ERR_CONFIG_READ'
  | 'TM_ERR_CONFIG_INVALID'
  | 'TM_ERR_PROXY_LISTEN'
  | 'TM_ERR_PROXY_MODE_UNAVAILABLE'
  | 'TM_ERR_PROXY_STATE_DIR'
  | 'TM_ERR_CP_REGISTRY_FULL'
  | 'TM_ERR_CP_PROTOCOL'
  | 'TM_ERR_CP_UNREACHABLE'
  /** The control plane cannot listen on its port (in use, not permitted). */
  | 'TM_ERR_CP_LISTEN'
  /** The control plane refused a change: the set it would make is invalid (every problem is listed). */
  | 'TM_ERR_CP_REJECTED'
  /** The control plane holds no such document. */
  | 'TM_ERR_CP_NOT_FOUND'
  /** The control plane answered something that is not its API (wrong URL, a proxy in between). */
  | 'TM_ERR_CP_BAD_ANSWER'
  // The config store's codes (src/control-plane/store/store-errors.ts says what each means).
  | 'TM_ERR_CP_STORE_CONFLICT'
  | 'TM_ERR_CP_STORE_TOO_LARGE'
  | 'TM_ERR_CP_STORE_BAD_DOCUMENT'
  | 'TM_ERR_CP_STORE_CORRUPT'
  | 'TM_ERR_CP_STORE_UNAVAILABLE'
  | 'TM_ERR_CP_STORE_BAD_ARGUMENT'
  | 'TM_ERR_CP_STORE_LISTENER_FAILED'
  | 'TM_ERR_CP_STORE_CLOSED'
  | 'TM_ERR_CAPTURE_SOCKOPT'
  | 'TM_ERR_CAPTURE_TOOL_MISSING'
  | 'TM_ERR_CAPTURE_RULE_FAILED'
  | 'TM_ERR_NETNS_NOT_ROOT'
  | 'TM_ERR_NETNS_TOOL_MISSING'
  | 'TM_ERR_NETNS_BAD_SPEC'
  | 'TM_ERR_NETNS_COMMAND'
  | 'TM_ERR_NETNS_EXISTS'
  | 'TM_ERR_NETNS_ACCESS'
  | 'TM_ERR_NETNS_PROCESS'
  | 'TM_ERR_NETNS_TEARDOWN'
  | 'TM_ERR_HTTP_MALFORMED'
  | 'TM_ERR_HTTP_TOO_LARGE'
  | 'TM_ERR_UPSTREAM'
  /** A part of the demo did not start or did not become ready in time. */
  | 'TM_ERR_DEMO_NOT_READY'
  /** A process the demo started exited while the demo ran. */
  | 'TM_ERR_DEMO_CHILD_EXITED'
  | 'TM_ERR_TELEMETRY_EXPORT';

export class TracemeshError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TracemeshError';
    this.code = code;
  }
}

export function isTracemeshError(err: unknown, code?: ErrorCode): err is TracemeshError {
  return err instanceof TracemeshError && (code === undefined || err.code === code);
}

/** A message for any thrown value, for logs and one-line CLI errors. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
