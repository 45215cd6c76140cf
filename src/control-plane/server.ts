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
import { EndpointRegistry, type ProxyRegistration } from './endpoint-registry.js';
import { DISCOVERY_ACK_PATH, DISCOVERY_STREAM_PATH, REGISTRY_PATH, parseAckRequest } from './protocol.js';
import { parseRegistration, parseSources } from './requests.js';
import { buildSnapshot } from './snapshot.js';
import type { ConfigStore, StoreWatch } from './store/types.js';

export interface ControlPlaneOptions {
  readonly store: ConfigStore;
  readonly host: string;
  readonly port: number;
  readonly registryTtlMs: number;
  readonly pingIntervalMs: number;
  /** Registrations arriving together become one snapshot after this quiet time. */
  readonly coalesceMs: number;
  /**
   * After start, snapshots go only to proxies that serve nothing for this
   * long (Distributor.hold): long enough for every running proxy to find the
   * control plane again and register its workload, so a restart never pushes
   * a snapshot that lacks their endpoints. 0: no wait (a first start in tests).
   */
  readonly startupGraceMs: number;
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
  readonly registry: EndpointRegistry;
  readonly distributor: Distributor;
  private readonly app: FastifyInstance;
  private watch: StoreWatch | undefined;
  private expiry: NodeJS.Timeout | undefined;
  private coalesce: NodeJS.Timeout | undefined;
  private grace: NodeJS.Timeout | undefined;
  private republishing: Promise<void> = Promise.resolve();
  private stopping: Promise<void> | undefined;

  constructor(private readonly options: ControlPlaneOptions) {
    this.registry = new EndpointRegistry({ ttlMs: options.registryTtlMs, maxProxies: options.maxProxies, now: Date.now });
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
    const snapshot = await this.options.store.list();
    if (this.options.startupGraceMs > 0) {
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
    this.expiry = setInterval(() => this.registry.expire(), Math.max(100, Math.floor(this.options.registryTtlMs / 3)));
    this.expiry.unref();
    try {
      await this.app.listen({ host: this.options.host, port: this.options.port });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'EADDRINUSE' ? 'the address is in use (another control plane?)' : code === 'EACCES' ? 'permission denied' : code === 'EADDRNOTAVAIL' ? 'no interface has that address' : errorMessage(err);
      throw new TracemeshError('TM_ERR_CP_LISTEN', `cannot listen on ${this.options.host}:${this.options.port}: ${why}`, { cause: err });
    }
  }

  /** Stops accepting, closes every stream and the store. Safe twice and before start. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.expiry !== undefined) clearInterval(this.expiry);
      if (this.coalesce !== undefined) clearTimeout(this.coalesce);
      if (this.grace !== undefined) clearTimeout(this.grace);
      this.watch?.stop();
      this.distributor.close();
      await this.app.close();
      await this.republishing;
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
          return await store.delete(kind, namespace, name, stored.revision);
        } catch (err) {
          if (!isTracemeshError(err, 'TM_ERR_CP_STORE_CONFLICT') || attempt >= APPLY_ATTEMPTS) throw err;
        }
      }
    });

    app.get('/api/v1/proxies', async () => {
      const registered = new Map(this.registry.list().map((p) => [p.id, p]));
      const proxies = this.distributor.status().map((s) => ({ ...s, registration: registered.get(s.proxy) ?? null }));
      return { version: this.distributor.currentVersion, held: this.distributor.held, proxies };
    });

    app.post(REGISTRY_PATH, async (request, reply) => {
      const registration: ProxyRegistration = parseRegistration(request.body);
      this.registry.register(registration);
      return reply.code(200).send({ id: registration.id, ttlMs: this.options.registryTtlMs });
    });

    app.put(`${REGISTRY_PATH}/:id/heartbeat`, async (request, reply) => {
      const { id } = request.params as { id: string };
      return this.registry.heartbeat(id) ? reply.code(204).send() : reply.code(404).send({ message: `no proxy ${id} is registered; register again` });
    });

    app.delete(`${REGISTRY_PATH}/:id`, async (request, reply) => {
      const { id } = request.params as { id: string };
      return this.registry.deregister(id) ? reply.code(204).send() : reply.code(404).send({ message: `no proxy ${id} is registered` });
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
