/**
 * Every name the topology puts in a global place (network namespaces under
 * /run/netns, /etc/netns/<ns>, temp dirs) is `<base><ownerPid>-<what>`: the
 * owner's pid keeps parallel runs apart, and lets a later run recognise what a
 * crashed run left (its owner is no longer alive). Interface names only live
 * inside namespaces of our own, so they need no prefix.
 */

/**
 * Short, because it starts every namespace name. It ends with a letter so that
 * `<base><pid>` is never read with another base's digits: base `tm1` with pid
 * 2 and base `tm` with pid 12 would both make `tm12-`.
 */
export const BASE_PATTERN = /^[a-z]([a-z0-9]{0,6}[a-z])?$/;
/** A Kubernetes-style DNS label: what a pod or namespace name may be. */
export const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** A host name of one or more DNS labels, for aliases. */
export const DNS_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** The switch namespace and the infra pod have these names; no pod may take them. */
export const SWITCH_NAME = 'switch';
export const INFRA_NAME = 'infra';
export const RESERVED_POD_NAMES: ReadonlySet<string> = new Set([SWITCH_NAME, INFRA_NAME]);

/** The bridge inside the switch namespace. */
export const BRIDGE_NAME = 'tmbr0';
/** Every pod's end of its veth pair, as in a Kubernetes pod. */
export const POD_INTERFACE = 'eth0';

/** `<base><pid>`: the prefix of every name one run creates. */
export function ownerPrefix(base: string, pid: number): string {
  return `${base}${pid}`;
}

/** The network namespace of `what` (a pod name or `switch`). */
export function namespaceName(prefix: string, what: string): string {
  return `${prefix}-${what}`;
}

/** The switch namespace's end of pod number `index`'s veth pair (at most 15 characters, unique in the switch). */
export function switchPortName(index: number): string {
  return `vp${index}`;
}

/**
 * The owner pid encoded in a name made by `ownerPrefix(base, pid)` (alone or
 * followed by `-<what>`), or undefined when the name is not one of `base`'s.
 * `tm12-a` and `tm12` are base `tm`'s (pid 12); `tm1x12-a` and `tm12a` are not.
 */
export function ownerPidOf(base: string, name: string): number | undefined {
  if (!name.startsWith(base)) return undefined;
  const match = /^(\d{1,10})(?:-|$)/.exec(name.slice(base.length));
  if (match === null) return undefined;
  const pid = Number(match[1]);
  return pid > 0 ? pid : undefined;
}
