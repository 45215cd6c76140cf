/**
 * web's client of `ratings`: one grpc-js channel, direct or through the
 * explicit proxy. The CLIENT spans and the traceparent in the metadata come
 * from the gRPC instrumentation (it patches Client.prototype.make*Request).
 *
 * Through a proxy we set on the channel exactly what grpc-js derives from
 * `grpc_proxy`/`http_proxy` itself (http_proxy.ts, mapProxyName): the channel
 * dials the proxy, `grpc.http_connect_target` makes each connection open with
 * `CONNECT ratings:50051`, and `grpc.default_authority` keeps `:authority`
 * as the service name. Setting it per channel rather than through the
 * process environment lets one process hold proxied and direct clients, and
 * `grpc.enable_http_proxy: 0` keeps a stray `http_proxy` in the environment
 * from rerouting a direct client.
 */
import type { ChannelOptions, Client, ServiceError } from '@grpc/grpc-js';
import { TracemeshError } from '../../lib/errors.js';
import type { loadGrpc } from '../instrument.js';
import type { PeerAddress, ProxyAddress } from './config.js';
import { MAX_RATINGS_MESSAGE_BYTES, RATINGS_CLIENT_METHODS } from './ratings-service.js';
import type { Rating } from './ratings-service.js';

type Grpc = ReturnType<typeof loadGrpc>;

export interface RatingsClientOptions {
  /** Where ratings listens, as this app names it (`ratings:50051` behind a proxy). */
  readonly target: PeerAddress;
  /** Explicit-mode proxy; undefined dials `target` directly. */
  readonly proxy: ProxyAddress | undefined;
  /** Per-call deadline. */
  readonly deadlineMs: number;
}

/** The channel's target and options for a direct or a proxied client. */
export function ratingsChannel(options: Pick<RatingsClientOptions, 'target' | 'proxy'>): { address: string; channelOptions: ChannelOptions } {
  const { target, proxy } = options;
  const base: ChannelOptions = {
    'grpc.enable_http_proxy': 0,
    'grpc.max_receive_message_length': MAX_RATINGS_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_RATINGS_MESSAGE_BYTES,
  };
  if (proxy === undefined) return { address: `dns:${target.host}:${target.port}`, channelOptions: base };
  return {
    address: `dns:${proxy.host}:${proxy.port}`,
    channelOptions: {
      ...base,
      'grpc.http_connect_target': `dns:${target.host}:${target.port}`,
      'grpc.default_authority': `${target.host}:${target.port}`,
    },
  };
}

export class RatingsClient {
  private readonly grpc: Grpc;
  private readonly client: Client;
  private readonly deadlineMs: number;
  private readonly where: string;

  constructor(grpc: Grpc, options: RatingsClientOptions) {
    const { address, channelOptions } = ratingsChannel(options);
    this.grpc = grpc;
    this.client = new grpc.Client(address, grpc.credentials.createInsecure(), channelOptions);
    this.deadlineMs = options.deadlineMs;
    this.where = `${options.target.host}:${options.target.port}`;
  }

  /** TM_ERR_UPSTREAM naming the address and the gRPC status. */
  private failure(err: ServiceError): TracemeshError {
    const statusName = this.grpc.status[err.code] ?? String(err.code);
    return new TracemeshError('TM_ERR_UPSTREAM', `ratings at ${this.where}: ${statusName}: ${err.details}`, { cause: err });
  }

  getRating(productId: string): Promise<Rating> {
    const method = RATINGS_CLIENT_METHODS.GetRating;
    return new Promise<Rating>((resolve, reject) => {
      this.client.makeUnaryRequest(
        method.path,
        method.serialize,
        method.deserialize,
        { productId },
        new this.grpc.Metadata(),
        { deadline: Date.now() + this.deadlineMs },
        (err, rating) => {
          if (err !== null) reject(this.failure(err));
          else if (rating === undefined) reject(new TracemeshError('TM_ERR_UPSTREAM', `ratings at ${this.where}: empty answer`));
          else resolve(rating);
        },
      );
    });
  }

  /** All updates of one WatchRatings call (the server sends at most MAX_WATCH_UPDATES). */
  watchRatings(productId: string, updates: number): Promise<Rating[]> {
    const method = RATINGS_CLIENT_METHODS.WatchRatings;
    return new Promise<Rating[]>((resolve, reject) => {
      const received: Rating[] = [];
      const call = this.client.makeServerStreamRequest(
        method.path,
        method.serialize,
        method.deserialize,
        { productId, updates },
        new this.grpc.Metadata(),
        { deadline: Date.now() + this.deadlineMs },
      );
      call.on('data', (rating: Rating) => received.push(rating));
      call.on('error', (err: ServiceError) => reject(this.failure(err)));
      call.on('end', () => resolve(received));
    });
  }

  close(): void {
    this.client.close();
  }
}
