/** Phases of an Exchange's response side, and what its wait is for; shared by exchange.ts and exchange-*.ts. */

/** Waiting for the (final) response head. */
export const R_HEAD = 0;
/** Forwarding the response body. */
export const R_BODY = 1;
/** Response complete (or answered by the proxy). */
export const R_DONE = 2;
/** 101 received: raw bytes both ways. */
export const R_TUNNEL = 3;
/** No upstream yet: a fault delay, a retry's backoff, or a connection (pool limits). */
export const R_WAIT = 4;

// What R_WAIT waits for.
export const W_NONE = 0;
export const W_DELAY = 1;
export const W_BACKOFF = 2;
export const W_CONNECTION = 3;
