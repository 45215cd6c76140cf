/** A real control plane for tests: loopback, port 0 unless told, a directory store in a temp dir. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ControlPlane, DEFAULT_CONTROL_PLANE_TIMING, type ControlPlaneOptions } from '../../src/control-plane/server.js';
import { DirectoryConfigStore } from '../../src/control-plane/store/directory-store.js';

export interface TestControlPlane {
  readonly controlPlane: ControlPlane;
  /** http://127.0.0.1:PORT */
  readonly url: string;
  /** The config directory (a temp dir removed by stop(), unless it was given). */
  readonly dir: string;
  /** What the control plane logged. */
  readonly logs: string[];
  /** Stops the control plane; safe twice. */
  stop(): Promise<void>;
}

export async function startTestControlPlane(options: { dir?: string; port?: number } & Partial<Omit<ControlPlaneOptions, 'store' | 'log'>> = {}): Promise<TestControlPlane> {
  const { dir: givenDir, ...rest } = options;
  const ownDir = givenDir === undefined;
  const dir = givenDir ?? mkdtempSync(path.join(tmpdir(), 'tracemesh-cp-test-'));
  const logs: string[] = [];
  const controlPlane = new ControlPlane({
    ...DEFAULT_CONTROL_PLANE_TIMING,
    // Tests start control planes from nothing: no proxy has anything to lose.
    startupGraceMs: 0,
    host: '127.0.0.1',
    port: 0,
    maxProxies: 1_000,
    ...rest,
    store: new DirectoryConfigStore({ dir, pollIntervalMs: 50 }),
    log: (message) => logs.push(message),
  });
  const stop = async (): Promise<void> => {
    await controlPlane.stop();
    if (ownDir) rmSync(dir, { recursive: true, force: true });
  };
  try {
    await controlPlane.start();
  } catch (err) {
    await stop();
    throw err;
  }
  return { controlPlane, url: `http://127.0.0.1:${controlPlane.port}`, dir, logs, stop };
}

/** A Service document as YAML. */
export function serviceYaml(name: string, port: number, extra = ''): string {
  return `apiVersion: tracemesh.dev/v1
kind: Service
metadata: { name: ${name}, namespace: default }
spec:
  ports: [{ name: http, port: ${port}, protocol: http }]
${extra}`;
}
