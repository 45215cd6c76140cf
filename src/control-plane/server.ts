/**
 * `tracemesh control-plane`: the REST API, the registry and the
 * distribution stream on one port (15010), in front of a config store (a
 * directory, or etcd shared by several replicas). Every stored change, from
 * this replica or another, arrives through the store's watch and becomes a
 * new snapshot for every proxy; so do registrations, coalesced.
 */
import type { ServerResponse } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { formatConfigIssues } from '../config/issues.js';
import { SUPPORTED_KINDS } from '../config/kinds.js';
import { BACKOFF_MAX_MS } from '../lib/backoff.js';
import { TracemeshError, errorMessage, isTracemeshError, type ErrorCode } from '../lib/errors.js';
import { checkApply, checkDelete, type SourceText } from './config-set.js';
import { Distributor, type StreamSink } from './distributor.js';
import type { ProxyRegistration } from './endpoint-registry.js';
import { mergeRows, peerRows, type ProxyStatusRow } from './group-status.js';
import { DISCOVERY_ACK_PATH, DISCOVERY_STREAM_PATH, REGISTRY_PATH, parseAckRequest } from './protocol.js';
import { parseRegistration, parseSources } from './requests.js';
import type { ReplicaSet } from './replica-set.js';
import { createReplication } from './replication.js';
import { buildSnapshot } from './snapshot.js';
import type { ConfigStore, StoreWatch } from './store/types.js';
import type { WorkloadRegistry } from './workload-registry.js';

export interface ControlPlaneOptions {
  readonly store: ConfigStore;
  readonly host: string;
  readonly port: number;
  readonly registryTtlMs: number;
  readonly pingIntervalMs: number;
  /** Registrations arriving together become one snapshot after this quiet time. */
  readonly coalesceMs: number;
  /**
   * After a start that finds no registered workload, snapshots go only to
   * proxies that serve nothing for this long (Distributor.hold): long enough
   * for every running proxy to find the control plane again and register its
   * workload, so a restart never pushes a snapshot that lacks their
   * endpoints. With the directory store that is every start: its registry
   * is in memory. With etcd, registrations outlive a replica (their leases
   * are the proxies'), so a restarted replica finds them and holds nothing;
   * only a start after the whole group was away past the registry TTL (or
   * the first start, when nobody can lose anything) finds none.
   * 0: no wait (a first start in tests).
   */
  readonly startupGraceMs: number;
  /** Where the other replicas reach this one's API; default http://HOST:PORT as listened on (loopback for an unspecified host). */
  readonly advertiseUrl?: string;
  readonly maxProxies: number;
  readonly log: (message: string) => void;
}

/**
 * The grace: a proxy that lost the control plane retries at most every
 * BACKOFF_MAX_MS (5 s) and registers before it opens its stream; the rest
 * covers one slow registration.
 */
export const DEFAULT_CONTROL_PLANE_TIMING = { registryTtlMs: 30_000, pingIntervalMs: 15_000, coalesceMs: 50, startupGraceMs: BACKOFF_MAX_MS + 3_000 } as const;

const BODY_LIMIT_BYTES = 16 * 1024 * 1024;
/** `tracemesh proxies` shows a proxy this long after its stream closed. */
const FORGET_DISCONNECTED_MS = 15 * 60_000;

/** Errors of the API and the store as HTTP statuses; anything else is a 500 (and logged). */
const STATUS_OF_CODE: ReadonlyMap<ErrorCode, number> = new Map<ErrorCode, number>([
  ['TM_ERR_CP_PROTOCOL', 400],
  ['TM_ERR_CP_STORE_BAD_DOCUMENT', 400],
  ['TM_ERR_CP_STORE_BAD_ARGUMENT', 400],
  ['TM_ERR_CP_STORE_CONFLICT', 409],
  ['TM_ERR_CP_STORE_TOO_LARGE', 413],
  ['TM_ERR_CP_REGISTRY_FULL', 503],
  ['TM_ERR_CP_STORE_UNAVAILABLE', 503],
  ['TM_ERR_CP_STORE_CORRUPT', 503],
  ['TM_ERR_CP_STORE_CLOSED', 503],
]);

const KIND_BY_LOWER: ReadonlyMap<string, string> = new Map(SUPPORTED_KINDS.map((k) => [k.toLowerCase(), k]));

/** `:kind/:namespace/:name`, the kind in any case (`route` is Route). */
function documentParams(params: unknown): { kind: string; namespace: string; name: string } {
  const { kind, namespace, name } = params as { kind: string; namespace: string; name: string };
  return { kind: KIND_BY_LOWER.get(kind.toLowerCase()) ?? kind, namespace, name };
}
/** Conflicting writes from other replicas are retried this often before the client is told. */
const APPLY_ATTEMPTS = 5;

export class ControlPlane {
  readonly registry: WorkloadRegistry;
  readonly replicas: ReplicaSet;
  readonly distributor: Distributor;
  private readonly app: FastifyInstance;
  private watch: StoreWatch | undefined;
  private coalesce: NodeJS.Timeout | undefined;
  private grace: NodeJS.Timeout | undefined;
  private republishing: Promise<void> = Promise.resolve();
  private stopping: Promise<void> | undefined;

