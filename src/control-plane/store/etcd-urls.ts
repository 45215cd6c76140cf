/**
 * `--etcd http://127.0.0.1:2379[,http://…]`: the client URLs of one etcd
 * cluster, checked before anything connects so that a typo is an error
 * naming the flag rather than a long wait for a host that cannot exist.
 */
import { TracemeshError } from '../../lib/errors.js';

const DEFAULT_ETCD_PORT = '2379';

/** Normalised URLs (`http://host:port`), in the order given. `what` names the flag for messages. */
export function parseEtcdUrls(text: string, what = '--etcd'): string[] {
  const parts = text.split(',').map((part) => part.trim());
  if (text.trim().length === 0 || parts.some((part) => part.length === 0)) {
    throw new TracemeshError('TM_ERR_CLI_BAD_VALUE', `${what}: expected one or more etcd client URLs separated by commas (e.g. http://127.0.0.1:2379), got '${text}'`);
  }
  return parts.map((part) => {
    if (!part.includes('://')) {
      throw new TracemeshError('TM_ERR_CLI_BAD_VALUE', `${what}: '${part}' has no scheme; write http://${part} (or https://)`);
    }
    let url: URL;
    try {
      url = new URL(part);
    } catch {
      throw new TracemeshError('TM_ERR_CLI_BAD_VALUE', `${what}: '${part}' is not a URL (expected e.g. http://127.0.0.1:2379)`);
    }
    const problem =
      url.protocol !== 'http:' && url.protocol !== 'https:'
        ? `the scheme must be http or https, not ${url.protocol.replace(/:$/, '')}`
        : url.hostname.length === 0
          ? 'it has no host'
          : url.username !== '' || url.password !== ''
            ? 'user names and passwords in the URL are not supported'
            : (url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== ''
              ? 'an etcd client URL has no path, query or fragment'
              : undefined;
    if (problem !== undefined) throw new TracemeshError('TM_ERR_CLI_BAD_VALUE', `${what}: '${part}': ${problem}`);
    // URL drops a port equal to the scheme's default (http://h:80): keep what was written.
    const written = /^[a-z]+:\/\/[^/]*:(\d+)\/?$/i.exec(part)?.[1];
    const port = url.port !== '' ? url.port : written !== undefined ? String(Number(written)) : DEFAULT_ETCD_PORT;
    return `${url.protocol}//${url.hostname}:${port}`;
  });
}
