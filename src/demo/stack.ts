/**
 * What run-demo.ts needs of the running mesh, whichever way it was started:
 * explicit sidecars on loopback (explicit-stack.ts) or pods in network
 * namespaces with iptables capture (transparent-stack.ts). Every address
 * here is reachable from the demo process itself (the transparent stack
 * forwards ports out of its pods).
 */
import type { DemoPaths, DemoPrograms } from './paths.js';
import type { Workload } from './topology.js';

export interface ProcessExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A process the demo started and watches: its exit while the demo runs is a crash. */
export interface TrackedProcess {
  readonly label: string;
  readonly pid: number;
  /** The program and its arguments as spawned, for the state file. */
  readonly command: readonly string[];
  readonly exited: Promise<ProcessExit>;
  /** True once the demo asked it to stop: its exit is then expected. */
  readonly stopRequested: boolean;
  /** Its last output, for error messages. */
  tail(): string;
}

export interface StackContext {
  readonly paths: DemoPaths;
  readonly programs: DemoPrograms;
  readonly configDir: string;
  /** Called with every process as soon as it is started (before it is ready). */
  readonly adopt: (child: TrackedProcess) => void;
  /** One line of progress for people ("collector ready ..."). */
  readonly progress: (line: string) => void;
  /** Races a start-up step against a crash of any child and Ctrl-C. */
  readonly guard: <T>(step: Promise<T>) => Promise<T>;
}

/** A workload once its sidecar and app are up. */
export interface ReadyWorkload {
  readonly workload: Workload;
  /** The sidecar's admin port, reachable on 127.0.0.1 from the demo process. */
  readonly adminPort: number;
  /** The scenario clock's fault file for its app, when it plays faults. */
  readonly faultFile: string | undefined;
}

export interface StartedStack {
  readonly queryApiUrl: string;
  readonly controlPlaneUrl: string;
  /** web's front door (through its sidecar), on 127.0.0.1. */
  readonly entryPort: number;
  readonly workloads: readonly ReadyWorkload[];
  /** The lines that tell people where everything is. */
  urlLines(traceCommand: string): string[];
}

export interface DemoStack {
  /** Starts everything; what it started is stopped by stop(), also when start() failed half way. */
  start(): Promise<StartedStack>;
  /** Stops every process, apps first (they flush their spans), the collector last. Safe twice and after a failed start. */
  stop(say: (line: string) => void): Promise<void>;
  /** A second Ctrl-C: SIGKILL to everything at once, without waiting (runs right before process.exit). */
  killNow(): void;
}
