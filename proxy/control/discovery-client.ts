/**
 * A proxy's link to the control plane: it registers the workload and
 * heartbeats, holds the discovery stream, validates every snapshot with the
 * same code as a static `--config` file, applies it whole or not at all,
 * ACKs or NACKs it with the reason, and caches it on disk. While the control
 * plane is away the proxy keeps serving its last good configuration and
 * reconnects with jittered exponential backoff; a proxy that starts while
 * the control plane is away serves from its cache.
 *
 * Several control-plane replicas (on one etcd) can be given: the client
 * uses one at a time and, when it fails (no answer, stream cut), moves on
 * to the next in the list, with the same backoff between attempts. It
 * stays with the one that works; registrations and configuration are the
 * same at every replica, so moving costs a re-registration (a lease
 * renewal in etcd) and a snapshot it usually has already.
 *
 * Deltas (protocol.ts): the client keeps the documents it serves; a delta
 * is applied to them only when its base is the version served, the result
 * must hash to the delta's version, and then it is validated, applied and
 * cached whole exactly like a snapshot. Anything else is NACKed with the
 * reason, and the control plane answers with the whole snapshot.
 */
import http from 'node:http';
import type { ProxyRegistration } from '../../src/control-plane/endpoint-registry.js';
import { applySnapshotDelta, snapshotVersion } from '../../src/control-plane/delta.js';
import {
  DISCOVERY_ACK_PATH,
  DISCOVERY_STREAM_PATH,
  LineSplitter,
  REGISTRY_PATH,
  parseStreamMessage,
  type AckRequest,
  type ConfigMessage,
  type DeltaMessage,
  type UnusableMessage,
} from '../../src/control-plane/protocol.js';
import type { MeshConfig } from '../../src/config/types.js';
import { backoffMs } from '../../src/lib/backoff.js';
import { TracemeshError, errorMessage } from '../../src/lib/errors.js';
import { readConfigCache, writeConfigCache } from './config-cache.js';
import { createAgent, send } from './control-plane-http.js';

export interface DiscoveryClientOptions {
  /** http://host:15010, or several replicas' URLs separated by commas, tried in order. */
  readonly controlPlaneUrl: string;
  readonly registration: ProxyRegistration;
  readonly stateDir: string;
  /** Documents → validated config; throws (ConfigValidationError) listing every problem. */
  readonly validate: (documents: readonly unknown[], version: string) => Promise<MeshConfig>;
  /** Swaps the proxy's configuration whole; throws if it cannot (then the version is NACKed). */
  readonly apply: (config: MeshConfig, version: string) => void;
  readonly log: (message: string) => void;
  readonly heartbeatIntervalMs: number;
  /** No line (config or ping) for this long → the stream is dead: reconnect. */
  readonly silenceTimeoutMs: number;
  readonly requestTimeoutMs: number;
}

export const DEFAULT_DISCOVERY_TIMING = { heartbeatIntervalMs: 10_000, silenceTimeoutMs: 45_000, requestTimeoutMs: 5_000 } as const;

export type ConfigSource = 'none' | 'cache' | 'control-plane';

/** What came down the stream, for /config_dump and tests. */
export interface UpdateCounts {
  snapshots: number;
  deltas: number;
  /** Versions NACKed (snapshots, deltas and unusable messages). */
  nacks: number;
}

/** An ACK that could not be delivered is tried again this often (the stream may still be fine). */
const ACK_ATTEMPTS = 3;

/** `http://a:15010,http://b:15010` → the URLs, in order; throws naming the part that is not an http://HOST:PORT URL. */
export function parseControlPlaneUrls(text: string): URL[] {
  const parts = text.split(',').map((part) => part.trim());
  if (parts.some((part) => part.length === 0)) throw new TracemeshError('TM_ERR_CLI_BAD_VALUE', `--control-plane: an empty entry in '${text}' (expected http://HOST:PORT[,http://HOST:PORT…])`);
  return parts.map((part) => {
    let url: URL;
    try {
      url = new URL(part);
    } catch {
      throw new TracemeshError('TM_ERR_CLI_BAD_VALUE', `--control-plane: '${part}' is not a URL (expected http://HOST:PORT)`);
    }
    if (url.protocol !== 'http:' || (url.pathname !== '/' && url.pathname !== '')) throw new TracemeshError('TM_ERR_CLI_BAD_VALUE', `--control-plane: '${part}' is not an http://HOST:PORT URL`);
    return url;
  });
}

export class DiscoveryClient {
  private readonly bases: readonly URL[];
  /** The replica in use: the registration, heartbeats and the stream go to it. */
  private current = 0;
  private readonly agent = createAgent();
  private stopped = false;
  /** End the current waits early (stop() must not wait out a reconnect delay). */
  private readonly wakers = new Set<() => void>();
  private stream: http.ClientRequest | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private loop: Promise<void> | undefined;
  private registered = false;
  /** The version being served and where it came from (shown in /config_dump). */
  appliedVersion = '';
  source: ConfigSource = 'none';
  connected = false;
  lastError = '';
  readonly updates: UpdateCounts = { snapshots: 0, deltas: 0, nacks: 0 };
  /** The documents of appliedVersion, the base of the next delta; undefined while nothing is applied. */
  private documents: readonly unknown[] | undefined;

