import { describe, expect, it } from 'vitest';
import { OutputCapture } from './output-capture.js';

describe('captured output of a pod process', () => {
  it('splits chunks into lines per stream and keeps the interleaved text', () => {
    const capture = new OutputCapture();
    const seen: string[] = [];
    capture.onLine((line, stream) => seen.push(`${stream}:${line}`));
    capture.push('stdout', 'hel');
    capture.push('stderr', 'warn\n');
    capture.push('stdout', 'lo\nready on 8080\npart');
    capture.end('stdout');
    expect(seen).toEqual(['stderr:warn', 'stdout:hello', 'stdout:ready on 8080', 'stdout:part']);
    expect(capture.text()).toBe('helwarn\nlo\nready on 8080\npart');
    expect(capture.text('stdout')).toBe('hello\nready on 8080\npart');
    expect(capture.findLine(/^ready on (\d+)$/)).toBe('ready on 8080');
    expect(capture.findLine(/nothing/)).toBeUndefined();
  });

  it('keeps only the newest text and lines when a process prints a lot', () => {
    const capture = new OutputCapture(10, 2);
    capture.push('stdout', 'line-1\nline-2\nline-3\n');
    expect(capture.text()).toBe('-2\nline-3\n');
    expect(capture.truncated()).toBe(true);
    expect(capture.findLine(/line-1/)).toBeUndefined();
    expect(capture.findLine(/line-3/)).toBe('line-3');
  });

  it('stops telling a listener once it unsubscribed', () => {
    const capture = new OutputCapture();
    const seen: string[] = [];
    const unsubscribe = capture.onLine((line) => seen.push(line));
    capture.push('stdout', 'one\n');
    unsubscribe();
    capture.push('stdout', 'two\n');
    expect(seen).toEqual(['one']);
  });
});
