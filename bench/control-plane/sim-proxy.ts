/**
 * A lightweight proxy for the benchmark: it speaks the real protocol
 * (registration, the NDJSON discovery stream, an ACK POST per snapshot or
 * delta) and does nothing else: no validation, no listeners, no merging of
 * deltas, and of each line it reads only the version and nonce it ACKs
 * (it ACKs every version, so the control plane's deltas always fit). It notes when the
 * control plane answered each ACK, which is when the control plane knows
 * the proxy has the version.
 */
import http from 'node:http';
import { DISCOVERY_ACK_PATH, DISCOVERY_STREAM_PATH, REGISTRY_PATH } from '../../src/control-plane/protocol.js';

/** The start of a config or delta line as the distributor writes it (protocol.ts): type, version, nonce, then the rest. */
const CONFIG_HEAD = /^\{"type":"(?:config|delta)","version":"([^"]+)","nonce":"([^"]+)"/;
const HEAD_BYTES = 256;

/**
 * The first HEAD_BYTES of every line of a byte stream. A thousand simulated
 * proxies share this process: parsing every snapshot whole (what a real
 * proxy does, in its own process) would make the benchmark measure this
 * process rather than the control plane.
 */
class HeadOfLines {
  private head: Buffer[] = [];
  private headBytes = 0;

  push(chunk: Buffer): string[] {
    const heads: string[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(10, start); ; nl = chunk.indexOf(10, start)) {
      const end = nl < 0 ? chunk.length : nl;
      if (this.headBytes < HEAD_BYTES && end > start) {
        const piece = chunk.subarray(start, Math.min(end, start + HEAD_BYTES - this.headBytes));
        this.head.push(piece);
        this.headBytes += piece.length;
      }
      if (nl < 0) break;
      if (this.headBytes > 0) heads.push(Buffer.concat(this.head).toString('utf8'));
      this.head = [];
      this.headBytes = 0;
      start = nl + 1;
    }
    return heads;
  }
}

export class SimulatedProxy {
  /** Version → performance.now() when its ACK was answered. */
  readonly ackedAt = new Map<string, number>();
  lastVersion = '';
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  private stream: http.ClientRequest | undefined;
  private waiter: (() => void) | undefined;
  private failure = '';

  constructor(
    readonly id: string,
    private readonly port: number,
    readonly index: number,
    /** Called once per version, when its ACK is answered; atMs: performance.timeOrigin + performance.now() (comparable across processes). */
    private readonly onAck: (proxy: SimulatedProxy, version: string, atMs: number) => void,
  ) {}

  /** Registers and opens the stream; resolves at the first snapshot's ACK. */
  async connect(): Promise<void> {
    // Addresses in 127.1.0.0/16 so a thousand endpoints are distinct without a thousand listeners.
    const registration = { id: this.id, service: `sim-${this.index % 50}`, namespace: 'bench', version: 'v1', labels: {}, address: `127.1.${Math.floor(this.index / 250)}.${(this.index % 250) + 1}`, port: 8080 };
    const registered = await this.post(REGISTRY_PATH, registration);
    if (registered !== 200) throw new Error(`${this.id}: registering was answered ${registered}`);
    const first = new Promise<void>((resolve) => (this.waiter = resolve));
    this.open();
    await first;
  }

  close(): void {
    this.stream?.destroy();
    this.agent.destroy();
  }

  /** Why the stream failed, '' while it is fine. */
  get problem(): string {
    return this.failure;
  }

  private open(): void {
    const req = http.get({ host: '127.0.0.1', port: this.port, path: `${DISCOVERY_STREAM_PATH}?proxy=${encodeURIComponent(this.id)}&serving=`, agent: false }, (res) => {
      if (res.statusCode !== 200) {
        this.failure = `stream answered ${res.statusCode ?? 0}`;
        res.resume();
        return;
      }
      const lines = new HeadOfLines();
      res.on('data', (chunk: Buffer) => {
        for (const head of lines.push(chunk)) {
          // The fields a proxy ACKs with lead every config line; the documents are not read (see HeadOfLines).
          const match = CONFIG_HEAD.exec(head);
          if (match === null) {
            if (!head.startsWith('{"type":"ping"')) this.failure = `unexpected line: ${head.slice(0, 80)}`;
            continue;
          }
          const version = match[1] as string;
          const nonce = match[2] as string;
          this.lastVersion = version;
          void this.post(DISCOVERY_ACK_PATH, { proxy: this.id, version, nonce, status: 'ACK' }).then((status) => {
            if (status !== 204 && status !== 409) this.failure = `ACK answered ${status}`;
            if (!this.ackedAt.has(version)) {
              const at = performance.timeOrigin + performance.now();
              this.ackedAt.set(version, at);
              this.onAck(this, version, at);
            }
            const waiter = this.waiter;
            this.waiter = undefined;
            waiter?.();
          });
        }
      });
      res.on('close', () => {
        if (this.failure === '') this.failure = 'the stream closed';
      });
    });
    req.on('error', (err) => (this.failure = err.message));
    this.stream = req;
  }

  private post(path: string, body: unknown): Promise<number> {
    const payload = JSON.stringify(body);
    return new Promise((resolve) => {
      const req = http.request({ host: '127.0.0.1', port: this.port, path, method: 'POST', agent: this.agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', (err) => {
        this.failure = `${path}: ${err.message}`;
        resolve(0);
      });
      req.end(payload);
    });
  }
}
