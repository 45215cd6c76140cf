/**
 * What one run created, in creation order, so teardown removes exactly that
 * (never a namespace someone else made with a colliding name) in reverse, and
 * can run any number of times: each thing leaves the list once it is gone.
 */
import { rmSync } from 'node:fs';
import { errorMessage } from '../lib/errors.js';
import { removeNetnsEtc } from './etc-netns.js';
import { deleteNamespace } from './namespaces.js';

type Resource = { kind: 'namespace'; name: string } | { kind: 'etc'; namespace: string } | { kind: 'dir'; path: string };

function remove(resource: Resource): void {
  switch (resource.kind) {
    case 'namespace':
      deleteNamespace(resource.name);
      return;
    case 'etc':
      removeNetnsEtc(resource.namespace);
      return;
    case 'dir':
      rmSync(resource.path, { recursive: true, force: true });
      return;
  }
}

function describeResource(resource: Resource): string {
  switch (resource.kind) {
    case 'namespace':
      return `network namespace ${resource.name}`;
    case 'etc':
      return `/etc/netns/${resource.namespace}`;
    case 'dir':
      return resource.path;
  }
}

export class OwnedResources {
  private readonly resources: Resource[] = [];

  /**
   * Record right after the creating step succeeded, never before: a step that
   * failed because the name was taken must not make teardown remove someone
   * else's thing.
   */
  namespace(name: string): void {
    this.resources.push({ kind: 'namespace', name });
  }

  etcFiles(namespace: string): void {
    this.resources.push({ kind: 'etc', namespace });
  }

  directory(path: string): void {
    this.resources.push({ kind: 'dir', path });
  }

  namespaces(): string[] {
    return this.resources.flatMap((r) => (r.kind === 'namespace' ? [r.name] : []));
  }

  isEmpty(): boolean {
    return this.resources.length === 0;
  }

  /** Removes everything newest first, going on past failures; returns one line per failure (kept for the next call). */
  removeAll(): string[] {
    const failures: string[] = [];
    const kept: Resource[] = [];
    while (this.resources.length > 0) {
      const resource = this.resources.pop() as Resource;
      try {
        remove(resource);
      } catch (err) {
        failures.push(`${describeResource(resource)}: ${errorMessage(err)}`);
        kept.unshift(resource);
      }
    }
    this.resources.push(...kept);
    return failures;
  }
}

/** Removes a namespace with what runs in it and its /etc/netns files (for leftovers of crashed runs). */
export function removeNamespaceAndFiles(name: string): void {
  deleteNamespace(name);
  removeNetnsEtc(name);
}
