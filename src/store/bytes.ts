import type { Hash } from 'node:crypto';
import { copyFile, type FileHandle } from 'node:fs/promises';
import { P2PSyncError } from '../core/errors.js';

/** Arrays longer than this are stringified in slices of this many elements. */
const SLICE = 256;
/** Objects and short arrays this deep are written member by member, so long arrays inside them get sliced. */
const MAX_SPLIT_DEPTH = 3;
/** Bytes collected before they go to the file in one write. */
const CHUNK_BYTES = 1 << 20;

/**
 * A reusable, growing byte buffer that text is encoded into as UTF-8.
 *
 * The big writes of a file store (the user's file, sidecar batches and snapshots) stream through one of these in
 * chunks instead of being built as one string and `Buffer.from`-ed. A string of many megabytes costs a flattening
 * copy, and a fresh multi-megabyte buffer costs a page fault per 4 KiB page on first touch; on the shared VM this
 * was measured on, those page faults alone cost ~3.5 µs per KiB, more than serialising the documents. A reused
 * buffer stays mapped.
 */
export class ByteBuffer {
  private buf: Buffer = Buffer.allocUnsafeSlow(0);
  length = 0;

  reset(): void {
    this.length = 0;
  }

  /** The bytes written so far: a view that stays valid until the next `reset`. */
  get bytes(): Buffer {
    return this.buf.subarray(0, this.length);
  }

  text(s: string): void {
    // UTF-8 needs at most 3 bytes per UTF-16 unit; only near the end is the exact size worth computing.
    if (this.buf.length - this.length < s.length * 3) this.reserve(Buffer.byteLength(s, 'utf8'));
    this.length += this.buf.write(s, this.length, 'utf8');
  }

  /** Reads up to `max` bytes of `handle` at `position` onto the end; returns how many were read. */
  async readFrom(handle: FileHandle, position: number, max: number): Promise<number> {
    this.reserve(max);
    const { bytesRead } = await handle.read(this.buf, this.length, max, position);
    this.length += bytesRead;
    return bytesRead;
  }

  private reserve(bytes: number): void {
    if (this.buf.length - this.length >= bytes) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(this.buf.length * 2, this.length + bytes, CHUNK_BYTES + (64 << 10)));
    this.buf.copy(grown, 0, 0, this.length);
    this.buf = grown;
  }
}

/**
 * Writes text to a file handle through a ByteBuffer, a chunk at a time, optionally hashing what it writes.
 * Sequential: at the handle's current position (or the end, for a handle opened to append), or at `position` once
 * a copy inside the kernel wrote the start (see `copyFrom`).
 */
export class ChunkWriter {
  private flushed = 0;
  /** Writes go to explicit offsets (a kernel copy wrote the start without moving the handle's position). */
  private positioned = false;
  /** The kernel copy wrote bytes past where the writer went on: `finish` cuts them. */
  private tail = false;

  /**
   * `hash` sees every byte written from offset `hashFrom` on: a caller that resumes a hash state of the file's
   * first `hashFrom` bytes (see `hashCopy`) spares hashing them again.
   */
  constructor(
    private readonly handle: FileHandle,
    private readonly out: ByteBuffer,
    private readonly hash?: Hash,
    private readonly hashFrom = 0,
    /** The file `handle` writes, for a copy inside the kernel (see `copyFrom`). */
    private readonly path?: string,
  ) {
    out.reset();
  }

  /** Bytes written so far, buffered ones included: the offset of the next byte in the file. */
  get position(): number {
    return this.flushed + this.out.length;
  }

  /** Enough is buffered for one write: the caller should `await flush()` before buffering much more. */
  get full(): boolean {
    return this.out.length >= CHUNK_BYTES;
  }

  text(s: string): void {
    this.out.text(s);
  }

  /** Appends `JSON.stringify(value)`, flushing as it goes (see `jsonPieces`). */
  async json(value: unknown): Promise<void> {
    for (const piece of jsonPieces(value)) {
      this.out.text(piece);
      if (this.full) await this.flush();
    }
  }

  /**
   * Appends bytes `[start, end)` of another file. Throws if that file is shorter than expected. The start of a new
   * file that the hash need not see (a rewrite resuming the hash of its unchanged start) is copied inside the kernel
   * where it can be: half the CPU time of a copy through the buffer, on the path of every live change.
   */
  async copyFrom(source: FileHandle, start: number, end: number): Promise<void> {
    if (start === 0 && (await this.kernelCopy(source, end))) return;
    for (let at = start; at < end;) {
      if (this.full) await this.flush();
      const n = await this.out.readFrom(source, at, Math.min(end - at, CHUNK_BYTES));
      if (n === 0) throw new P2PSyncError('E_IO', 'the previous version of the file is shorter than expected');
      at += n;
    }
  }

  /** A copy of the hash state over everything written so far, buffered bytes included. */
  hashCopy(): Hash | undefined {
    const h = this.hash?.copy();
    h?.update(this.unhashed());
    return h;
  }

