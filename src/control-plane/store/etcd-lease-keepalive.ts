/**
 * Lease renewals for many leases over one etcd keep-alive stream. The
 * registry renews one lease per proxy; a stream per renewal (what etcd3's
 * Lease.keepaliveOnce does) would open a thousand gRPC streams a minute at a
 * thousand proxies. Renewals are answered in order, matched by lease id; a
 * broken stream fails what was waiting on it and the next renewal opens a
 * new one. Leases granted by another replica renew the same way: a lease is
 * etcd's, not the granting client's.
 */
import type { Etcd3, IDuplexStream, ILeaseKeepAliveRequest, ILeaseKeepAliveResponse } from 'etcd3';
import { etcdFailure } from './etcd-errors.js';

type KeepAliveStream = IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;

interface Waiter {
  readonly resolve: (ttlSeconds: number) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
}

export class LeaseKeepAlive {
  private opening: Promise<KeepAliveStream> | undefined;
  private readonly waiting = new Map<string, Waiter[]>();
  private closed = false;

  constructor(
    private readonly client: Etcd3,
    private readonly location: string,
    private readonly timeoutMs: number,
  ) {}

  /** Renews the lease; resolves with its new TTL in seconds, 0 or less when it has expired (or never was). */
  async renew(leaseId: string): Promise<number> {
    const stream = await this.open();
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.drop(leaseId, waiter);
        reject(etcdFailure(this.location, `renew lease ${leaseId}`, new Error(`no answer within ${this.timeoutMs} ms`)));
      }, this.timeoutMs);
      timer.unref();
      const waiter: Waiter = { resolve, reject, timer };
      const list = this.waiting.get(leaseId);
      if (list === undefined) this.waiting.set(leaseId, [waiter]);
      else list.push(waiter);
      stream.write({ ID: leaseId });
    });
  }

  close(): void {
    this.closed = true;
    const opening = this.opening;
    this.opening = undefined;
    void opening?.then((stream) => stream.cancel()).catch(() => undefined);
    this.failAll(new Error('closed'));
  }

  private open(): Promise<KeepAliveStream> {
    if (this.closed) return Promise.reject(etcdFailure(this.location, 'renew a lease', new Error('the registry is closed')));
    if (this.opening !== undefined) return this.opening;
    const opening = this.client.leaseClient.leaseKeepAlive().then((stream) => {
      const broken = (err: Error): void => {
        if (this.opening === opening) this.opening = undefined;
        this.failAll(err);
      };
      stream.on('data', (response) => this.answer(response));
      stream.on('error', broken);
      stream.on('end', () => broken(new Error('the keep-alive stream ended')));
      return stream;
    });
    opening.catch(() => {
      if (this.opening === opening) this.opening = undefined;
    });
    this.opening = opening;
    return opening;
  }

  private answer(response: ILeaseKeepAliveResponse): void {
    const id = String(response.ID);
    const list = this.waiting.get(id);
    const waiter = list?.shift();
    if (list !== undefined && list.length === 0) this.waiting.delete(id);
    if (waiter === undefined) return;
    clearTimeout(waiter.timer);
    waiter.resolve(Number(response.TTL));
  }

  private drop(leaseId: string, waiter: Waiter): void {
    const list = this.waiting.get(leaseId);
    if (list === undefined) return;
    const at = list.indexOf(waiter);
    if (at >= 0) list.splice(at, 1);
    if (list.length === 0) this.waiting.delete(leaseId);
  }

  private failAll(err: Error): void {
    const failure = etcdFailure(this.location, 'renew a lease', err);
    for (const list of this.waiting.values()) {
      for (const waiter of list) {
        clearTimeout(waiter.timer);
        waiter.reject(failure);
      }
    }
    this.waiting.clear();
  }
}
