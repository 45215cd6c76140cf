/**
 * `tracemesh control-plane [--config-dir DIR | --etcd URL[,URL…]]` → the
 * config store: a directory by default (one control plane), etcd when
 * several control-plane replicas share one configuration.
 */
import { TracemeshError } from '../../lib/errors.js';
import { DEFAULT_CONFIG_DIR, DirectoryConfigStore } from './directory-store.js';
import { EtcdConfigStore } from './etcd-store.js';
import { parseEtcdUrls } from './etcd-urls.js';
import type { ConfigStore } from './types.js';

export interface ConfigStoreFlags {
  /** --config-dir */
  readonly configDir?: string;
  /** --etcd */
  readonly etcd?: string;
  /** --etcd-prefix (default /tracemesh/config/) */
  readonly etcdPrefix?: string;
}

/** The store the flags choose, not yet started. Throws TM_ERR_CLI_USAGE or TM_ERR_CLI_BAD_VALUE naming the flag. */
export function createConfigStore(flags: ConfigStoreFlags): ConfigStore {
  if (flags.configDir !== undefined && flags.etcd !== undefined) {
    throw new TracemeshError('TM_ERR_CLI_USAGE', '--config-dir and --etcd: give one (a directory for one control plane, etcd for several replicas)');
  }
  if (flags.etcd !== undefined) {
    return new EtcdConfigStore({ urls: parseEtcdUrls(flags.etcd, '--etcd'), ...(flags.etcdPrefix !== undefined ? { prefix: flags.etcdPrefix } : {}) });
  }
  if (flags.etcdPrefix !== undefined) throw new TracemeshError('TM_ERR_CLI_USAGE', '--etcd-prefix needs --etcd');
  if (flags.configDir !== undefined && flags.configDir.trim().length === 0) throw new TracemeshError('TM_ERR_CLI_BAD_VALUE', '--config-dir: expected a directory, got an empty value');
  return new DirectoryConfigStore({ dir: flags.configDir ?? DEFAULT_CONFIG_DIR });
}
