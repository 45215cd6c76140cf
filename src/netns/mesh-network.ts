/**
 * A mesh network: pods as network namespaces on one bridge, the way pods sit
 * on a node's bridge in a cluster, without touching the host. The bridge
 * lives in a namespace of the network's own (the "switch"); each pod is a
 * namespace joined to it by a veth pair created inside the switch with its
 * other end moved straight into the pod, so no interface ever appears in the
 * host's namespace. An `infra` pod holds the collector and control plane.
 * Names resolve through /etc/netns/<ns>/hosts.
 *
 * Everything created is recorded first and removed by teardown(), which also
 * runs when setup fails half way, when the process exits or is signalled
 * (exit-guard.ts), and for a crashed earlier run via cleanupStale().
 */
import { mkdirSync } from 'node:fs';
import { errorMessage } from '../lib/errors.js';
import { infraAddresses, podAddresses, subnetFor } from './addressing.js';
import type { Subnet } from './addressing.js';
import { guardProcessExit } from './exit-guard.js';
import type { ExitGuard } from './exit-guard.js';
import { makeNetnsEtcDir, writeNetnsEtc } from './etc-netns.js';
import { hostsFileText, namesOf, resolvConfText } from './hosts-file.js';
import type { HostEntry } from './hosts-file.js';
import { resolveMeshSpec } from './mesh-spec.js';
import type { MeshNetworkSpec } from './mesh-spec.js';
import { BRIDGE_NAME, INFRA_NAME, POD_INTERFACE, SWITCH_NAME, namespaceName, ownerPrefix, switchPortName } from './names.js';
import { addNamespace } from './namespaces.js';
import { NetnsError } from './netns-error.js';
import { OwnedResources } from './owned-resources.js';
import { PodProcess } from './pod-process.js';
import { checkProcessOptions } from './pod-process-options.js';
import type { PodProcessOptions } from './pod-process-options.js';
export type { PodProcessOptions } from './pod-process-options.js';
import { finishWithin } from './pod-run.js';
import { RELAY_SOURCE, openPortForward } from './port-forward.js';
import type { PortForward } from './port-forward.js';
import type { PodRunResult } from './pod-run.js';
import { ROOT_USER } from './process-user.js';
import { RevealPlanner } from './reveal-plan.js';
import { assertRoot, assertTools } from './root-check.js';
import { ipIn } from './run-command.js';
import { runtimeDirFor } from './runtime-dir.js';
import { cleanupStale } from './stale.js';

export interface Pod {
  name: string;
  /** The network namespace: `ip netns exec <namespace> …`. */
  namespace: string;
  ipv4: string;
  ipv6: string;
  /** The pod's interface on the bridge. */
  interfaceName: string;
  /** Every host name that resolves to this pod inside the network. */
  hostNames: string[];
}

const DEFAULT_RUN_TIMEOUT_MS = 30_000;
const DEFAULT_STOP_GRACE_MS = 5_000;

export class MeshNetwork {
  /** `<base><pid>`: the start of every name this network made. */
  readonly prefix: string;
  readonly subnet: Subnet;
  readonly switchNamespace: string;
  /** Names that resolve inside pods use this namespace: `b.<namespace>.svc.cluster.local`. */
  readonly k8sNamespace: string;
  /** What cleanupStale() removed before this network was built. */
  readonly staleRemoved: string[];
  private readonly podsByName = new Map<string, Pod>();
  private readonly resources = new OwnedResources();
  private readonly processes = new Set<PodProcess>();
  private readonly reveal: RevealPlanner;
  private readonly runtimeDir: () => string;
  private readonly forwards = new Set<PortForward>();
  private forwardCount = 0;
  private readonly guard: ExitGuard;
  private readonly podSpecs: ReadonlyArray<{ name: string; aliases: string[] }>;
  private tornDown = false;

