/**
 * What a mesh network is made of, checked before anything is created: every
 * problem is reported at once, each with where it is (`pods[2].name`).
 */
import { MAX_PODS, MAX_SUBNET_INDEX, defaultSubnetIndex } from './addressing.js';
import { namesOf } from './hosts-file.js';
import { BASE_PATTERN, DNS_LABEL, DNS_NAME, INFRA_NAME, RESERVED_POD_NAMES } from './names.js';
import { NetnsError } from './netns-error.js';

export interface PodSpec {
  /** A DNS label; the pod's network namespace is `<base><pid>-<name>`. */
  name: string;
  /** More host names for the pod's addresses. */
  aliases?: readonly string[];
}

export interface MeshNetworkSpec {
  /** Starts every global name (1-8 lowercase letters/digits, first and last a letter); the owner's pid follows it. */
  base: string;
  /** The workload pods; an `infra` pod for the collector and control plane is always added. */
  pods: readonly PodSpec[];
  /** Host names of the infra pod; default `collector` and `control-plane`. */
  infraAliases?: readonly string[];
  /** The Kubernetes-style namespace in the pods' DNS names (`b.<namespace>.svc.cluster.local`); default `default`. */
  namespace?: string;
  /** Picks 10.77.<index>.0/24 and fd00:77:0:<index>::/64; default derived from the pid. */
  subnetIndex?: number;
  /** The error when not root; default says the system tests need root. */
  rootMessage?: string;
}

export interface ResolvedMeshSpec {
  base: string;
  /** The infra pod first, then the workload pods in the spec's order. */
  pods: Array<{ name: string; aliases: string[] }>;
  namespace: string;
  subnetIndex: number;
}

export const DEFAULT_INFRA_ALIASES: readonly string[] = ['collector', 'control-plane'];

function checkAliases(value: unknown, where: string, problems: string[]): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    problems.push(`${where}: expected a list of host names`);
    return [];
  }
  const out: string[] = [];
  value.forEach((alias: unknown, i) => {
    if (typeof alias !== 'string' || !DNS_NAME.test(alias) || alias.length > 253) {
      problems.push(`${where}[${i}]: ${JSON.stringify(alias)} is not a host name (lowercase DNS labels joined by dots)`);
    } else {
      out.push(alias);
    }
  });
  return out;
}

export function resolveMeshSpec(spec: MeshNetworkSpec, pid: number = process.pid): ResolvedMeshSpec {
  const problems: string[] = [];
  if (typeof spec.base !== 'string' || !BASE_PATTERN.test(spec.base)) {
    problems.push(`base: ${JSON.stringify(spec.base)} is not 1-8 lowercase letters and digits starting and ending with a letter`);
  }
  const namespace = spec.namespace ?? 'default';
  if (typeof namespace !== 'string' || !DNS_LABEL.test(namespace)) {
    problems.push(`namespace: ${JSON.stringify(namespace)} is not a DNS label`);
  }
  const subnetIndex = spec.subnetIndex ?? defaultSubnetIndex(pid);
  if (!Number.isInteger(subnetIndex) || subnetIndex < 0 || subnetIndex > MAX_SUBNET_INDEX) {
    problems.push(`subnetIndex: ${JSON.stringify(subnetIndex)} is not an integer from 0 to ${MAX_SUBNET_INDEX}`);
  }
  const pods: Array<{ name: string; aliases: string[] }> = [
    { name: INFRA_NAME, aliases: checkAliases(spec.infraAliases ?? DEFAULT_INFRA_ALIASES, 'infraAliases', problems) },
  ];
  if (!Array.isArray(spec.pods)) {
    problems.push('pods: expected a list of { name, aliases? }');
  } else {
    if (spec.pods.length > MAX_PODS - 1) problems.push(`pods: ${spec.pods.length} pods, at most ${MAX_PODS - 1} fit on one subnet`);
    spec.pods.forEach((pod: PodSpec, i) => {
      const name: unknown = pod?.name;
      if (typeof name !== 'string' || !DNS_LABEL.test(name)) {
        problems.push(`pods[${i}].name: ${JSON.stringify(name)} is not a DNS label (lowercase letters, digits and '-', at most 63)`);
        return;
      }
      if (RESERVED_POD_NAMES.has(name)) {
        problems.push(`pods[${i}].name: '${name}' is reserved (the network adds it itself)`);
        return;
      }
      if (pods.some((other) => other.name === name)) {
        problems.push(`pods[${i}].name: '${name}' is listed twice`);
        return;
      }
      pods.push({ name, aliases: checkAliases(pod.aliases, `pods[${i}].aliases`, problems) });
    });
  }
  // A host name must mean one pod: `b` as another pod's alias would make lookups depend on file order.
  const owner = new Map<string, string>();
  for (const pod of pods) {
    for (const hostName of namesOf({ name: pod.name, ipv4: '', ipv6: '', aliases: pod.aliases }, namespace)) {
      const previous = owner.get(hostName);
      if (previous !== undefined && previous !== pod.name) problems.push(`host name '${hostName}' is given to both '${previous}' and '${pod.name}'`);
      else owner.set(hostName, pod.name);
    }
  }
  if (problems.length > 0) {
    throw new NetnsError('TM_ERR_NETNS_BAD_SPEC', `mesh network spec is invalid:\n  ${problems.join('\n  ')}`);
  }
  return { base: spec.base, pods, namespace, subnetIndex };
}
