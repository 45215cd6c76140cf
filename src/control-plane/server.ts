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
import { errorMessage, isTracemeshError } from '../lib/errors.js';
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
  readonly maxProxies: number;
  readonly log: (message: string) => void;
}

export const DEFAULT_CONTROL_PLANE_TIMING = { registryTtlMs: 30_000, pingIntervalMs: 15_000, coalesceMs: 50 } as const;

const BODY_LIMIT_BYTES = 16 * 1024 * 1024;
/** Conflicting writes from other replicas are retried this often before the client is told. */
const APPLY_ATTEMPTS = 5;

export class ControlPlane {
  readonly registry: EndpointRegistry;
  readonly distributor: Distributor;
  private readonly app: FastifyInstance;
  private watch: StoreWatch | undefined;
  private expiry: NodeJS.Timeout | undefined;
  private coalesce: NodeJS.Timeout | undefined;
  private republishing: Promise<void> = Promise.resolve();
  private stopping: Promise<void> | undefined;

  constructor(private readonly options: ControlPlaneOptions) {
    this.registry = new EndpointRegistry({ ttlMs: options.registryTtlMs, maxProxies: options.maxProxies, now: Date.now });
    this.distributor = new Distributor({ pingIntervalMs: options.pingIntervalMs, maxProxies: options.maxProxies, now: Date.now });
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
    this.distributor.publish(buildSnapshot(snapshot, this.registry));
    this.watch = await this.options.store.watch(() => this.republish(), {
      fromRevision: snapshot.revision,
      onProblem: (err) => this.options.log(`config store ${this.options.store.location}: ${err.message}`),
    });
    this.registry.onChange(() => this.republishSoon());
    this.expiry = setInterval(() => this.registry.expire(), Math.max(100, Math.floor(this.options.registryTtlMs / 3)));
    this.expiry.unref();
    await this.app.listen({ host: this.options.host, port: this.options.port });
  }

  /** Stops accepting, closes every stream and the store. Safe twice and before start. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.expiry !== undefined) clearInterval(this.expiry);
      if (this.coalesce !== undefined) clearTimeout(this.coalesce);
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
          if (!isTracemeshError(err) || (err.code as string) !== 'TM_ERR_CP_STORE_CONFLICT' || attempt >= APPLY_ATTEMPTS) throw err;
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
      const { kind, namespace, name } = request.params as { kind: string; namespace: string; name: string };
      const found = await store.get(kind, namespace, name);
      if (found === undefined) return reply.code(404).send({ message: `no ${kind} ${namespace}/${name}` });
      return { revision: found.revision, document: found.document };
    });

    app.delete('/api/v1/config/:kind/:namespace/:name', async (request, reply) => {
      const { kind, namespace, name } = request.params as { kind: string; namespace: string; name: string };
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
          if (!isTracemeshError(err) || (err.code as string) !== 'TM_ERR_CP_STORE_CONFLICT' || attempt >= APPLY_ATTEMPTS) throw err;
        }
      }
    });

    app.get('/api/v1/proxies', async () => {
      const registered = new Map(this.registry.list().map((p) => [p.id, p]));
      const proxies = this.distributor.status().map((s) => ({ ...s, registration: registered.get(s.proxy) ?? null }));
      return { version: this.distributor.currentVersion, proxies };
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
      const proxy = (request.query as Record<string, string | undefined>)['proxy'];
      if (proxy === undefined || proxy.length === 0 || proxy.length > 256) {
        void reply.code(400).send({ message: 'the stream needs ?proxy=ID (1 to 256 characters)' });
        return;
      }
      this.openStream(proxy, reply);
    });

    app.setErrorHandler((err: unknown, _request, reply) => {
      const statusCode = (err as { statusCode?: unknown }).statusCode;
      const status = isTracemeshError(err, 'TM_ERR_CP_PROTOCOL') ? 400 : isTracemeshError(err, 'TM_ERR_CP_REGISTRY_FULL') ? 503 : typeof statusCode === 'number' ? statusCode : 500;
      if (status >= 500 && status !== 503) this.options.log(`control plane API: ${errorMessage(err)}`);
      void reply.code(status).send({ message: errorMessage(err) });
    });
  }

  private openStream(proxy: string, reply: FastifyReply): void {
    reply.hijack();
    const res: ServerResponse = reply.raw;
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    res.socket?.setNoDelay(true);
    // The stream lives as long as the proxy does: no request timeout applies to it.
    res.socket?.setTimeout(0);
    const sink: StreamSink = {
      write: (line) => res.write(line),
      onDrain: (callback) => res.on('drain', callback),
      close: () => res.end(),
    };
    const detach = this.distributor.attach(proxy, sink);
    res.on('close', detach);
  }
}