  /** Use createMeshNetwork(). */
  private constructor(spec: MeshNetworkSpec) {
    const resolved = resolveMeshSpec(spec);
    assertRoot(undefined, spec.rootMessage);
    assertTools();
    this.staleRemoved = cleanupStale(resolved.base);
    this.prefix = ownerPrefix(resolved.base, process.pid);
    this.subnet = subnetFor(resolved.subnetIndex);
    this.switchNamespace = namespaceName(this.prefix, SWITCH_NAME);
    this.k8sNamespace = resolved.namespace;
    this.podSpecs = resolved.pods;
    resolved.pods.forEach((pod, i) => {
      const addresses = pod.name === INFRA_NAME ? infraAddresses(this.subnet) : podAddresses(this.subnet, i - 1);
      const entry: HostEntry = { name: pod.name, ...addresses, aliases: pod.aliases };
      this.podsByName.set(pod.name, {
        name: pod.name,
        namespace: namespaceName(this.prefix, pod.name),
        ...addresses,
        interfaceName: POD_INTERFACE,
        hostNames: namesOf(entry, resolved.namespace),
      });
    });
    const runtimeDir = runtimeDirFor(this.prefix);
    let runtimeDirMade = false;
    this.runtimeDir = () => {
      if (!runtimeDirMade) {
        mkdirSync(runtimeDir, { mode: 0o700 });
        this.resources.directory(runtimeDir);
        runtimeDirMade = true;
      }
      return runtimeDir;
    };
    this.reveal = new RevealPlanner(this.runtimeDir);
    // Armed before the first thing is created: a signal during setup still cleans up.
    this.guard = guardProcessExit(() => this.teardownNow());
  }

  static create(spec: MeshNetworkSpec): MeshNetwork {
    const network = new MeshNetwork(spec);
    try {
      network.build();
    } catch (err) {
      const failures = network.removeEverythingNow();
      if (failures.length === 0) throw err;
      throw new NetnsError('TM_ERR_NETNS_TEARDOWN', `${errorMessage(err)}; removing what was created also failed:\n  ${failures.join('\n  ')}`, {
        cause: err,
      });
    }
    return network;
  }

  private build(): void {
    const pods = this.podSpecs;
    const sw = this.switchNamespace;
    addNamespace(sw);
    this.resources.namespace(sw);
    ipIn(sw, ['link', 'set', 'lo', 'up']);
    ipIn(sw, ['link', 'add', BRIDGE_NAME, 'type', 'bridge']);
    ipIn(sw, ['link', 'set', BRIDGE_NAME, 'up']);
    const entries: HostEntry[] = pods.map((spec) => {
      const pod = this.pod(spec.name);
      return { name: pod.name, ipv4: pod.ipv4, ipv6: pod.ipv6, aliases: spec.aliases };
    });
    pods.forEach((spec, index) => {
      const pod = this.pod(spec.name);
      addNamespace(pod.namespace);
      this.resources.namespace(pod.namespace);
      makeNetnsEtcDir(pod.namespace);
      this.resources.etcFiles(pod.namespace);
      writeNetnsEtc(
        pod.namespace,
        new Map([
          ['hosts', hostsFileText(pod.namespace, entries, this.k8sNamespace)],
          ['resolv.conf', resolvConfText(this.k8sNamespace)],
        ]),
      );
      const port = switchPortName(index);
      // Made inside the switch, the pod's end moved straight into the pod: the host's namespace never holds either.
      ipIn(sw, ['link', 'add', port, 'type', 'veth', 'peer', 'name', POD_INTERFACE, 'netns', pod.namespace]);
      ipIn(sw, ['link', 'set', port, 'master', BRIDGE_NAME, 'up']);
      ipIn(pod.namespace, ['link', 'set', 'lo', 'up']);
      ipIn(pod.namespace, ['addr', 'add', `${pod.ipv4}/${this.subnet.ipv4PrefixLength}`, 'dev', POD_INTERFACE]);
      // nodad: the address is ours alone on this bridge, and duplicate detection would leave it unusable for a second or two.
      ipIn(pod.namespace, ['-6', 'addr', 'add', `${pod.ipv6}/${this.subnet.ipv6PrefixLength}`, 'dev', POD_INTERFACE, 'nodad']);
      ipIn(pod.namespace, ['link', 'set', POD_INTERFACE, 'up']);
    });
  }

  /** The pods, infra first. */
  pods(): Pod[] {
    return [...this.podsByName.values()];
  }

  /** The pod for the collector and the control plane (host names `infra`, `collector`, `control-plane` by default). */
  get infra(): Pod {
    return this.pod(INFRA_NAME);
  }

  pod(name: string): Pod {
    const pod = this.podsByName.get(name);
    if (pod === undefined) {
      throw new NetnsError('TM_ERR_NETNS_BAD_SPEC', `no pod '${name}' in this network (pods: ${[...this.podsByName.keys()].join(', ')})`);
    }
    return pod;
  }

