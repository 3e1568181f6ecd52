import { isUtf8 } from 'node:buffer';
import { open, type FileHandle } from 'node:fs/promises';
import { ioError } from './fs-util.js';

/** Bytes read per call: big enough for few system calls, small next to a journal of hundreds of megabytes. */
const CHUNK_BYTES = 4 << 20;

/** One piece of a file split at its newlines, as `text.split('\n')` would give it. */
export interface FileLine {
  /** The line without its newline, decoded as UTF-8 (invalid bytes become U+FFFD, as in `readFile(path, 'utf8')`). */
  text: string;
  /** The line's bytes were valid UTF-8 (checked only when asked for: see `LineOptions.checkUtf8`). */
  utf8: boolean;
  /** 1-based line number. */
  line: number;
  /** The piece after the last newline (empty when the file ends with one): it may be cut short. */
  last: boolean;
  /** Bytes of the file read up to the end of this piece. */
  bytes: number;
}

export interface LineOptions {
  /** Sees every byte read, in order (a hash, say). */
  hash?: { update(bytes: Buffer): unknown };
  /** Check each line for valid UTF-8 (`FileLine.utf8`). */
  checkUtf8?: boolean;
}

/**
 * The lines of a file, read a chunk at a time (undefined if it does not exist). Unlike reading the file into one
 * string and splitting it, only one line's text is held at a time: the sidecar of a million documents is a few
 * hundred megabytes, and holding it whole while its documents are being parsed doubled the peak memory of an open.
 */
export async function fileLines(path: string, what: string): Promise<AsyncGenerator<FileLine> | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw ioError(err, path, what);
  }
  return (async function* closing(): AsyncGenerator<FileLine> {
    try {
      yield* handleLines(handle, path, what);
    } finally {
      await handle.close().catch(() => undefined);
    }
  })();
}

/** The lines of an open file from its start (see `fileLines`); the caller closes the handle. */
export async function* handleLines(
  handle: FileHandle,
  path: string,
  what: string,
  options: LineOptions = {},
): AsyncGenerator<FileLine> {
  const { hash, checkUtf8 = false } = options;
  const buf = Buffer.allocUnsafe(CHUNK_BYTES);
  let carry: Buffer[] = [];
  let position = 0;
  let line = 0;
  const decode = (bytes: Buffer, last: boolean): FileLine => ({
    text: bytes.toString('utf8'),
    utf8: !checkUtf8 || isUtf8(bytes),
    line: ++line,
    last,
    bytes: position,
  });
  for (;;) {
    let n: number;
    try {
      n = (await handle.read(buf, 0, CHUNK_BYTES, position)).bytesRead;
    } catch (err) {
      throw ioError(err, path, what);
    }
    if (n === 0) break;
    const chunk = buf.subarray(0, n);
    hash?.update(chunk);
    let start = 0;
    const base = position;
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, nl);
      position = base + nl + 1;
      const out = decode(carry.length === 0 ? piece : Buffer.concat([...carry, piece]), false);
      carry = [];
      start = nl + 1;
      yield out;
    }
    position = base + n;
    // The chunk's buffer is reused by the next read: keep a copy of the unfinished line.
    if (start < n) carry.push(Buffer.from(chunk.subarray(start)));
  }
  yield decode(Buffer.concat(carry), true);
}