  constructor(private readonly options: DiscoveryClientOptions) {
    this.bases = parseControlPlaneUrls(options.controlPlaneUrl);
  }

  /** The control plane in use now (or tried next). */
  get currentUrl(): string {
    return this.base.origin;
  }

  private get base(): URL {
    return this.bases[this.current] as URL;
  }

  /** Applies the cached configuration if there is one, then connects in the background. */
  async start(): Promise<void> {
    const cached = await readConfigCache(this.options.stateDir, this.options.log);
    if (cached !== undefined) {
      try {
        this.options.apply(await this.validated(cached.documents, cached.version), cached.version);
        this.appliedVersion = cached.version;
        this.documents = cached.documents;
        this.source = 'cache';
      } catch (err) {
        this.options.log(`config cache (version ${cached.version}) was not applied: ${errorMessage(err)}`);
      }
    }
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.options.heartbeatIntervalMs);
    this.heartbeatTimer.unref();
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.heartbeatTimer !== undefined) clearInterval(this.heartbeatTimer);
    this.stream?.destroy();
    for (const wake of [...this.wakers]) wake();
    await this.loop;
    if (this.registered) {
      await send(this.agent, this.base, 'DELETE', `${REGISTRY_PATH}/${encodeURIComponent(this.options.registration.id)}`, undefined, 1_000).catch(() => undefined);
    }
    this.agent.destroy();
  }

  /** A backoff wait that stop() cuts short; the timer never holds the process open. */
  private pause(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref();
      this.wakers.add(done);
    });
  }

  private async run(): Promise<void> {
    let attempt = 0;
    while (!this.stopped) {
      try {
        await this.register();
        attempt = 0;
        // stop() came while registering: a stream opened now would never be closed, and stop() would wait on it.
        if (this.stopped) break;
        await this.follow();
      } catch (err) {
        if (this.stopped) break;
        this.connected = false;
        const message = errorMessage(err);
        if (message !== this.lastError) this.options.log(`control plane ${this.base.origin}: ${message}; serving version ${this.appliedVersion || '(none)'} meanwhile`);
        this.lastError = message;
        // The next replica in the list, if there are several; the backoff still paces the attempts.
        this.current = (this.current + 1) % this.bases.length;
      }
      if (this.stopped) break;
      // Full jitter on the shared backoff: a thousand proxies losing the control plane at once do not return at once.
      await this.pause(backoffMs(attempt++) * (0.5 + Math.random() / 2));
    }
  }

  private async register(): Promise<void> {
    const res = await send(this.agent, this.base, 'POST', REGISTRY_PATH, this.options.registration, this.options.requestTimeoutMs);
    if (res.status !== 200 && res.status !== 201) throw new Error(`registering was answered ${res.status}: ${res.body.slice(0, 300)}`);
    this.registered = true;
  }

  private async heartbeat(): Promise<void> {
    if (!this.registered || this.stopped) return;
    try {
      const res = await send(this.agent, this.base, 'PUT', `${REGISTRY_PATH}/${encodeURIComponent(this.options.registration.id)}/heartbeat`, undefined, this.options.requestTimeoutMs);
      // Expired (the control plane restarted, or we were away past the TTL): register again.
      if (res.status === 404) await this.register();
    } catch {
      // The stream loop reports the control plane's absence; heartbeats just try again next time.
    }
  }

  /** Reads the stream until it ends; resolves or rejects when it does. */
  private follow(): Promise<void> {
    // ACKs go to the replica whose stream sent the snapshot: its nonces are its own.
    const base = this.base;
    return new Promise((resolve, reject) => {
      // What this proxy serves: a restarted control plane holds snapshots back from proxies that have something to lose.
      const serving = this.source === 'none' ? '' : this.appliedVersion;
      const path = `${DISCOVERY_STREAM_PATH}?proxy=${encodeURIComponent(this.options.registration.id)}&serving=${encodeURIComponent(serving)}`;
      // Not the keep-alive agent: the stream holds its connection for as long as it lives.
      const req = http.request({ host: base.hostname, port: base.port, path, method: 'GET', agent: false }, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(new Error(`the discovery stream was answered ${res.statusCode ?? 0}`));
          return;
        }
        this.connected = true;
        this.lastError = '';
        const splitter = new LineSplitter();
        let silence = setTimeout(onSilence, this.options.silenceTimeoutMs);
        function onSilence(): void {
          req.destroy(new Error('the discovery stream went silent'));
        }
        let applying = Promise.resolve();
        res.on('data', (chunk: Buffer) => {
          clearTimeout(silence);
          silence = setTimeout(onSilence, this.options.silenceTimeoutMs);
          let lines: string[];
          try {
            lines = splitter.push(chunk);
          } catch (err) {
            req.destroy(err as Error);
            return;
          }
          for (const line of lines) {
            let message;
            try {
              message = parseStreamMessage(line);
            } catch (err) {
              req.destroy(err as Error);
              return;
            }
            // One at a time, in order: a later snapshot never lands before an earlier one, and a delta finds its base.
            if (message.type !== 'ping') applying = applying.then(() => this.receive(message, base));
          }
        });
        res.on('end', () => {
          clearTimeout(silence);
          reject(new Error('the control plane closed the discovery stream'));
        });
        res.on('error', (err) => {
          clearTimeout(silence);
          reject(new Error(`the discovery stream broke (${err.message})`));
        });
        res.on('close', () => {
          clearTimeout(silence);
          // Closed without 'end' or 'error' (a socket cut mid-stream): the stream is gone either way.
          if (this.stopped) resolve();
          else reject(new Error('the discovery stream was cut'));
        });
      });
      req.on('error', (err) => reject(this.stopped ? new Error('stopped') : err));
      req.setTimeout(this.options.requestTimeoutMs, () => {
        if (!this.connected) req.destroy(new Error(`no answer to the discovery stream within ${this.options.requestTimeoutMs} ms`));
      });
      this.stream = req;
      req.end();
    });
  }

  /**
   * An empty snapshot is a valid configuration (every document was deleted,
   * or none was applied yet): the validator reads documents as a file, and a
   * file without documents is an error, so it is not asked. Inline rather
   * than emptyMeshConfig(): that module loads every schema, which the
   * sidecar keeps out of its main thread.
   */
  private validated(documents: readonly unknown[], version: string): Promise<MeshConfig> {
    if (documents.length > 0) return this.options.validate(documents, version);
    const empty: Required<MeshConfig> = { services: [], routes: [], destinationPolicies: [], rateLimits: [], authorizationPolicies: [], peerAuthentications: [], circuitPolicies: [] };
    return Promise.resolve(empty);
  }

  private async receive(message: ConfigMessage | DeltaMessage | UnusableMessage, from: URL): Promise<void> {
    let ack: AckRequest;
    const base = { proxy: this.options.registration.id, version: message.version, nonce: message.nonce };
    if (message.type === 'config') this.updates.snapshots++;
    else if (message.type === 'delta') this.updates.deltas++;
    if (message.type === 'config' && message.version === this.appliedVersion && this.source !== 'none') {
      ack = { ...base, status: 'ACK' };
      this.source = 'control-plane';
    } else {
      try {
        if (message.type === 'unusable') throw new TracemeshError('TM_ERR_CP_PROTOCOL', message.error);
        const documents = message.type === 'config' ? message.documents : this.merged(message);
        const config = await this.validated(documents, message.version);
        this.options.apply(config, message.version);
        this.appliedVersion = message.version;
        this.documents = documents;
        this.source = 'control-plane';
        ack = { ...base, status: 'ACK' };
        await writeConfigCache(this.options.stateDir, { version: message.version, documents }).catch((err: unknown) => {
          this.options.log(`config version ${message.version} applied, but caching it failed: ${errorMessage(err)}`);
        });
      } catch (err) {
        this.updates.nacks++;
        ack = { ...base, status: 'NACK', error: errorMessage(err).slice(0, 4000) };
        this.options.log(`config version ${message.version}${message.type === 'delta' ? ` (delta from ${message.base})` : ''} refused, still serving ${this.appliedVersion || '(none)'}: ${ack.error ?? ''}`);
      }
    }
    await this.sendAck(ack, from);
  }

  /** The documents served with `delta` applied; throws TM_ERR_CP_PROTOCOL when it does not fit them (then the control plane sends the whole snapshot). */
  private merged(delta: DeltaMessage): unknown[] {
    if (this.documents === undefined || this.source === 'none') throw new TracemeshError('TM_ERR_CP_PROTOCOL', `delta from version ${delta.base}, but this proxy serves no configuration: send the whole snapshot`);
    if (delta.base !== this.appliedVersion) throw new TracemeshError('TM_ERR_CP_PROTOCOL', `delta from version ${delta.base}, but this proxy serves version ${this.appliedVersion}: send the whole snapshot`);
    const merged = applySnapshotDelta(this.documents, delta);
    const made = snapshotVersion(merged);
    if (made !== delta.version) throw new TracemeshError('TM_ERR_CP_PROTOCOL', `the delta from version ${delta.base} made version ${made}, not ${delta.version}: send the whole snapshot`);
    return merged;
  }

  /**
   * Delivers an ACK or NACK, trying again briefly when it cannot be sent: a
   * lost ACK leaves the proxy "pending" at the control plane until the next
   * snapshot. A 409 (stale: a newer snapshot went out meanwhile) is final.
   */
  private async sendAck(ack: AckRequest, to: URL): Promise<void> {
    for (let attempt = 0; attempt < ACK_ATTEMPTS && !this.stopped; attempt++) {
      try {
        await send(this.agent, to, 'POST', DISCOVERY_ACK_PATH, ack, this.options.requestTimeoutMs);
        return;
      } catch (err) {
        if (attempt === ACK_ATTEMPTS - 1) this.options.log(`${ack.status} of version ${ack.version} could not be delivered: ${errorMessage(err)}`);
        else await this.pause(backoffMs(attempt));
      }
    }
  }
}
