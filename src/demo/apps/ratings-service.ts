/**
 * The `tracemesh.demo.Ratings` gRPC service, written by hand (there is no
 * proto-loader here): method paths, shapes and JSON codecs, shared by the
 * ratings server and web's client. Plain data plus type-only imports, so
 * loading it does not load @grpc/grpc-js (see src/demo/instrument.ts).
 *
 * Requests decode to a Decoded<T> instead of throwing: grpc-js turns a
 * throwing deserializer into INTERNAL "Error deserializing request", while
 * the handler can answer INVALID_ARGUMENT naming the field.
 */
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import { isProductId } from './catalog.js';

export const RATINGS_SERVICE_NAME = 'tracemesh.demo.Ratings';
export const GET_RATING_PATH = `/${RATINGS_SERVICE_NAME}/GetRating`;
export const WATCH_RATINGS_PATH = `/${RATINGS_SERVICE_NAME}/WatchRatings`;

/** Messages are tiny; anything bigger is a mistake or an attack. */
export const MAX_RATINGS_MESSAGE_BYTES = 4 * 1024;
/** WatchRatings sends at most this many updates per call. */
export const MAX_WATCH_UPDATES = 20;
const DEFAULT_WATCH_UPDATES = 3;

export interface GetRatingRequest {
  productId: string;
}

export interface WatchRatingsRequest {
  productId: string;
  /** How many updates to stream before ending the call (1 to MAX_WATCH_UPDATES). */
  updates: number;
}

export interface Rating {
  productId: string;
  stars: number;
  count: number;
}

export type Decoded<T> = { ok: true; value: T } | { ok: false; error: string };

function encodeJson(message: object): Buffer {
  return Buffer.from(JSON.stringify(message));
}

function parseObject(bytes: Buffer): Record<string, unknown> | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    return 'message is not JSON';
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return 'message is not a JSON object';
  return parsed as Record<string, unknown>;
}

function productIdOf(message: Record<string, unknown>): string | undefined {
  const productId = message['productId'];
  return typeof productId === 'string' && isProductId(productId) ? productId : undefined;
}

const PRODUCT_ID_EXPECTED = 'productId: expected a string of 1-64 letters, digits, _ or -';

export function decodeGetRatingRequest(bytes: Buffer): Decoded<GetRatingRequest> {
  const message = parseObject(bytes);
  if (typeof message === 'string') return { ok: false, error: message };
  const productId = productIdOf(message);
  if (productId === undefined) return { ok: false, error: PRODUCT_ID_EXPECTED };
  return { ok: true, value: { productId } };
}

export function decodeWatchRatingsRequest(bytes: Buffer): Decoded<WatchRatingsRequest> {
  const message = parseObject(bytes);
  if (typeof message === 'string') return { ok: false, error: message };
  const productId = productIdOf(message);
  if (productId === undefined) return { ok: false, error: PRODUCT_ID_EXPECTED };
  const updates = message['updates'] ?? DEFAULT_WATCH_UPDATES;
  if (typeof updates !== 'number' || !Number.isInteger(updates) || updates < 1 || updates > MAX_WATCH_UPDATES) {
    return { ok: false, error: `updates: expected a whole number from 1 to ${MAX_WATCH_UPDATES}` };
  }
  return { ok: true, value: { productId, updates } };
}

/** Client side: a Rating from the server, or a throw (grpc-js reports it as the call's error). */
export function decodeRating(bytes: Buffer): Rating {
  const message = parseObject(bytes);
  if (typeof message === 'string') throw new Error(`ratings answer: ${message}`);
  const productId = productIdOf(message);
  const stars = message['stars'];
  const count = message['count'];
  if (productId === undefined || typeof stars !== 'number' || typeof count !== 'number') {
    throw new Error('ratings answer: expected { productId, stars, count }');
  }
  return { productId, stars, count };
}

export const encodeGetRatingRequest: (message: GetRatingRequest) => Buffer = encodeJson;
export const encodeWatchRatingsRequest: (message: WatchRatingsRequest) => Buffer = encodeJson;
export const encodeRating: (message: Rating) => Buffer = encodeJson;

/** grpc-js wants a request serializer on the server's definition too; only a decoded request can be re-encoded. */
function encodeDecoded<T extends object>(message: Decoded<T>): Buffer {
  if (!message.ok) throw new Error(`cannot send an invalid request: ${message.error}`);
  return encodeJson(message.value);
}

/**
 * The server's view of the service: requests arrive as Decoded<T>. Clients
 * use RATINGS_CLIENT_METHODS instead, whose request side is the plain type.
 */
export interface RatingsServiceDefinition extends ServiceDefinition {
  GetRating: MethodDefinition<Decoded<GetRatingRequest>, Rating>;
  WatchRatings: MethodDefinition<Decoded<WatchRatingsRequest>, Rating>;
}

export const RATINGS_SERVICE: RatingsServiceDefinition = {
  GetRating: {
    path: GET_RATING_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: encodeDecoded,
    requestDeserialize: decodeGetRatingRequest,
    responseSerialize: encodeRating,
    responseDeserialize: decodeRating,
    originalName: 'getRating',
  },
  WatchRatings: {
    path: WATCH_RATINGS_PATH,
    requestStream: false,
    responseStream: true,
    requestSerialize: encodeDecoded,
    requestDeserialize: decodeWatchRatingsRequest,
    responseSerialize: encodeRating,
    responseDeserialize: decodeRating,
    originalName: 'watchRatings',
  },
};

/** What a client needs per method: the path and the codecs for its side. */
export interface RatingsClientMethod<Request> {
  readonly path: string;
  readonly serialize: (message: Request) => Buffer;
  readonly deserialize: (bytes: Buffer) => Rating;
}

export const RATINGS_CLIENT_METHODS: {
  readonly GetRating: RatingsClientMethod<GetRatingRequest>;
  readonly WatchRatings: RatingsClientMethod<WatchRatingsRequest>;
} = {
  GetRating: { path: GET_RATING_PATH, serialize: encodeGetRatingRequest, deserialize: decodeRating },
  WatchRatings: { path: WATCH_RATINGS_PATH, serialize: encodeWatchRatingsRequest, deserialize: decodeRating },
};