  /** Starts a long-running program in a pod; teardown stops it if the caller has not. */
  spawn(podName: string, options: PodProcessOptions): PodProcess {
    if (this.tornDown) throw new NetnsError('TM_ERR_NETNS_PROCESS', `network ${this.prefix} is torn down; cannot start ${options.command}`);
    checkProcessOptions(options);
    const pod = this.pod(podName);
    const user = options.user ?? ROOT_USER;
    const proc = new PodProcess({
      spec: {
        namespace: pod.namespace,
        command: options.command,
        args: options.args ?? [],
        user,
        capabilities: options.capabilities ?? [],
        revealScript: this.reveal.scriptFor(user, options.reveal ?? []),
      },
      env: options.env ?? {},
      cwd: options.cwd,
      logFile: options.logFile,
      input: options.input,
      label: options.label ?? `${pod.name}:${options.command}`,
    });
    this.processes.add(proc);
    void proc.exited.then(() => this.processes.delete(proc));
    return proc;
  }

  /** Runs a short program in a pod to its end (killed at the deadline) and returns its exit and output. */
  run(podName: string, options: PodProcessOptions & { timeoutMs?: number }): Promise<PodRunResult> {
    return finishWithin(this.spawn(podName, options), options.timeoutMs ?? DEFAULT_RUN_TIMEOUT_MS);
  }

  /**
   * Makes TCP `port` of a pod (on its loopback, or `targetHost` in it)
   * reachable from this process at 127.0.0.1:<forward.port>, without any
   * interface or route in the host: see port-forward.ts.
   */
  async forward(podName: string, port: number, targetHost = '127.0.0.1'): Promise<PortForward> {
    if (!Number.isInteger(port) || port < 1 || port > 65_535) {
      throw new NetnsError('TM_ERR_NETNS_BAD_SPEC', `forward: port ${JSON.stringify(port)} is not an integer from 1 to 65535`);
    }
    const pod = this.pod(podName);
    const forward = await openPortForward(this.runtimeDir(), this.forwardCount++, (socketPath) =>
      this.spawn(pod.name, {
        command: process.execPath,
        args: ['-e', RELAY_SOURCE, socketPath, targetHost, String(port)],
        label: `${pod.name}:forward:${port}`,
      }),
    );
    this.forwards.add(forward);
    return forward;
  }

  /**
   * Stops every process (SIGTERM, SIGKILL after `graceMs`), then removes the
   * namespaces (with their veths and the bridge), the /etc/netns dirs and the
   * run-time dir. Safe twice; throws once at the end naming what could not be
   * removed, after trying everything.
   */
  async teardown(graceMs = DEFAULT_STOP_GRACE_MS): Promise<void> {
    this.tornDown = true;
    await Promise.allSettled([...this.forwards].map((forward) => forward.close()));
    const stops = await Promise.allSettled([...this.processes].map((proc) => proc.stop(graceMs)));
    const failures = stops.flatMap((result) => (result.status === 'rejected' ? [errorMessage(result.reason)] : []));
    failures.push(...this.removeEverythingNow());
    if (failures.length > 0) {
      throw new NetnsError('TM_ERR_NETNS_TEARDOWN', `tearing down network ${this.prefix} left things behind:\n  ${failures.join('\n  ')}`);
    }
  }

  /** SIGKILLs every process and removes everything without waiting: for exit handlers. Safe twice. */
  teardownNow(): void {
    const failures = this.removeEverythingNow();
    if (failures.length > 0) {
      throw new NetnsError('TM_ERR_NETNS_TEARDOWN', `tearing down network ${this.prefix} left things behind:\n  ${failures.join('\n  ')}`);
    }
  }

  private removeEverythingNow(): string[] {
    this.tornDown = true;
    // close() starts synchronously: sockets destroyed, listener closing; the relays die with the processes below.
    for (const forward of this.forwards) void forward.close();
    for (const proc of this.processes) proc.killNow();
    const failures = this.resources.removeAll();
    if (failures.length === 0) this.guard.dispose();
    return failures;
  }
}

/** Builds a mesh network (see MeshNetwork); throws, having removed everything it made, if any step fails. */
export function createMeshNetwork(spec: MeshNetworkSpec): MeshNetwork {
  return MeshNetwork.create(spec);
}
