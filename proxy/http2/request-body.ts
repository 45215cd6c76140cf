/**
 * A request body kept while it may have to be sent again (a retry, a
 * mirror's copy): the chunks as they arrived, up to MAX_RETRY_BODY_BYTES.
 * Past the limit the copy is dropped and the body can no longer be replayed:
 * the request then streams as usual and is neither retried nor mirrored.
 */
import type { Writable } from 'node:stream';
import { MAX_RETRY_BODY_BYTES } from '../limits.js';

export class ReplayableBody {
  private chunks: Buffer[] = [];
  /** Bytes received so far (also past the limit). */
  size = 0;
  /** Over the limit: the chunks are gone. */
  overflowed = false;
  /** The downstream sent END_STREAM: the body is whole. */
  ended = false;

  constructor(private readonly limit: number = MAX_RETRY_BODY_BYTES) {}

  /** Keeps a chunk; false when this chunk took the body over the limit (it and the rest are not kept). */
  add(chunk: Buffer): boolean {
    this.size += chunk.length;
    if (this.overflowed) return false;
    if (this.size > this.limit) {
      this.overflowed = true;
      this.chunks = [];
      return false;
    }
    this.chunks.push(chunk);
    return true;
  }

  /** True while every byte received is kept. */
  get replayable(): boolean {
    return !this.overflowed;
  }

  /** Writes what was kept (a new attempt or a mirror starts from the beginning). */
  writeTo(stream: Writable): void {
    for (const chunk of this.chunks) stream.write(chunk);
  }
}
