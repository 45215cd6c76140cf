/** One call between two services, as the service graph counts it. */
export interface EdgeCall {
  /** Start of the call (client span start, or server span start when there is no client span). */
  timeUnixNano: bigint;
  client: string;
  server: string;
  /** '' for a paired call; 'user' for an entry call; 'virtual' for a peer that sends no spans. */
  connectionType: '' | 'user' | 'virtual';
  clientDurationNanos: number;
  serverDurationNanos: number;
  failed: boolean;
}
