import { describe, expect, it } from 'vitest';
import { formatCidr, parseCidr, parseCidrList, parsePortList } from './iptables-values.js';

describe('parsePortList', () => {
  it('reads ports and ranges (N-M or N:M), drops duplicates, keeps order', () => {
    expect(parsePortList('22, 8080-8090,9000:9001,22')).toEqual({
      ok: true,
      value: [
        { first: 22, last: 22 },
        { first: 8080, last: 8090 },
        { first: 9000, last: 9001 },
      ],
    });
    expect(parsePortList('')).toEqual({ ok: true, value: [] });
  });

  for (const bad of ['0', '65536', 'ssh', '90-80', '1,,2', '80-', '-1']) {
    it(`refuses '${bad}' and names the item`, () => {
      const parsed = parsePortList(bad);
      expect(parsed.ok).toBe(false);
      if (!parsed.ok) expect(parsed.problem).toMatch(/is not a port/);
    });
  }
});

describe('parseCidr', () => {
  const canonical: Array<[string, string]> = [
    ['10.1.2.3/8', '10.0.0.0/8'],
    ['10.1.2.3', '10.1.2.3/32'],
    ['192.168.77.1/23', '192.168.76.0/23'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['FD00:0:0::1/64', 'fd00::/64'],
    ['fd00::1', 'fd00::1/128'],
    ['2001:db8:0:1:0:0:0:1', '2001:db8:0:1::1/128'],
    ['2001:0:0:1:0:0:0:0/128', '2001:0:0:1::/128'],
    ['1:0:1:0:1:0:1:0', '1:0:1:0:1:0:1:0/128'],
    ['::ffff:10.0.0.1', '::ffff:10.0.0.1/128'],
    ['::1', '::1/128'],
    ['fd12:3456:789a::/49', 'fd12:3456:789a::/49'],
    ['fd12:3456:ffff::/33', 'fd12:3456:8000::/33'],
  ];
  for (const [text, expected] of canonical) {
    it(`${text} → ${expected} (as iptables prints it)`, () => {
      const parsed = parseCidr(text);
      expect(parsed.ok && formatCidr(parsed.value)).toBe(expected);
    });
  }

  for (const bad of ['10.0.0.0/33', '10.0.0/8', 'fd00::/129', 'example.com', 'fe80::1%eth0', '10.0.0.0/8/1', '10.0.0.0/x', '']) {
    it(`refuses '${bad}'`, () => {
      expect(parseCidr(bad).ok).toBe(false);
    });
  }

  it('reads a list and names the bad item', () => {
    expect(parseCidrList('10.0.0.0/8, fd00::/8')).toMatchObject({ ok: true, value: [{ family: 4 }, { family: 6 }] });
    expect(parseCidrList('10.0.0.0/8,nope')).toEqual({ ok: false, problem: "'nope' is not an IPv4 or IPv6 address or CIDR (e.g. 10.0.0.0/8, fd00::/8)" });
  });
});
