import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeFaultFile } from '../fault-writer.js';
import { FaultFile, NO_FAULTS, parseFaults, shouldFail } from './faults.js';

const dir = mkdtempSync(path.join(tmpdir(), 'tracemesh-faults-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function until(probe: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('fault control file', () => {
  it('parses and checks every field, naming the file', () => {
    expect(parseFaults('{"errorRate": 0.5, "delayMs": 300}', 'f.json')).toEqual({ errorRate: 0.5, delayMs: 300 });
    expect(parseFaults('{}', 'f.json')).toEqual(NO_FAULTS);
    expect(() => parseFaults('nope', 'f.json')).toThrow('f.json: not JSON');
    expect(() => parseFaults('{"errorRate": 2}', 'f.json')).toThrow('f.json: errorRate: expected a number from 0 to 1');
    expect(() => parseFaults('{"delayMs": 1.5}', 'f.json')).toThrow('f.json: delayMs: expected a whole number from 0 to 30000');
    expect(() => parseFaults('{"delay": 1}', 'f.json')).toThrow("f.json: unknown field 'delay'");
    expect(() => parseFaults('[1]', 'f.json')).toThrow('f.json: expected a JSON object');
  });

  it('follows the file as the demo rewrites it, keeps the last good faults on a bad write, and none when it is gone', async () => {
    const file = path.join(dir, 'reviews-v3.json');
    const warnings: string[] = [];
    const faults = new FaultFile(file, (line) => warnings.push(line));
    try {
      expect(faults.current()).toEqual(NO_FAULTS);
      writeFaultFile(file, { errorRate: 1, delayMs: 0 });
      await until(() => faults.current().errorRate === 1, 'errorRate 1');
      writeFileSync(file, '{"errorRate": "all"}');
      await until(() => warnings.length === 1, 'a warning');
      expect(warnings[0]).toContain('errorRate: expected a number from 0 to 1');
      expect(faults.current().errorRate).toBe(1);
      rmSync(file);
      await until(() => faults.current().errorRate === 0, 'no faults');
    } finally {
      faults.close();
    }
  });

  it('fails the share of requests it is told to', () => {
    expect(shouldFail({ errorRate: 0, delayMs: 0 }, () => 0)).toBe(false);
    expect(shouldFail({ errorRate: 1, delayMs: 0 }, () => 0.999)).toBe(true);
    expect(shouldFail({ errorRate: 0.3, delayMs: 0 }, () => 0.5)).toBe(false);
  });
});