  async flush(): Promise<void> {
    const bytes = this.out.bytes;
    if (bytes.length === 0) return;
    this.hash?.update(this.unhashed());
    for (let at = 0; at < bytes.length;) {
      const position = this.positioned ? this.flushed + at : null;
      const { bytesWritten } = await this.handle.write(bytes, at, bytes.length - at, position);
      at += bytesWritten;
    }
    this.flushed += bytes.length;
    this.out.reset();
  }

  /** Flushes, and cuts what a kernel copy left past the end. */
  async finish(): Promise<void> {
    await this.flush();
    if (this.tail) await this.handle.truncate(this.flushed);
  }

  /**
   * Copies the first `end` bytes of `source` into the file inside the kernel (`copyFile` of the source's
   * /proc/self/fd link: copy_file_range on Linux), if the writer has written nothing yet and its hash starts after
   * them. False when it cannot (the caller copies through the buffer; the file is empty again).
   */
  private async kernelCopy(source: FileHandle, end: number): Promise<boolean> {
    if (!this.path || process.platform !== 'linux' || this.position !== 0 || end > this.hashFrom) return false;
    try {
      await copyFile(`/proc/self/fd/${source.fd}`, this.path);
      const size = (await this.handle.stat()).size;
      if (size < end) throw new P2PSyncError('E_IO', 'the previous version of the file is shorter than expected');
      this.flushed = end;
      this.positioned = true;
      this.tail = size > end;
      return true;
    } catch (err) {
      if (err instanceof P2PSyncError) throw err;
      await this.handle.truncate(0);
      return false;
    }
  }

  /** The buffered bytes the hash has to see (those at offsets from `hashFrom` on). */
  private unhashed(): Buffer {
    const bytes = this.out.bytes;
    return this.flushed >= this.hashFrom ? bytes : bytes.subarray(Math.min(bytes.length, this.hashFrom - this.flushed));
  }
}

/**
 * A long JSON array whose elements are made a slice at a time while it is written (see `jsonPieces`): a batch of
 * 100k documents then never holds 100k little `[lwt, doc]` arrays that live through the write's I/O (and get
 * promoted to the old generation on the way), only a few hundred at a time.
 */
export abstract class JsonSlices {
  abstract readonly length: number;
  /** Elements `[start, end)`, as they appear in JSON. */
  abstract slice(start: number, end: number): unknown[];
  /** The JSON text of elements `[start, end)` without the enclosing brackets (elements may bring their own text). */
  sliceJson(start: number, end: number): string {
    return JSON.stringify(this.slice(start, end)).slice(1, -1);
  }
}

/** Pairs `[keys[i], values[i]]`, as a JSON array of two-element arrays. */
export class PairList<K, V> extends JsonSlices {
  readonly keys: K[] = [];
  readonly values: V[] = [];

  get length(): number {
    return this.keys.length;
  }

  push(key: K, value: V): void {
    this.keys.push(key);
    this.values.push(value);
  }

  slice(start: number, end: number): Array<[K, V]> {
    const out: Array<[K, V]> = [];
    for (let i = start; i < end && i < this.keys.length; i++) out.push([this.keys[i]!, this.values[i]!]);
    return out;
  }
}

/**
 * `JSON.stringify(value)` in pieces (their concatenation is the same text), so that a batch of thousands of
 * documents never becomes one huge string: objects and short arrays near the top are split member by member,
 * long arrays into slices of a few hundred elements. For plain JSON data (`toJSON` of elements inside a slice sees
 * the index within the slice).
 */
export function* jsonPieces(value: unknown, depth = 0): Generator<string, void, undefined> {
  if (value instanceof JsonSlices) {
    yield '[';
    for (let i = 0; i < value.length; i += SLICE) {
      if (i > 0) yield ',';
      yield value.sliceJson(i, i + SLICE);
    }
    yield ']';
    return;
  }
  if (Array.isArray(value)) {
    if (value.length > SLICE) {
      yield '[';
      for (let i = 0; i < value.length; i += SLICE) {
        if (i > 0) yield ',';
        yield JSON.stringify(value.slice(i, i + SLICE)).slice(1, -1);
      }
      yield ']';
      return;
    }
    if (depth < MAX_SPLIT_DEPTH) {
      yield '[';
      for (let i = 0; i < value.length; i++) {
        if (i > 0) yield ',';
        // As in JSON.stringify: array members that have no JSON form become null.
        const v: unknown = value[i];
        if (hasNoJson(v)) yield 'null';
        else yield* jsonPieces(v, depth + 1);
      }
      yield ']';
      return;
    }
  } else if (depth < MAX_SPLIT_DEPTH && isPlainRecord(value)) {
    yield '{';
    let first = true;
    for (const key of Object.keys(value)) {
      const v = value[key];
      if (hasNoJson(v)) continue;
      yield (first ? '' : ',') + JSON.stringify(key) + ':';
      first = false;
      yield* jsonPieces(v, depth + 1);
    }
    yield '}';
    return;
  }
  yield JSON.stringify(value);
}

function hasNoJson(v: unknown): boolean {
  return v === undefined || typeof v === 'function' || typeof v === 'symbol';
}

/** A plain data object: `toJSON` methods and class instances are left to JSON.stringify. */
function isPlainRecord(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return (proto === Object.prototype || proto === null) && typeof (value as { toJSON?: unknown }).toJSON !== 'function';
}
