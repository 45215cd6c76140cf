/**
 * What a pod process printed: bounded (a chatty process cannot fill memory),
 * kept per stream and interleaved, and split into lines for readiness waits.
 */

export type StreamName = 'stdout' | 'stderr';
type LineListener = (line: string, stream: StreamName) => void;

const DEFAULT_MAX_CHARS = 256 * 1024;
const DEFAULT_MAX_LINES = 2_000;

class TextTail {
  private text = '';
  truncated = false;

  constructor(private readonly maxChars: number) {}

  append(chunk: string): void {
    this.text += chunk;
    if (this.text.length > this.maxChars) {
      this.text = this.text.slice(this.text.length - this.maxChars);
      this.truncated = true;
    }
  }

  toString(): string {
    return this.text;
  }
}

export class OutputCapture {
  private readonly combined: TextTail;
  private readonly perStream: Record<StreamName, TextTail>;
  private readonly partial: Record<StreamName, string> = { stdout: '', stderr: '' };
  private readonly lines: Array<{ line: string; stream: StreamName }> = [];
  private readonly listeners = new Set<LineListener>();

  constructor(
    maxChars = DEFAULT_MAX_CHARS,
    private readonly maxLines = DEFAULT_MAX_LINES,
  ) {
    this.combined = new TextTail(maxChars);
    this.perStream = { stdout: new TextTail(maxChars), stderr: new TextTail(maxChars) };
  }

  push(stream: StreamName, chunk: string): void {
    this.combined.append(chunk);
    this.perStream[stream].append(chunk);
    const parts = (this.partial[stream] + chunk).split('\n');
    this.partial[stream] = parts.pop() ?? '';
    for (const line of parts) this.addLine(line, stream);
  }

  /** A last line without a newline counts once the stream has ended. */
  end(stream: StreamName): void {
    const rest = this.partial[stream];
    this.partial[stream] = '';
    if (rest !== '') this.addLine(rest, stream);
  }

  private addLine(line: string, stream: StreamName): void {
    this.lines.push({ line, stream });
    if (this.lines.length > this.maxLines) this.lines.shift();
    for (const listener of this.listeners) listener(line, stream);
  }

  /** The output so far: both streams interleaved as they arrived, or one of them. */
  text(stream?: StreamName): string {
    return (stream === undefined ? this.combined : this.perStream[stream]).toString();
  }

  truncated(stream?: StreamName): boolean {
    return (stream === undefined ? this.combined : this.perStream[stream]).truncated;
  }

  /** The first line seen so far that matches. */
  findLine(pattern: RegExp): string | undefined {
    for (const entry of this.lines) if (pattern.test(entry.line)) return entry.line;
    return undefined;
  }

  onLine(listener: LineListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