  constructor(private readonly options: ControlPlaneOptions) {
    const replication = createReplication(options.store, { registryTtlMs: options.registryTtlMs, maxProxies: options.maxProxies, log: options.log });
    this.registry = replication.registry;
    this.replicas = replication.replicas;
    this.distributor = new Distributor({ pingIntervalMs: options.pingIntervalMs, maxProxies: options.maxProxies, forgetDisconnectedMs: FORGET_DISCONNECTED_MS, now: Date.now });
    this.app = Fastify({ bodyLimit: BODY_LIMIT_BYTES, requestTimeout: 30_000, keepAliveTimeout: 5_000, logger: false, forceCloseConnections: true });
    this.routes();
  }

  get port(): number {
    const address = this.app.server.address();
    return typeof address === 'object' && address !== null ? address.port : this.options.port;
  }

  async start(): Promise<void> {
    await this.options.store.start();
    await this.registry.start();
    const snapshot = await this.options.store.list();
    if (this.options.startupGraceMs > 0 && this.registry.list().length === 0) {
      this.distributor.hold();
      this.grace = setTimeout(() => this.distributor.release(), this.options.startupGraceMs);
      this.grace.unref();
    }
    this.distributor.publish(buildSnapshot(snapshot, this.registry));
    this.watch = await this.options.store.watch(() => this.republish(), {
      fromRevision: snapshot.revision,
      onProblem: (err) => this.options.log(`config store ${this.options.store.location}: ${err.message}`),
    });
    this.registry.onChange(() => this.republishSoon());
    try {
      await this.app.listen({ host: this.options.host, port: this.options.port });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'EADDRINUSE' ? 'the address is in use (another control plane?)' : code === 'EACCES' ? 'permission denied' : code === 'EADDRNOTAVAIL' ? 'no interface has that address' : errorMessage(err);
      throw new TracemeshError('TM_ERR_CP_LISTEN', `cannot listen on ${this.options.host}:${this.options.port}: ${why}`, { cause: err });
    }
    await this.replicas.announce(this.options.advertiseUrl ?? this.defaultUrl());
  }

  /** The API as the other replicas should call it, when not told (--advertise). */
  private defaultUrl(): string {
    const host = this.options.host === '0.0.0.0' || this.options.host === '::' || this.options.host === '' ? '127.0.0.1' : this.options.host;
    return `http://${host.includes(':') ? `[${host}]` : host}:${this.port}`;
  }

  /** Stops accepting, closes every stream and the store. Safe twice and before start. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.coalesce !== undefined) clearTimeout(this.coalesce);
      if (this.grace !== undefined) clearTimeout(this.grace);
      this.watch?.stop();
      this.distributor.close();
      await this.app.close();
      await this.republishing;
      await this.replicas.close();
      await this.registry.close();
      await this.options.store.close();
    })();
    return this.stopping;
  }

  private republishSoon(): void {
    if (this.coalesce !== undefined) return;
    this.coalesce = setTimeout(() => {
      this.coalesce = undefined;
      this.republish();
    }, this.options.coalesceMs);
    this.coalesce.unref();
  }

  /** Rebuilds the snapshot from the store; chained so snapshots go out in order. */
  private republish(): void {
    this.republishing = this.republishing
      .then(async () => {
        if (this.stopping !== undefined) return;
        this.distributor.publish(buildSnapshot(await this.options.store.list(), this.registry));
      })
      .catch((err: unknown) => this.options.log(`building a snapshot failed: ${errorMessage(err)}`));
  }

