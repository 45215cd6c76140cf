import net from 'node:net';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stockFor } from './catalog.js';
import { start } from './inventory.js';
import { MAX_LINE_BYTES } from './inventory-protocol.js';
import type { RunningApp } from './lifecycle.js';

let inventory: RunningApp;
const clients: Socket[] = [];

beforeAll(async () => {
  inventory = await start({ port: 0 });
});

afterAll(async () => {
  for (const client of clients) client.destroy();
  await inventory?.stop();
});

/** A line client: send() writes, next() resolves with the next answer line, closed() when the server hangs up. */
async function connect(): Promise<{ send(text: string): void; next(): Promise<string>; closed: Promise<void> }> {
  const socket = net.connect({ host: '127.0.0.1', port: inventory.port });
  clients.push(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const lines: string[] = [];
  const waiting: Array<(line: string) => void> = [];
  let buffered = '';
  socket.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    for (let newline = buffered.indexOf('\n'); newline !== -1; newline = buffered.indexOf('\n')) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      const waiter = waiting.shift();
      if (waiter !== undefined) waiter(line);
      else lines.push(line);
    }
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return {
    send: (text) => socket.write(text),
    next: () => {
      const line = lines.shift();
      if (line !== undefined) return Promise.resolve(line);
      return Promise.race([
        new Promise<string>((resolve) => waiting.push(resolve)),
        closed.then(() => Promise.reject(new Error('connection closed before an answer line'))),
      ]);
    },
    closed,
  };
}

describe('inventory line server', () => {
  it('answers STOCK lines, several per connection, \\r\\n or \\n, with or without a traceparent', async () => {
    const client = await connect();
    client.send('STOCK 42\nSTOCK sku-7\r\n');
    expect(await client.next()).toBe(`42 ${stockFor('42')}`);
    expect(await client.next()).toBe(`sku-7 ${stockFor('sku-7')}`);
    client.send('STOCK 42 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\n');
    expect(await client.next()).toBe(`42 ${stockFor('42')}`);
  });

  it('answers ERR to anything else and keeps the connection', async () => {
    const client = await connect();
    client.send('HELLO\nSTOCK\nSTOCK 42 not-a-traceparent\nSTOCK 1\n');
    expect(await client.next()).toBe("ERR unknown command 'HELLO' (expected STOCK <id>)");
    expect(await client.next()).toMatch(/^ERR expected STOCK <id>/);
    expect(await client.next()).toMatch(/^ERR malformed traceparent/);
    expect(await client.next()).toBe(`1 ${stockFor('1')}`);
  });

  it('closes the connection after a line longer than the limit', async () => {
    const client = await connect();
    client.send('STOCK '.padEnd(MAX_LINE_BYTES + 10, 'x'));
    expect(await client.next()).toBe(`ERR line longer than ${MAX_LINE_BYTES} bytes; closing`);
    await client.closed;
  });

  it('stop() closes open connections and is safe twice', async () => {
    const other = await start({ port: 0 });
    const socket = net.connect({ host: '127.0.0.1', port: other.port });
    clients.push(socket);
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
    await Promise.all([other.stop(), other.stop()]);
    await closed;
    const refused = await new Promise<string>((resolve) => {
      const again = net.connect({ host: '127.0.0.1', port: other.port });
      again.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? ''));
      again.once('connect', () => {
        again.destroy();
        resolve('connected');
      });
    });
    expect(refused).toBe('ECONNREFUSED');
  });
});
