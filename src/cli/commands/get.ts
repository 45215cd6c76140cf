import type { Writable } from 'node:stream';
import { stringify } from 'yaml';
import { TracemeshError } from '../../lib/errors.js';
import { formatTable, writeJson } from '../api-client.js';
import type { Command, ParsedArgs } from '../command.js';
import { CONTROL_PLANE_FLAG, controlPlaneClientFromArgs, expectObject } from '../control-plane-client.js';
import { stringFlag } from '../flag-values.js';
import { resolveKind } from '../kind-names.js';

type Output = 'table' | 'yaml' | 'json';

interface ListedDocument {
  kind: string;
  metadata: { name: string; namespace: string };
}

function outputFlag(args: ParsedArgs, fallback: Output): Output {
  const text = stringFlag(args, 'o');
  if (text === undefined) return fallback;
  if (text !== 'yaml' && text !== 'json') throw new TracemeshError('TM_ERR_CLI_BAD_VALUE', `-o: '${text}' is not yaml or json`);
  return text;
}

/** One document as itself; a list as a JSON array or a YAML stream. */
function printDocuments(out: Writable, documents: readonly unknown[], output: 'yaml' | 'json', one: boolean): void {
  if (output === 'json') writeJson(out, one ? documents[0] : documents);
  else out.write(documents.length === 0 ? '[]\n' : documents.map((d) => stringify(d)).join('---\n'));
}

export const getCommand: Command = {
  name: 'get',
  summary: 'List the stored documents of a kind, or show one',
  usage: 'tracemesh get <kind> [name] [--namespace NS] [-o yaml|json] [--control-plane URL]',
  positionals: [
    { name: 'kind', required: true },
    { name: 'name', required: false },
  ],
  flags: {
    namespace: { type: 'string', valueName: 'NS', description: 'the namespace (a list: only this one, default all; one document: default "default")' },
    o: { type: 'string', valueName: 'FORMAT', description: 'yaml or json (-o); a list is a table without it' },
    'control-plane': CONTROL_PLANE_FLAG,
  },
  examples: ['tracemesh get services', 'tracemesh get route reviews -o json', 'tracemesh get destinationpolicies --namespace shop -o yaml'],
  async run(args, io) {
    const kind = resolveKind(args.positionals[0] as string);
    const name = args.positionals[1];
    const namespace = stringFlag(args, 'namespace');
    const client = controlPlaneClientFromArgs(args);
    if (name !== undefined) {
      const output = outputFlag(args, 'yaml');
      const path = `/api/v1/config/${encodeURIComponent(kind)}/${encodeURIComponent(namespace ?? 'default')}/${encodeURIComponent(name)}`;
      const answer = expectObject(await client.call('GET', path), client.base);
      printDocuments(io.stdout, [answer['document']], output === 'json' ? 'json' : 'yaml', true);
      return 0;
    }
    const output = outputFlag(args, 'table');
    const answer = expectObject(await client.call('GET', `/api/v1/config?kind=${encodeURIComponent(kind)}`), client.base);
    const all = Array.isArray(answer['documents']) ? (answer['documents'] as ListedDocument[]) : [];
    const documents = all.filter((d) => d.kind === kind && (namespace === undefined || d.metadata.namespace === namespace));
    if (output !== 'table') {
      printDocuments(io.stdout, documents, output, false);
      return 0;
    }
    if (documents.length === 0) {
      io.stdout.write(`no ${kind} documents${namespace === undefined ? '' : ` in namespace ${namespace}`}\n`);
      return 0;
    }
    io.stdout.write(formatTable(['KIND', 'NAMESPACE', 'NAME'], documents.map((d) => [d.kind, d.metadata.namespace, d.metadata.name])));
    return 0;
  },
};