  private routes(): void {
    const app = this.app;
    const store = this.options.store;

    app.get('/ready', async () => ({ ready: true, version: this.distributor.currentVersion }));

    app.post('/api/v1/config', async (request, reply) => {
      const sources: SourceText[] = parseSources(request.body);
      for (let attempt = 1; ; attempt++) {
        const stored = await store.list();
        const check = checkApply(stored, sources);
        if (!check.ok) return reply.code(400).send({ message: formatConfigIssues(check.issues), issues: check.issues });
        try {
          const result = await store.applySet({ put: check.put }, stored.revision);
          // Published now rather than when the store's watch reports the write back (an fs.watch or etcd round trip);
          // the watch's republish then finds the same version and sends nothing.
          this.republish();
          return { ...result, message: `${check.put.length} document(s) applied` };
        } catch (err) {
          if (!isTracemeshError(err, 'TM_ERR_CP_STORE_CONFLICT') || attempt >= APPLY_ATTEMPTS) throw err;
        }
      }
    });

    app.get('/api/v1/config', async (request) => {
      const query = request.query as Record<string, string | undefined>;
      const kind = query['kind'];
      const stored = await store.list();
      const documents = stored.documents.map((d) => d.document).filter((d) => kind === undefined || d.kind.toLowerCase() === kind.toLowerCase());
      return { revision: stored.revision, version: this.distributor.currentVersion, documents };
    });

    app.get('/api/v1/config/:kind/:namespace/:name', async (request, reply) => {
      const { kind, namespace, name } = documentParams(request.params);
      const found = await store.get(kind, namespace, name);
      if (found === undefined) return reply.code(404).send({ message: `no ${kind} ${namespace}/${name}` });
      return { revision: found.revision, document: found.document };
    });

    app.delete('/api/v1/config/:kind/:namespace/:name', async (request, reply) => {
      const { kind, namespace, name } = documentParams(request.params);
      for (let attempt = 1; ; attempt++) {
        const stored = await store.list();
        if (!stored.documents.some((d) => d.document.kind === kind && d.document.metadata.namespace === namespace && d.document.metadata.name === name)) {
          return reply.code(404).send({ message: `no ${kind} ${namespace}/${name}` });
        }
        const check = checkDelete(stored, { kind, namespace, name });
        if (!check.ok) return reply.code(400).send({ message: `deleting ${kind} ${namespace}/${name} would leave an invalid configuration:\n${formatConfigIssues(check.issues)}`, issues: check.issues });
        try {
          const result = await store.delete(kind, namespace, name, stored.revision);
          this.republish();
          return result;
        } catch (err) {
          if (!isTracemeshError(err, 'TM_ERR_CP_STORE_CONFLICT') || attempt >= APPLY_ATTEMPTS) throw err;
        }
      }
    });

    // Every replica's proxies; ?scope=local: only those whose streams this replica holds (what peers ask each other).
    app.get('/api/v1/proxies', async (request) => {
      const local = (request.query as Record<string, string | undefined>)['scope'] === 'local';
      const registered = new Map(this.registry.list().map((p) => [p.id, p]));
      const self = this.options.advertiseUrl ?? this.defaultUrl();
      const own: ProxyStatusRow[] = this.distributor.status().map((s) => ({ ...s, registration: registered.get(s.proxy) ?? null, replica: self }));
      const answer = { version: this.distributor.currentVersion, held: this.distributor.held };
      if (local) return { ...answer, proxies: own };
      const peers = await peerRows(await this.replicas.peers());
      return { ...answer, proxies: mergeRows([...own, ...peers.rows]), unreachable: peers.unreachable };
    });

    app.post(REGISTRY_PATH, async (request, reply) => {
      const registration: ProxyRegistration = parseRegistration(request.body);
      await this.registry.register(registration);
      return reply.code(200).send({ id: registration.id, ttlMs: this.options.registryTtlMs });
    });

    app.put(`${REGISTRY_PATH}/:id/heartbeat`, async (request, reply) => {
      const { id } = request.params as { id: string };
      return (await this.registry.heartbeat(id)) ? reply.code(204).send() : reply.code(404).send({ message: `no proxy ${id} is registered; register again` });
    });

    app.delete(`${REGISTRY_PATH}/:id`, async (request, reply) => {
      const { id } = request.params as { id: string };
      return (await this.registry.deregister(id)) ? reply.code(204).send() : reply.code(404).send({ message: `no proxy ${id} is registered` });
    });

    app.post(DISCOVERY_ACK_PATH, async (request, reply) => {
      const accepted = this.distributor.ack(parseAckRequest(request.body));
      // A stale ACK (an older snapshot, a proxy that reconnected since) is not an error for the proxy.
      return reply.code(accepted ? 204 : 409).send();
    });

    app.get(DISCOVERY_STREAM_PATH, (request, reply) => {
      const query = request.query as Record<string, string | undefined>;
      const proxy = query['proxy'];
      const serving = query['serving'] ?? '';
      if (proxy === undefined || proxy.length === 0 || proxy.length > 256 || serving.length > 256) {
        void reply.code(400).send({ message: 'the stream needs ?proxy=ID (1 to 256 characters) and optionally &serving=VERSION (at most 256)' });
        return;
      }
      this.openStream(proxy, serving, reply);
    });

    app.setErrorHandler((err: unknown, _request, reply) => {
      const statusCode = (err as { statusCode?: unknown }).statusCode;
      const mapped = isTracemeshError(err) ? STATUS_OF_CODE.get(err.code) : undefined;
      const status = mapped ?? (typeof statusCode === 'number' ? statusCode : 500);
      if (status >= 500 && status !== 503) this.options.log(`control plane API: ${errorMessage(err)}`);
      void reply.code(status).send({ message: errorMessage(err) });
    });
  }

  private openStream(proxy: string, serving: string, reply: FastifyReply): void {
    reply.hijack();
    const res: ServerResponse = reply.raw;
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    // Now, not with the first line: a proxy held back after a restart (Distributor.hold) gets no line
    // for a while, and must still see its stream answered rather than time out and reconnect.
    res.flushHeaders();
    res.socket?.setNoDelay(true);
    // The stream lives as long as the proxy does: no request timeout applies to it.
    res.socket?.setTimeout(0);
    const sink: StreamSink = {
      write: (line) => res.write(line),
      onDrain: (callback) => res.on('drain', callback),
      close: () => res.end(),
    };
    const detach = this.distributor.attach(proxy, sink, serving);
    res.on('close', detach);
  }
}
