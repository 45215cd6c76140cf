/**
 * Plain HTTP/2 peers for tests: an h2c upstream server whose behaviour each
 * test supplies, and a client call that collects everything a response
 * carries (head, body, trailers, or how the stream failed).
 */
import http2, { type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import net, { type AddressInfo, type Socket } from 'node:net';
import type { UpstreamConnector, UpstreamTarget } from '../capture/transparent-connect.js';

export interface H2Upstream {
  readonly port: number;
  /** Request headers of every stream, in arrival order. */
  readonly requests: IncomingHttpHeaders[];
  /** Sessions accepted so far. */
  readonly sessions: http2.ServerHttp2Session[];
  /** Ends every session's socket now (as a crashed server would). */
  kill(): void;
  close(): Promise<void>;
}

export type StreamHandler = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void;

/** Answers 200 with the request body echoed back, and the body's size in a trailer. */
export const echoBody: StreamHandler = (stream) => {
  stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' }, { waitForTrailers: true });
  let size = 0;
  stream.on('data', (chunk: Buffer) => (size += chunk.length));
  stream.on('wantTrailers', () => stream.sendTrailers({ 'x-body-size': String(size) }));
  stream.pipe(stream);
};

export async function startH2Upstream(handler: StreamHandler): Promise<H2Upstream> {
  const requests: IncomingHttpHeaders[] = [];
  const sessions: http2.ServerHttp2Session[] = [];
  const sockets = new Set<Socket>();
  const server = http2.createServer();
  // The raw sockets, to kill: a session's own `socket` refuses to be destroyed directly.
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('session', (session) => sessions.push(session));
  server.on('stream', (stream, headers) => {
    requests.push(headers);
    stream.on('error', () => {});
    handler(stream, headers);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    sessions,
    kill: () => {
      for (const socket of sockets) socket.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const session of sessions) session.destroy();
      }),
  };
}

export interface H2Response {
  headers: IncomingHttpHeaders | undefined;
  body: Buffer;
  trailers: IncomingHttpHeaders | undefined;
  /** RST_STREAM code the stream closed with (0 = clean). */
  rstCode: number | undefined;
  error: Error | undefined;
}

/** A client session to 127.0.0.1:`port`; `localAddress` (a loopback alias such as 127.0.0.2) is the address it connects from. */
export function h2Connect(port: number, localAddress?: string): ClientHttp2Session {
  const session =
    localAddress === undefined
      ? http2.connect(`http://127.0.0.1:${port}`)
      : http2.connect(`http://127.0.0.1:${port}`, { createConnection: () => net.connect({ host: '127.0.0.1', port, localAddress }) });
  session.on('error', () => {});
  return session;
}

/** Answers 200 with the address the upstream connection came from. */
export const answerPeerAddress: StreamHandler = (stream) => {
  stream.respond({ ':status': 200 });
  stream.end(stream.session?.socket?.remoteAddress ?? '');
};

export interface RecordingConnector extends UpstreamConnector {
  /** The client of every connection the connector made from a client's address, in order. */
  readonly connectedFor: string[];
}

/**
 * A connector that, like TPROXY's, connects from the downstream client's
 * address, without namespaces: the clients are loopback aliases
 * (127.0.0.2, 127.0.0.3…), which a loopback upstream then sees as its peer.
 * 127.0.0.1 (the proxy's own) gives sourceKey '', as a client inside the pod does under TPROXY.
 */
export function loopbackSourceConnector(): RecordingConnector {
  const connectedFor: string[] = [];
  return {
    keepsClientAddress: true,
    connectedFor,
    sourceKey: (_target: UpstreamTarget, client: string | undefined) =>
      client !== undefined && client.startsWith('127.0.0.') && client !== '127.0.0.1' ? client : '',
    connect(target: UpstreamTarget, client: string | undefined) {
      connectedFor.push(client ?? '');
      return net.connect({ host: target.host, port: target.port, localAddress: client });
    },
  };
}

/** One request on `session`; `body` is written and the stream ended (no body: END_STREAM on the headers). */
export function h2Call(session: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: Buffer | string): Promise<H2Response> {
  return new Promise((resolve) => {
    const stream = session.request(headers, { endStream: body === undefined });
    const result: H2Response = { headers: undefined, body: Buffer.alloc(0), trailers: undefined, rstCode: undefined, error: undefined };
    const chunks: Buffer[] = [];
    stream.on('response', (h) => (result.headers = h));
    stream.on('trailers', (t) => (result.trailers = t));
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('error', (err) => (result.error = err));
    stream.on('close', () => {
      result.body = Buffer.concat(chunks);
      result.rstCode = stream.rstCode;
      resolve(result);
    });
    if (body !== undefined) stream.end(body);
  });
}
