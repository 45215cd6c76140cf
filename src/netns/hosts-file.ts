/**
 * The text of /etc/netns/<ns>/hosts and resolv.conf. `ip netns exec` bind-mounts
 * every file of /etc/netns/<ns>/ over /etc/, so inside a pod `b` and
 * `b.default.svc.cluster.local` resolve from these files alone, the way
 * cluster DNS names work in a Kubernetes pod.
 */

export interface HostEntry {
  /** The pod's own name; the first name on its lines. */
  name: string;
  ipv4: string;
  ipv6: string;
  /** More names for the same addresses (e.g. `collector` for the infra pod). */
  aliases: readonly string[];
}

/** Every name a pod answers to: `b`, `b.default`, `b.default.svc`, `b.default.svc.cluster.local`, then the aliases. */
export function namesOf(entry: HostEntry, namespace: string): string[] {
  const names = [entry.name, `${entry.name}.${namespace}`, `${entry.name}.${namespace}.svc`, `${entry.name}.${namespace}.svc.cluster.local`];
  for (const alias of entry.aliases) if (!names.includes(alias)) names.push(alias);
  return names;
}

/** The hosts file for namespace `nsName`: loopback first, then every pod of the network (the pod itself included) on IPv4 and IPv6. */
export function hostsFileText(nsName: string, entries: readonly HostEntry[], namespace: string): string {
  const lines = [
    `# written by tracemesh for network namespace ${nsName}; removed when the network is torn down`,
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
  ];
  for (const entry of entries) lines.push(`${entry.ipv4}\t${namesOf(entry, namespace).join(' ')}`);
  for (const entry of entries) lines.push(`${entry.ipv6}\t${namesOf(entry, namespace).join(' ')}`);
  return `${lines.join('\n')}\n`;
}

/**
 * A resolv.conf that makes an unknown name fail at once: the host's DNS server
 * is not reachable from a pod, and glibc would wait for it (seconds per try).
 * 127.0.0.1 in the pod has no DNS server, so a query is refused immediately.
 */
export function resolvConfText(namespace: string): string {
  return [
    '# written by tracemesh: names come from the hosts file; no DNS server in the pod',
    `search ${namespace}.svc.cluster.local svc.cluster.local cluster.local`,
    'nameserver 127.0.0.1',
    'options ndots:5 timeout:1 attempts:1',
    '',
  ].join('\n');
}
