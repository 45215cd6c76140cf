/** What run.ts, the control-plane process and the simulated-proxy workers say to each other over IPC. */
export type ParentMessage = { readonly type: 'usage' } | { readonly type: 'stop' };

export type ChildMessage =
  | { readonly type: 'ready'; readonly port: number }
  | { readonly type: 'usage'; readonly userMicros: number; readonly systemMicros: number; readonly rssBytes: number };

/** run.ts → a simulated-proxy worker. */
export type ToWorker =
  /** Create the simulated proxies with these indexes and connect them (registration, stream, first ACK), `batch` at a time. */
  | { readonly type: 'connect'; readonly port: number; readonly from: number; readonly to: number; readonly batch: number }
  | { readonly type: 'problems' }
  | { readonly type: 'close' };

/** One answered ACK: [proxy index, version, when (performance.timeOrigin + performance.now(), ms)]. */
export type AckRecord = readonly [number, string, number];

/** A simulated-proxy worker → run.ts. */
export type FromWorker =
  | { readonly type: 'connected' }
  | { readonly type: 'acks'; readonly acks: readonly AckRecord[] }
  | { readonly type: 'problems'; readonly problems: readonly string[] }
  | { readonly type: 'failed'; readonly message: string };
