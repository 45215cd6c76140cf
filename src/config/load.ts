/**
 * The entry points: files and directories (a proxy's `--config`, later
 * `tracemesh apply -f`) or a text (stdin, an API body) → a validated
 * MeshConfig, or one error listing every problem.
 */
import { ConfigValidationError } from './issues.js';
import type { MeshConfig } from './types.js';
import { validateDocuments } from './validate.js';
import type { ValidationResult } from './validate.js';
import { parseYamlDocuments, readYamlSources } from './yaml-documents.js';

export { ConfigValidationError, formatConfigIssue, formatConfigIssues } from './issues.js';
export type { ConfigIssue } from './issues.js';
export { configVersion } from './config-version.js';

/**
 * Reads and validates files and directories (*.yaml and *.yml, name order)
 * in the order given; documents from all of them form one configuration.
 * Throws TracemeshError TM_ERR_CONFIG_READ when a path cannot be read, and
 * ConfigValidationError (TM_ERR_CONFIG_INVALID, with `issues`) when anything
 * in them is wrong.
 */
export async function loadMeshConfig(paths: readonly string[]): Promise<MeshConfig> {
  const sources = await readYamlSources(paths);
  const result = validateDocuments(sources.documents, sources.issues);
  if (!result.ok) throw new ConfigValidationError(result.errors);
  return result.config;
}

/** Validates a YAML text; `file` names it in issues (`<stdin>`, a request). Never throws. */
export function validateMeshConfigText(text: string, file: string): ValidationResult {
  const sources = parseYamlDocuments(text, file);
  return validateDocuments(sources.documents, sources.issues);
}
