/**
 * A gRPC service with all four RPC shapes, defined by hand (no .proto loader
 * is installed) with JSON messages, served by @grpc/grpc-js; and a typed
 * client over grpc.Client's make*Request calls.
 */
import * as grpc from '@grpc/grpc-js';

export interface EchoRequest {
  text: string;
  /** Server streaming: how many replies. */
  count?: number;
  /** Unary / server streaming: end with this status instead of OK. */
  fail?: { code: number; message: string };
  /** Unary: never answer. Server streaming: send this many replies, then hold the call open. */
  hang?: boolean;
  holdAfter?: number;
  /** Server streaming: wait this long after the first reply before the others (a slow stream). */
  pauseMs?: number;
}

export interface EchoReply {
  text: string;
}

const serialize = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));
const deserialize = (bytes: Buffer): never => JSON.parse(bytes.toString('utf8')) as never;

function method(name: string, requestStream: boolean, responseStream: boolean): grpc.MethodDefinition<EchoRequest, EchoReply> {
  return {
    path: `/demo.Echo/${name}`,
    requestStream,
    responseStream,
    requestSerialize: serialize,
    requestDeserialize: deserialize,
    responseSerialize: serialize,
    responseDeserialize: deserialize,
  };
}

export const ECHO_SERVICE = {
  Unary: method('Unary', false, false),
  ServerStream: method('ServerStream', false, true),
  ClientStream: method('ClientStream', true, false),
  Bidi: method('Bidi', true, true),
} satisfies grpc.ServiceDefinition;

/** What the server saw, for assertions. */
export interface EchoServerLog {
  metadata: grpc.Metadata[];
  cancelled: number;
  /** Calls held open (hang / holdAfter), ended by the test or by cancellation. */
  held: Array<grpc.ServerWritableStream<EchoRequest, EchoReply> | grpc.sendUnaryData<EchoReply>>;
}

export interface EchoServer {
  readonly port: number;
  readonly log: EchoServerLog;
  /** Ends every connection now (as a crashed server would). */
  kill(): void;
  close(): Promise<void>;
}

function statusError(fail: { code: number; message: string }): grpc.ServiceError {
  const err = new Error(fail.message) as grpc.ServiceError;
  err.code = fail.code;
  err.details = fail.message;
  err.metadata = new grpc.Metadata();
  return err;
}

function replyMetadata(incoming: grpc.Metadata): grpc.Metadata {
  const md = new grpc.Metadata();
  const echo = incoming.get('x-echo')[0];
  if (echo !== undefined) md.set('x-echo', String(echo));
  return md;
}

export async function startEchoServer(): Promise<EchoServer> {
  const log: EchoServerLog = { metadata: [], cancelled: 0, held: [] };
  const server = new grpc.Server();
  const impl: grpc.UntypedServiceImplementation = {
    Unary(call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, callback: grpc.sendUnaryData<EchoReply>) {
      log.metadata.push(call.metadata);
      call.on('cancelled', () => log.cancelled++);
      const req = call.request;
      if (req.hang === true) {
        log.held.push(callback);
        return;
      }
      if (req.fail !== undefined) {
        callback(statusError(req.fail));
        return;
      }
      call.sendMetadata(replyMetadata(call.metadata));
      const trailer = new grpc.Metadata();
      trailer.set('x-trailer', 'unary-done');
      callback(null, { text: `echo:${req.text}` }, trailer);
    },
    ServerStream(call: grpc.ServerWritableStream<EchoRequest, EchoReply>) {
      log.metadata.push(call.metadata);
      call.on('cancelled', () => log.cancelled++);
      const req = call.request;
      const count = req.count ?? 3;
      if (req.holdAfter !== undefined) {
        for (let i = 0; i < req.holdAfter; i++) call.write({ text: `${req.text}-${i}` });
        log.held.push(call);
        return;
      }
      if (req.pauseMs !== undefined) {
        call.write({ text: `${req.text}-0` });
        setTimeout(() => {
          for (let i = 1; i < count; i++) call.write({ text: `${req.text}-${i}` });
          call.end();
        }, req.pauseMs);
        return;
      }
      for (let i = 0; i < count; i++) call.write({ text: `${req.text}-${i}` });
      if (req.fail !== undefined) {
        call.emit('error', statusError(req.fail));
        return;
      }
      call.end();
    },
    ClientStream(call: grpc.ServerReadableStream<EchoRequest, EchoReply>, callback: grpc.sendUnaryData<EchoReply>) {
      log.metadata.push(call.metadata);
      const texts: string[] = [];
      call.on('data', (req: EchoRequest) => texts.push(req.text));
      call.on('end', () => callback(null, { text: texts.join('+') }));
    },
    Bidi(call: grpc.ServerDuplexStream<EchoRequest, EchoReply>) {
      log.metadata.push(call.metadata);
      call.on('data', (req: EchoRequest) => call.write({ text: `echo:${req.text}` }));
      call.on('end', () => call.end());
    },
  };
  server.addService(ECHO_SERVICE, impl);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
  );
  return {
    port,
    log,
    kill: () => server.forceShutdown(),
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        // Held calls never finish on their own.
        setTimeout(() => server.forceShutdown(), 200).unref();
      }),
  };
}

