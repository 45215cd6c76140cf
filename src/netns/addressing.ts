/**
 * Addresses of one mesh network. Pods of one run sit on one /24 and one /64,
 * so no route is needed: every pod reaches every other over the bridge.
 * Networks of different runs live in different switch namespaces and never
 * see each other; the subnet index only keeps their addresses distinct so
 * logs and captures of parallel runs do not look alike.
 */

export const MAX_SUBNET_INDEX = 255;
/** Host numbers: .1 is left free (a gateway if one is ever needed), infra is .2, pods start at .10. */
const INFRA_HOST = 2;
const FIRST_POD_HOST = 10;
export const MAX_PODS = 254 - FIRST_POD_HOST + 1;

export interface PodAddresses {
  ipv4: string;
  ipv6: string;
}

export interface Subnet {
  index: number;
  /** e.g. 10.77.5.0/24 */
  ipv4Cidr: string;
  /** e.g. fd00:77:0:5::/64 (a ULA prefix) */
  ipv6Cidr: string;
  ipv4PrefixLength: 24;
  ipv6PrefixLength: 64;
}

function ipv4Base(index: number): string {
  return `10.77.${index}`;
}

function ipv6Base(index: number): string {
  return `fd00:77:0:${index.toString(16)}`;
}

/** The subnet of network `index` (0..255). */
export function subnetFor(index: number): Subnet {
  if (!Number.isInteger(index) || index < 0 || index > MAX_SUBNET_INDEX) {
    throw new RangeError(`subnet index ${index} is not an integer from 0 to ${MAX_SUBNET_INDEX}`);
  }
  return {
    index,
    ipv4Cidr: `${ipv4Base(index)}.0/24`,
    ipv6Cidr: `${ipv6Base(index)}::/64`,
    ipv4PrefixLength: 24,
    ipv6PrefixLength: 64,
  };
}

function hostAddresses(subnet: Subnet, host: number): PodAddresses {
  return { ipv4: `${ipv4Base(subnet.index)}.${host}`, ipv6: `${ipv6Base(subnet.index)}::${host.toString(16)}` };
}

export function infraAddresses(subnet: Subnet): PodAddresses {
  return hostAddresses(subnet, INFRA_HOST);
}

/** The addresses of pod number `podIndex` (0-based, in the order the spec lists the pods). */
export function podAddresses(subnet: Subnet, podIndex: number): PodAddresses {
  if (!Number.isInteger(podIndex) || podIndex < 0 || podIndex >= MAX_PODS) {
    throw new RangeError(`pod index ${podIndex} is not an integer from 0 to ${MAX_PODS - 1}`);
  }
  return hostAddresses(subnet, FIRST_POD_HOST + podIndex);
}

/** A default subnet index for a process, so parallel runs get different addresses without asking. */
export function defaultSubnetIndex(pid: number): number {
  return pid % (MAX_SUBNET_INDEX + 1);
}
