/**
 * The other control-plane replicas, for answers only the whole group can
 * give: which proxies are connected and what each ACKed (each replica knows
 * the streams it holds, `tracemesh proxies` asks one of them). Alone (the
 * directory store) there are none.
 */
export interface ReplicaInfo {
  readonly id: string;
  /** Where the other replicas reach its API: http://HOST:PORT */
  readonly url: string;
}

export interface ReplicaSet {
  /** This replica's id. */
  readonly id: string;
  /** Makes this replica known to the others at `url` (until close()). */
  announce(url: string): Promise<void>;
  /** The other replicas known now. */
  peers(): Promise<ReplicaInfo[]>;
  /** Stops announcing (the others forget this replica at once). Safe twice. */
  close(): Promise<void>;
}

/** One control plane on its own. */
export class SoloReplica implements ReplicaSet {
  constructor(readonly id: string) {}

  announce(): Promise<void> {
    return Promise.resolve();
  }

  peers(): Promise<ReplicaInfo[]> {
    return Promise.resolve([]);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
