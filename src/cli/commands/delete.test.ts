import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closedPort, runCaptured } from '../../../test/support/api-fixtures.js';
import { serviceYaml, startTestControlPlane, type TestControlPlane } from '../../../test/support/control-plane.js';
import { deleteCommand } from './delete.js';

const ROUTE = `apiVersion: tracemesh.dev/v1
kind: Route
metadata: { name: web }
spec:
  hosts: [web]
  http: [{ name: all, destinations: [{ service: web, port: 8080 }] }]
`;

let cp: TestControlPlane;

beforeAll(async () => {
  cp = await startTestControlPlane();
  const text = [serviceYaml('web', 8080), serviceYaml('api', 9000), ROUTE].join('---\n');
  const answer = await fetch(`${cp.url}/api/v1/config`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sources: [{ file: 'set.yaml', text }] }) });
  if (answer.status !== 200) throw new Error(`setting up: ${answer.status} ${await answer.text()}`);
});

afterAll(async () => {
  await cp?.stop();
});

function del(...argv: string[]): ReturnType<typeof runCaptured> {
  return runCaptured([deleteCommand], ['delete', ...argv, '--control-plane', cp.url]);
}

async function exists(kind: string, name: string): Promise<boolean> {
  return (await fetch(`${cp.url}/api/v1/config/${kind}/default/${name}`)).status === 200;
}

describe('tracemesh delete', () => {
  it('refuses to delete a Service a Route still uses, listing the problems; nothing changes', async () => {
    const result = await del('service', 'web');
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^tracemesh delete: Service default\/web was not deleted: the rest of the configuration would be invalid:\n {2}<stored configuration>: document \d \(Route web\): spec\.hosts\[0\]: .*web.*\n/);
    expect(await exists('Service', 'web')).toBe(true);
  });

  it('deletes the Route, then the Service, with the new revision', async () => {
    expect(await del('routes', 'web')).toEqual({ code: 0, stderr: '', stdout: expect.stringMatching(/^Route default\/web deleted: revision \d+\n$/) });
    expect(await del('Service', 'web', '--namespace', 'default')).toEqual({ code: 0, stderr: '', stdout: expect.stringMatching(/^Service default\/web deleted: revision \d+\n$/) });
    expect(await exists('Route', 'web')).toBe(false);
    expect(await exists('Service', 'web')).toBe(false);
    expect(await exists('Service', 'api')).toBe(true);
  });

  it('says what is not there, exit 1', async () => {
    expect(await del('route', 'x')).toEqual({ code: 1, stdout: '', stderr: 'tracemesh delete: no Route default/x\n' });
    expect(await del('service', 'api', '--namespace', 'shop')).toEqual({ code: 1, stdout: '', stderr: 'tracemesh delete: no Service shop/api\n' });
  });

  it.each([
    [['service'], /^tracemesh delete: missing argument <name>/],
    [['gateways', 'x'], /^tracemesh delete: <kind>: 'gateways' is not a kind/],
  ])('%j -> exit 2 with one line', async (argv, message) => {
    const result = await del(...argv);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
  });

  it('reports an unreachable control plane in one line, exit 1', async () => {
    const port = await closedPort();
    const result = await runCaptured([deleteCommand], ['delete', 'route', 'x', '--control-plane', `http://127.0.0.1:${port}`]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^tracemesh delete: cannot reach the control plane at .*: connection refused/);
  });
});
