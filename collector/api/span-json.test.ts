import { describe, expect, it } from 'vitest';
import { typedAttributeValue, typedAttributes } from './span-json.js';

describe('typedAttributeValue', () => {
  it('gives strings and bytes (base64) back as stored', () => {
    expect(typedAttributeValue('GET', undefined)).toBe('GET');
    expect(typedAttributeValue('200', 'string')).toBe('200');
    expect(typedAttributeValue('AQID/w==', 'bytes')).toBe('AQID/w==');
  });

  it('turns ints into numbers only when they are safe integers', () => {
    expect(typedAttributeValue('200', 'int')).toBe(200);
    expect(typedAttributeValue('-42', 'int')).toBe(-42);
    expect(typedAttributeValue('9007199254740991', 'int')).toBe(9007199254740991);
    expect(typedAttributeValue('9007199254740992', 'int')).toBe('9007199254740992');
    expect(typedAttributeValue('-9223372036854775808', 'int')).toBe('-9223372036854775808');
    expect(typedAttributeValue('12abc', 'int')).toBe('12abc');
  });

  it('turns doubles into numbers, the non-finite ones into strings', () => {
    expect(typedAttributeValue('0.25', 'double')).toBe(0.25);
    expect(typedAttributeValue('-1e+300', 'double')).toBe(-1e300);
    expect(typedAttributeValue('NaN', 'double')).toBe('NaN');
    expect(typedAttributeValue('Infinity', 'double')).toBe('Infinity');
    expect(typedAttributeValue('-Infinity', 'double')).toBe('-Infinity');
    expect(typedAttributeValue('', 'double')).toBe('');
  });

  it('turns bools into booleans', () => {
    expect(typedAttributeValue('true', 'bool')).toBe(true);
    expect(typedAttributeValue('false', 'bool')).toBe(false);
    expect(typedAttributeValue('yes', 'bool')).toBe('yes');
  });

  it('parses arrays and kvlists, keeping text that is not JSON', () => {
    expect(typedAttributeValue('[1,"a",[true]]', 'array')).toEqual([1, 'a', [true]]);
    expect(typedAttributeValue('{"a":{"b":null}}', 'kvlist')).toEqual({ a: { b: null } });
    expect(typedAttributeValue('[1,', 'array')).toBe('[1,');
  });

  it('leaves unknown types as stored', () => {
    expect(typedAttributeValue('x', 'decimal')).toBe('x');
  });
});

describe('typedAttributes', () => {
  it('types every key by its type map and keeps odd keys as data', () => {
    const values = JSON.parse('{"a":"1","b":"x","__proto__":"p"}') as Record<string, string>;
    const out = typedAttributes(values, { a: 'int' });
    expect(JSON.stringify(out)).toBe('{"a":1,"b":"x","__proto__":"p"}');
    expect(typedAttributes(undefined, undefined)).toEqual({});
  });
});
