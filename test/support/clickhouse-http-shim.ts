import { rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Session } from 'chdb';

/**
 * ClickHouse's HTTP interface (the subset @clickhouse/client uses) over the
 * real ClickHouse engine in chDB, because no ClickHouse server runs on this
 * machine (Debian's is 18.16, without DateTime64 and Map; no Docker). SQL,
 * settings, parameters and storage are ClickHouse's own; only the HTTP framing
 * is this file's: `?query=` or the body is the statement, other URL parameters
 * are settings or `param_*` query parameters, and an INSERT's rows come in the
 * body. Each request gets a session of its own so settings do not leak.
 */
export interface ClickHouseHttpShim {
  url: string;
  requests: number;
  close(): Promise<void>;
}

const IGNORED_PARAMETERS = new Set(['query', 'database', 'query_id', 'default_format', 'enable_http_compression', 'wait_end_of_query', 'session_id']);
const INSERT_WITH_DATA = /^\s*INSERT\s+INTO\s+(\S+)\s*(?:\(([^)]*)\))?\s*(?:SETTINGS\s+.*?)?FORMAT\s+(\w+)\s*$/is;

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const body = Buffer.concat(chunks);
  return req.headers['content-encoding'] === 'gzip' ? gunzipSync(body) : body;
}

function literal(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

export async function startClickHouseHttpShim(dataDir: string, port = 0): Promise<ClickHouseHttpShim> {
  const shim = { url: '', requests: 0, close: async () => {} };
  const server = createServer((req, res) => {
    shim.requests++;
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://shim');
      if (url.pathname === '/ping') {
        res.end('Ok.\n');
        return;
      }
      const body = await readBody(req);
      const session = new Session(dataDir);
      try {
        for (const [name, value] of url.searchParams) {
          if (!IGNORED_PARAMETERS.has(name)) await session.queryAsync(`SET ${name} = ${literal(value)}`);
        }
        const inUrl = url.searchParams.get('query');
        let out: Buffer = Buffer.alloc(0);
        const insert = inUrl === null ? null : INSERT_WITH_DATA.exec(inUrl);
        if (insert !== null && body.length > 0) {
          // As a server does with `INSERT ... FORMAT X` and a body: the rows are
          // parsed with the insertion table's own column types.
          const file = path.join(dataDir, `shim-insert-${process.pid}-${shim.requests}`);
          writeFileSync(file, body);
          try {
            await session.queryAsync(
              `INSERT INTO ${insert[1]} ${insert[2] !== undefined ? `(${insert[2]})` : ''} ` +
                `SETTINGS use_structure_from_insertion_table_in_table_functions = 1 SELECT * FROM file(${literal(file)}, ${insert[3]})`,
            );
          } finally {
            rmSync(file, { force: true });
          }
        } else {
          const sql = inUrl ?? body.toString('utf8');
          out = Buffer.from((await session.queryAsync(sql, { format: url.searchParams.get('default_format') ?? 'TabSeparated' })).bytes());
        }
        res.writeHead(200, { 'content-type': 'text/plain; charset=UTF-8', 'x-clickhouse-summary': '{}' });
        res.end(out);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        const code = /Code: (\d+)/.exec(message)?.[1] ?? '1000';
        res.writeHead(500, { 'x-clickhouse-exception-code': code, 'content-type': 'text/plain; charset=UTF-8' });
        res.end(message.startsWith('Code:') ? message : `Code: ${code}. DB::Exception: ${message}`);
      } finally {
        session.close();
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  shim.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  shim.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return shim;
}
