/**
 * A route rule's request and response header edits (Istio's `headers`:
 * set, add, remove), applied by both HTTP paths. Names are lowercase (the
 * config model guarantees it) and values carry no line breaks (validated),
 * and the proxy's own framing headers cannot be edited (validated too).
 *
 * Order: remove, then set, then add, the order Envoy's header parser
 * evaluates them in. Removing first means an edit that removes and sets the
 * same name ends with the set value rather than nothing; setting before
 * adding means `set: {x: a}, add: {x: b}` ends with both a and b (adding
 * first, the set would wipe the added value out).
 */
import type { HeaderEdit } from '../../src/config/types.js';

/** Whatever holds the headers being edited: an HTTP/1 head under construction, an HTTP/2 header object. */
export interface HeaderEditTarget {
  /** Replace every value of `name` with `value` (add it when absent). */
  set(name: string, value: string): void;
  /** Add a value, keeping the ones already there. */
  append(name: string, value: string): void;
  /** Remove every value of `name`. */
  remove(name: string): void;
}

/** The edit that changes nothing, shared by every plan without edits. */
export const EMPTY_HEADER_EDIT: HeaderEdit = Object.freeze({ set: Object.freeze([]), add: Object.freeze([]), remove: Object.freeze([]) });

/** True when applying `edit` would change nothing: the paths skip all header work then. */
export function isEmptyHeaderEdit(edit: HeaderEdit): boolean {
  return edit.set.length === 0 && edit.add.length === 0 && edit.remove.length === 0;
}

export function applyHeaderEdit(edit: HeaderEdit, target: HeaderEditTarget): void {
  const remove = edit.remove;
  for (let i = 0; i < remove.length; i++) target.remove(remove[i] as string);
  const set = edit.set;
  for (let i = 0; i < set.length; i++) {
    const header = set[i] as HeaderEdit['set'][number];
    target.set(header.name, header.value);
  }
  const add = edit.add;
  for (let i = 0; i < add.length; i++) {
    const header = add[i] as HeaderEdit['add'][number];
    target.append(header.name, header.value);
  }
}

/** node:http2's header objects (IncomingHttpHeaders, OutgoingHttpHeaders) as far as an edit touches them. */
export type HeaderObject = Record<string, string | string[] | number | undefined>;

/**
 * The edit applied in place to an HTTP/2 header object (the upstream
 * request's OutgoingHttpHeaders, or the response headers relayed
 * downstream). An added value turns a single value into a list; an existing
 * list is replaced by a longer copy, never mutated, since it may be shared
 * with the incoming headers.
 */
export function applyHeaderEditToObject(edit: HeaderEdit, headers: HeaderObject): void {
  const remove = edit.remove;
  for (let i = 0; i < remove.length; i++) delete headers[remove[i] as string];
  const set = edit.set;
  for (let i = 0; i < set.length; i++) {
    const header = set[i] as HeaderEdit['set'][number];
    headers[header.name] = header.value;
  }
  const add = edit.add;
  for (let i = 0; i < add.length; i++) {
    const header = add[i] as HeaderEdit['add'][number];
    const existing = headers[header.name];
    if (existing === undefined) headers[header.name] = header.value;
    else if (Array.isArray(existing)) headers[header.name] = existing.concat(header.value);
    else headers[header.name] = [String(existing), header.value];
  }
}

/**
 * An edit in the shape the HTTP/1 head writer wants: the names whose
 * received field lines are dropped (removed or replaced), and the field
 * lines to write after the kept ones (set values, then added ones). Kept
 * lines + `lines` is exactly remove → set → add.
 */
export interface HeaderEditLines {
  readonly drops: ReadonlySet<string>;
  /** `name: value\r\n` for each set, then each add; '' when none. */
  readonly lines: string;
}

// HeaderEdits live as long as their configuration version: one compiled form each, collected with it.
const compiledLines = new WeakMap<HeaderEdit, HeaderEditLines>();

/**
 * `edit` compiled for HTTP/1 once and cached for the life of the edit
 * object. Values are written as they are; the head writer encodes heads as
 * latin1, so values outside latin1 do not survive (header values should be
 * ASCII anyway, RFC 9110 §5.5).
 */
export function headerEditLines(edit: HeaderEdit): HeaderEditLines {
  let compiled = compiledLines.get(edit);
  if (compiled !== undefined) return compiled;
  const drops = new Set<string>(edit.remove);
  let lines = '';
  for (const header of edit.set) {
    drops.add(header.name);
    lines += `${header.name}: ${header.value}\r\n`;
  }
  for (const header of edit.add) lines += `${header.name}: ${header.value}\r\n`;
  compiled = { drops, lines };
  compiledLines.set(edit, compiled);
  return compiled;
}
