/**
 * Kind names as people type them on the command line: any case, singular or
 * plural (`route`, `Routes`, `destinationpolicies`), resolved to the kind as
 * documents spell it (`DestinationPolicy`), from the one table of kinds.
 */
import { closestMatch } from '../config/did-you-mean.js';
import { SUPPORTED_KINDS } from '../config/kinds.js';
import { TracemeshError } from '../lib/errors.js';

function plural(kind: string): string {
  if (/[^aeiou]y$/i.test(kind)) return `${kind.slice(0, -1)}ies`;
  if (/(s|x|ch|sh)$/i.test(kind)) return `${kind}es`;
  return `${kind}s`;
}

const BY_SPELLING: ReadonlyMap<string, string> = new Map(SUPPORTED_KINDS.flatMap((kind) => [[kind.toLowerCase(), kind], [plural(kind).toLowerCase(), kind]] as const));

/** `routes` → `Route`; an unknown kind is a TM_ERR_CLI_BAD_VALUE listing the kinds (and the likely one). */
export function resolveKind(text: string): string {
  const kind = BY_SPELLING.get(text.toLowerCase());
  if (kind !== undefined) return kind;
  const near = closestMatch(text, [...BY_SPELLING.keys()]);
  const hint = near === undefined ? '' : `; did you mean ${BY_SPELLING.get(near) ?? near}?`;
  throw new TracemeshError('TM_ERR_CLI_BAD_VALUE', `<kind>: '${text}' is not a kind (expected one of ${SUPPORTED_KINDS.join(', ')}, singular or plural, any case)${hint}`);
}
