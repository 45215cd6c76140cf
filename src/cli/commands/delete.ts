import { formatConfigIssue } from '../../config/issues.js';
import type { Command } from '../command.js';
import { CONTROL_PLANE_FLAG, answerIssues, controlPlaneClientFromArgs, expectObject } from '../control-plane-client.js';
import { stringFlag } from '../flag-values.js';
import { resolveKind } from '../kind-names.js';

export const deleteCommand: Command = {
  name: 'delete',
  summary: 'Remove a document (refused while the rest would be invalid)',
  usage: 'tracemesh delete <kind> <name> [--namespace NS] [--control-plane URL]',
  positionals: [
    { name: 'kind', required: true },
    { name: 'name', required: true },
  ],
  flags: {
    namespace: { type: 'string', valueName: 'NS', description: 'the document\'s namespace', default: 'default' },
    'control-plane': CONTROL_PLANE_FLAG,
  },
  examples: ['tracemesh delete route reviews-canary', 'tracemesh delete service ratings --namespace shop'],
  async run(args, io) {
    const kind = resolveKind(args.positionals[0] as string);
    const name = args.positionals[1] as string;
    const namespace = stringFlag(args, 'namespace') ?? 'default';
    const client = controlPlaneClientFromArgs(args);
    const what = `${kind} ${namespace}/${name}`;
    const answer = await client.call('DELETE', `/api/v1/config/${encodeURIComponent(kind)}/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`);
    const issues = answerIssues(answer);
    if (answer.status === 400 && issues.length > 0) {
      io.stderr.write(`tracemesh delete: ${what} was not deleted: the rest of the configuration would be invalid:\n${issues.map((i) => `  ${formatConfigIssue(i)}\n`).join('')}`);
      return 1;
    }
    // 404 ("no Route default/x") and other refusals: one line, exit 1.
    const result = expectObject(answer, client.base);
    io.stdout.write(`${what} deleted: revision ${String(result['revision'])}\n`);
    return 0;
  },
};
