import type { Readable } from 'node:stream';
import { formatConfigIssue } from '../../config/issues.js';
import type { DocumentKey } from '../../control-plane/store/types.js';
import { TracemeshError } from '../../lib/errors.js';
import type { Command } from '../command.js';
import { readConfigSources } from '../config-files.js';
import { CONTROL_PLANE_FLAG, answerIssues, controlPlaneClientFromArgs, expectObject } from '../control-plane-client.js';

function keys(answer: Record<string, unknown>, field: string): DocumentKey[] {
  const list = answer[field];
  return Array.isArray(list) ? (list as DocumentKey[]) : [];
}

/** `tracemesh apply`, reading `-` from `stdin()` (a parameter so tests can feed it; process.stdin is only touched when `-` is given). */
export function createApplyCommand(stdin: () => Readable): Command {
  return {
    name: 'apply',
    summary: 'Send configuration documents to the control plane (validated as a whole set, then pushed)',
    usage: 'tracemesh apply -f FILE|DIR|- [-f ...] [--control-plane URL]',
    flags: {
      f: { type: 'string', valueName: 'FILE', description: 'a YAML file, a directory (its *.yaml and *.yml files in name order) or - for standard input; repeatable (-f)', multiple: true },
      'control-plane': CONTROL_PLANE_FLAG,
    },
    examples: ['tracemesh apply -f mesh.yaml', 'tracemesh apply -f config/ -f canary.yaml', 'cat route.yaml | tracemesh apply -f -'],
    async run(args, io) {
      const paths = args.values['f'];
      if (!Array.isArray(paths) || paths.length === 0) throw new TracemeshError('TM_ERR_CLI_USAGE', '-f FILE|DIR|- is required');
      const client = controlPlaneClientFromArgs(args);
      const sources = await readConfigSources(paths, stdin);
      const answer = await client.call('POST', '/api/v1/config', { sources });
      const issues = answerIssues(answer);
      if (answer.status === 400 && issues.length > 0) {
        const count = issues.length === 1 ? '1 problem' : `${issues.length} problems`;
        io.stderr.write(`tracemesh apply: the control plane refused the configuration (${count}); nothing was applied:\n${issues.map((i) => `  ${formatConfigIssue(i)}\n`).join('')}`);
        return 1;
      }
      const result = expectObject(answer, client.base);
      const lines: string[] = [];
      for (const outcome of ['created', 'updated', 'unchanged'] as const) {
        for (const key of keys(result, outcome)) lines.push(`${key.kind} ${key.namespace}/${key.name} ${outcome}`);
      }
      const changed = keys(result, 'created').length + keys(result, 'updated').length > 0;
      lines.push(changed ? `applied: revision ${String(result['revision'])}` : `nothing changed: revision ${String(result['revision'])}`);
      io.stdout.write(`${lines.join('\n')}\n`);
      return 0;
    },
  };
}

export const applyCommand: Command = createApplyCommand(() => process.stdin);
