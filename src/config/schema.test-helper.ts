/** Helpers for the kinds' schema tests: one document of a kind, validated, as a config or as issues. */
import { validateMeshConfigText } from './load.js';
import type { MeshConfig } from './types.js';

/**
 * One document: lines 1-4 are apiVersion, kind, metadata and `spec:`, so the
 * n-th line of `spec` (block content, indented by the caller) is line 4 + n.
 */
export function doc(kind: string, spec: string, metadata = '{ name: test }'): string {
  return `apiVersion: tracemesh.dev/v1\nkind: ${kind}\nmetadata: ${metadata}\nspec:\n${spec}`;
}

/** The config of a valid text; fails with the issues otherwise. */
export function valid(text: string): Required<MeshConfig> {
  const result = validateMeshConfigText(text, 'test.yaml');
  if (!result.ok) throw new Error(`expected valid, got:\n${result.errors.map((e) => `${e.path}: ${e.message} (line ${e.line})`).join('\n')}`);
  return result.config as Required<MeshConfig>;
}

export interface BriefIssue {
  readonly path: string;
  readonly message: string;
  readonly line: number | undefined;
}

/** The issues of an invalid text: path, message and line; fails when it is valid. */
export function issues(text: string): BriefIssue[] {
  const result = validateMeshConfigText(text, 'test.yaml');
  if (result.ok) throw new Error('expected issues, got a valid config');
  return result.errors.map((issue) => ({ path: issue.path, message: issue.message, line: issue.line }));
}

/** `[path, message, line]` → BriefIssue, to keep tables short. */
export function at(path: string, message: string, line: number): BriefIssue {
  return { path, message, line };
}
