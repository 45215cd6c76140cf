import { describe, expect, it } from 'vitest';
import { isTracemeshError } from '../../lib/errors.js';
import type { ErrorCode } from '../../lib/errors.js';
import { createConfigStore } from './create-store.js';
import type { ConfigStoreFlags } from './create-store.js';
import { DirectoryConfigStore } from './directory-store.js';
import { EtcdConfigStore } from './etcd-store.js';
import { isStoreError } from './store-errors.js';

function failure(flags: ConfigStoreFlags): unknown {
  try {
    createConfigStore(flags);
  } catch (err) {
    return err;
  }
  throw new Error('expected an error');
}

describe('createConfigStore', () => {
  it('gives the directory store by default and for --config-dir, the etcd store for --etcd', async () => {
    const byDefault = createConfigStore({});
    expect(byDefault).toBeInstanceOf(DirectoryConfigStore);
    expect(byDefault.location).toMatch(/\/\.tracemesh\/config$/);
    expect(createConfigStore({ configDir: '/tmp/x' }).location).toBe('/tmp/x');
    const etcd = createConfigStore({ etcd: 'http://127.0.0.1:2379,http://127.0.0.2:2379', etcdPrefix: '/mesh/a/' });
    expect(etcd).toBeInstanceOf(EtcdConfigStore);
    expect(etcd.location).toBe('http://127.0.0.1:2379,http://127.0.0.2:2379');
    // Not started: nothing connected, and close() before start() is fine.
    await etcd.close();
  });

  const bad: Array<[ConfigStoreFlags, ErrorCode, RegExp]> = [
    [{ configDir: 'a', etcd: 'http://h:1' }, 'TM_ERR_CLI_USAGE', /--config-dir and --etcd: give one/],
    [{ etcdPrefix: '/x/' }, 'TM_ERR_CLI_USAGE', /--etcd-prefix needs --etcd/],
    [{ configDir: ' ' }, 'TM_ERR_CLI_BAD_VALUE', /--config-dir: expected a directory/],
    [{ etcd: 'etcd:2379' }, 'TM_ERR_CLI_BAD_VALUE', /--etcd: 'etcd:2379' has no scheme/],
  ];
  it.each(bad)('refuses %j', (flags, code, message) => {
    const err = failure(flags);
    expect(isTracemeshError(err, code)).toBe(true);
    expect((err as Error).message).toMatch(message);
  });

  it('refuses a bad etcd prefix with the store\'s own code', () => {
    const err = failure({ etcd: 'http://h:1', etcdPrefix: 'no-slashes' });
    expect(isStoreError(err, 'TM_ERR_CP_STORE_BAD_ARGUMENT')).toBe(true);
    expect((err as Error).message).toMatch(/etcd key prefix: expected a path such as \/tracemesh\/config\//);
  });
});
