/** States of a downstream HTTP/1 connection, shared by serve.ts (the connection loop) and exchange.ts. */

/** Waiting for (the rest of) a request head. */
export const D_HEAD = 0;
/** Forwarding a request body. */
export const D_BODY = 1;
/** The request is complete and its response in progress: further bytes (pipelined requests) are held. */
export const D_WAIT = 2;
/** After a 101: raw bytes both ways. */
export const D_TUNNEL = 3;
/** Closing, closed, or handed over (CONNECT): nothing more is read as HTTP. */
export const D_CLOSED = 4;
