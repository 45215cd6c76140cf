import { describe, expect, it } from 'vitest';
import type { HeaderEdit } from '../../src/config/types.js';
import { EMPTY_HEADER_EDIT, applyHeaderEdit, applyHeaderEditToObject, headerEditLines, isEmptyHeaderEdit, type HeaderEditTarget, type HeaderObject } from './header-edits.js';

/** A real multi-valued header store (as both paths keep them): name → values in order. */
class HeaderList implements HeaderEditTarget {
  readonly calls: string[] = [];
  readonly values = new Map<string, string[]>();
  set(name: string, value: string): void {
    this.calls.push(`set ${name}`);
    this.values.set(name, [value]);
  }
  append(name: string, value: string): void {
    this.calls.push(`append ${name}`);
    this.values.set(name, [...(this.values.get(name) ?? []), value]);
  }
  remove(name: string): void {
    this.calls.push(`remove ${name}`);
    this.values.delete(name);
  }
}

const edit: HeaderEdit = {
  set: [
    { name: 'x-route', value: 'canary' },
    { name: 'x-both', value: 'set' },
  ],
  add: [
    { name: 'x-both', value: 'added' },
    { name: 'x-trace', value: 'b' },
  ],
  remove: ['x-internal', 'x-route'],
};

describe('applyHeaderEdit', () => {
  it('removes, then sets, then adds', () => {
    const target = new HeaderList();
    target.values.set('x-internal', ['secret']);
    target.values.set('x-route', ['old']);
    target.values.set('x-trace', ['a']);
    target.values.set('x-both', ['before']);
    applyHeaderEdit(edit, target);
    expect(target.calls).toEqual(['remove x-internal', 'remove x-route', 'set x-route', 'set x-both', 'append x-both', 'append x-trace']);
    expect(Object.fromEntries(target.values)).toEqual({ 'x-route': ['canary'], 'x-both': ['set', 'added'], 'x-trace': ['a', 'b'] });
  });

  it('the empty edit calls nothing', () => {
    const target = new HeaderList();
    applyHeaderEdit(EMPTY_HEADER_EDIT, target);
    expect(target.calls).toEqual([]);
    expect(isEmptyHeaderEdit(EMPTY_HEADER_EDIT)).toBe(true);
    expect(isEmptyHeaderEdit(edit)).toBe(false);
    expect(isEmptyHeaderEdit({ set: [], add: [], remove: ['x'] })).toBe(false);
  });
});

describe('applyHeaderEditToObject (HTTP/2 header objects)', () => {
  it('edits in place with the same result, never mutating a list it did not create', () => {
    const shared = ['a'];
    const headers: HeaderObject = { ':path': '/x', 'x-internal': 'secret', 'x-route': 'old', 'x-trace': shared, 'x-both': 'before', 'content-length': 5 };
    applyHeaderEditToObject(edit, headers);
    expect(headers).toEqual({ ':path': '/x', 'x-route': 'canary', 'x-both': ['set', 'added'], 'x-trace': ['a', 'b'], 'content-length': 5 });
    expect(shared).toEqual(['a']);
  });

  it('adds to a numeric value as strings, and to an absent one as a single value', () => {
    const headers: HeaderObject = { 'x-n': 1 };
    applyHeaderEditToObject({ set: [], add: [{ name: 'x-n', value: '2' }, { name: 'x-new', value: 'v' }], remove: [] }, headers);
    expect(headers).toEqual({ 'x-n': ['1', '2'], 'x-new': 'v' });
  });
});

describe('headerEditLines (HTTP/1 head writer)', () => {
  it('drops removed and replaced names, writes set then added lines', () => {
    const lines = headerEditLines(edit);
    expect([...lines.drops].sort()).toEqual(['x-both', 'x-internal', 'x-route']);
    expect(lines.lines).toBe('x-route: canary\r\nx-both: set\r\nx-both: added\r\nx-trace: b\r\n');
  });

  it('is compiled once per edit object', () => {
    expect(headerEditLines(edit)).toBe(headerEditLines(edit));
    expect(headerEditLines(EMPTY_HEADER_EDIT)).toEqual({ drops: new Set(), lines: '' });
  });
});