export interface CallResult<T> {
  value: T | undefined;
  status: grpc.StatusObject;
  /** Response headers (initial metadata), when any arrived. */
  headers: grpc.Metadata | undefined;
}

/** A grpc-js client whose calls name `authority` (what the outbound proxy routes on) and connect to the proxy. */
export class EchoClient {
  readonly client: grpc.Client;

  constructor(proxyPort: number, authority: string, options: grpc.ChannelOptions = {}) {
    this.client = new grpc.Client(`127.0.0.1:${proxyPort}`, grpc.credentials.createInsecure(), {
      'grpc.default_authority': authority,
      ...options,
    });
  }

  unary(req: EchoRequest, metadata = new grpc.Metadata(), options: grpc.CallOptions = {}): Promise<CallResult<EchoReply>> {
    return new Promise((resolve) => {
      let value: EchoReply | undefined;
      let headers: grpc.Metadata | undefined;
      const call = this.client.makeUnaryRequest(ECHO_SERVICE.Unary.path, serialize, deserialize, req, metadata, options, (_err, reply) => {
        value = reply as EchoReply | undefined;
      });
      call.on('metadata', (md: grpc.Metadata) => (headers = md));
      call.on('status', (status: grpc.StatusObject) => setImmediate(() => resolve({ value, status, headers })));
    });
  }

  serverStream(
    req: EchoRequest,
    onCall?: (call: grpc.ClientReadableStream<EchoReply>) => void,
    options: grpc.CallOptions = {},
  ): Promise<CallResult<EchoReply[]>> {
    return new Promise((resolve) => {
      const replies: EchoReply[] = [];
      let headers: grpc.Metadata | undefined;
      const call = this.client.makeServerStreamRequest<EchoRequest, EchoReply>(
        ECHO_SERVICE.ServerStream.path,
        serialize,
        deserialize,
        req,
        new grpc.Metadata(),
        options,
      );
      call.on('data', (reply: EchoReply) => replies.push(reply));
      call.on('metadata', (md: grpc.Metadata) => (headers = md));
      call.on('error', () => {}); // the status event carries it
      call.on('status', (status: grpc.StatusObject) => setImmediate(() => resolve({ value: replies, status, headers })));
      onCall?.(call);
    });
  }

  clientStream(reqs: EchoRequest[]): Promise<CallResult<EchoReply>> {
    return new Promise((resolve) => {
      let value: EchoReply | undefined;
      const call = this.client.makeClientStreamRequest<EchoRequest, EchoReply>(
        ECHO_SERVICE.ClientStream.path,
        serialize,
        deserialize,
        new grpc.Metadata(),
        {},
        (_err, reply) => {
          value = reply;
        },
      );
      call.on('status', (status: grpc.StatusObject) => setImmediate(() => resolve({ value, status, headers: undefined })));
      for (const req of reqs) call.write(req);
      call.end();
    });
  }

  /** Sends each request after the reply to the previous one arrived (a real conversation, not a batch). */
  bidi(reqs: EchoRequest[]): Promise<CallResult<EchoReply[]>> {
    return new Promise((resolve) => {
      const replies: EchoReply[] = [];
      const call = this.client.makeBidiStreamRequest<EchoRequest, EchoReply>(ECHO_SERVICE.Bidi.path, serialize, deserialize, new grpc.Metadata(), {});
      let next = 0;
      const sendNext = (): void => {
        const req = reqs[next++];
        if (req === undefined) call.end();
        else call.write(req);
      };
      call.on('data', (reply: EchoReply) => {
        replies.push(reply);
        sendNext();
      });
      call.on('error', () => {});
      call.on('status', (status: grpc.StatusObject) => setImmediate(() => resolve({ value: replies, status, headers: undefined })));
      sendNext();
    });
  }

  close(): void {
    this.client.close();
  }
}
