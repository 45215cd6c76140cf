import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { closedPort, runCaptured } from '../../../test/support/api-fixtures.js';
import { serviceYaml, startTestControlPlane, type TestControlPlane } from '../../../test/support/control-plane.js';
import { getCommand } from './get.js';

let cp: TestControlPlane;

const POLICY = `apiVersion: tracemesh.dev/v1
kind: DestinationPolicy
metadata: { name: web, namespace: shop }
spec:
  host: web.shop
`;

beforeAll(async () => {
  cp = await startTestControlPlane();
  const text = [serviceYaml('web', 8080), serviceYaml('api', 9000), serviceYaml('web', 8080).replace('namespace: default', 'namespace: shop'), POLICY].join('---\n');
  const answer = await fetch(`${cp.url}/api/v1/config`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sources: [{ file: 'set.yaml', text }] }) });
  if (answer.status !== 200) throw new Error(`setting up: ${answer.status} ${await answer.text()}`);
});

afterAll(async () => {
  await cp?.stop();
});

function get(...argv: string[]): ReturnType<typeof runCaptured> {
  return runCaptured([getCommand], ['get', ...argv, '--control-plane', cp.url]);
}

describe('tracemesh get', () => {
  it('lists a kind as a table, in any case and singular or plural', async () => {
    const table = 'KIND     NAMESPACE  NAME\nService  default    api\nService  default    web\nService  shop       web\n';
    for (const kind of ['services', 'Service', 'SERVICES', 'service']) {
      expect(await get(kind)).toEqual({ code: 0, stderr: '', stdout: table });
    }
    expect(await get('destinationpolicies')).toEqual({ code: 0, stderr: '', stdout: 'KIND               NAMESPACE  NAME\nDestinationPolicy  shop       web\n' });
  });

  it('narrows a list to --namespace and says when nothing is there', async () => {
    expect(await get('services', '--namespace', 'shop')).toEqual({ code: 0, stderr: '', stdout: 'KIND     NAMESPACE  NAME\nService  shop       web\n' });
    expect(await get('routes')).toEqual({ code: 0, stderr: '', stdout: 'no Route documents\n' });
    expect(await get('routes', '--namespace', 'x')).toEqual({ code: 0, stderr: '', stdout: 'no Route documents in namespace x\n' });
  });

  it('shows one document as YAML by default and as JSON with -o json', async () => {
    const yaml = await get('service', 'web');
    expect(yaml.code).toBe(0);
    expect(yaml.stdout).toBe('apiVersion: tracemesh.dev/v1\nkind: Service\nmetadata:\n  name: web\n  namespace: default\nspec:\n  ports:\n    - name: http\n      port: 8080\n      protocol: http\n');
    const json = await get('Service', 'web', '--namespace', 'shop', '-o', 'json');
    expect(JSON.parse(json.stdout)).toEqual({
      apiVersion: 'tracemesh.dev/v1',
      kind: 'Service',
      metadata: { name: 'web', namespace: 'shop' },
      spec: { ports: [{ name: 'http', port: 8080, protocol: 'http' }] },
    });
  });

  it('prints a list as a YAML stream or a JSON array with -o', async () => {
    const yaml = await get('services', '-o', 'yaml');
    expect(parseAllDocuments(yaml.stdout).map((d) => (d.toJS() as { metadata: { name: string } }).metadata.name)).toEqual(['api', 'web', 'web']);
    const json = await get('services', '--namespace', 'default', '-o', 'json');
    expect((JSON.parse(json.stdout) as Array<{ metadata: { name: string } }>).map((d) => d.metadata.name)).toEqual(['api', 'web']);
  });

  it('says which document does not exist, exit 1', async () => {
    expect(await get('route', 'nope')).toEqual({ code: 1, stdout: '', stderr: 'tracemesh get: no Route default/nope\n' });
  });

  it.each([
    [['rout'], /^tracemesh get: <kind>: 'rout' is not a kind \(expected one of Service, Route, .*\); did you mean Route\?/],
    [['gateway'], /^tracemesh get: <kind>: 'gateway' is not a kind/],
    [['service', 'web', '-o', 'xml'], /^tracemesh get: -o: 'xml' is not yaml or json/],
    [[], /^tracemesh get: missing argument <kind>/],
    [['service', 'a', 'b'], /^tracemesh get: unexpected argument 'b'/],
  ])('%j -> exit 2 with one line', async (argv, message) => {
    const result = await get(...argv);
    expect(result.code).toBe(2);
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(message);
  });

  it('reports an unreachable control plane in one line, exit 1', async () => {
    const port = await closedPort();
    const result = await runCaptured([getCommand], ['get', 'services', '--control-plane', `http://127.0.0.1:${port}`]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`tracemesh get: cannot reach the control plane at http://127.0.0.1:${port}: connection refused (is \`tracemesh control-plane\` running?)\n`);
  });
});
