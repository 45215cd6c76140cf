import { TracemeshError } from '../lib/errors.js';
import type { ErrorCode } from '../lib/errors.js';

/** The codes of the network-namespace topology (listed in src/lib/errors.ts's catalogue). */
export type NetnsErrorCode = Extract<ErrorCode, `TM_ERR_NETNS_${string}`>;

export class NetnsError extends TracemeshError {
  constructor(code: NetnsErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

export function isNetnsError(err: unknown, code?: NetnsErrorCode): err is NetnsError {
  return err instanceof NetnsError && (code === undefined || err.code === code);
}
