import { open } from 'node:fs/promises';
import { ioError } from './fs-util.js';

/** Bytes read per call: big enough for few system calls, small next to a journal of hundreds of megabytes. */
const CHUNK_BYTES = 4 << 20;

/** One piece of a file split at its newlines, as `text.split('\n')` would give it. */
export interface FileLine {
  /** The line without its newline, decoded as UTF-8. */
  text: string;
  /** 1-based line number. */
  line: number;
  /** The piece after the last newline (empty when the file ends with one): it may be cut short. */
  last: boolean;
  /** Bytes of the file read up to the end of this piece. */
  bytes: number;
}

/**
 * The lines of a file, read a chunk at a time (undefined if it does not exist). Unlike reading the file into one
 * string and splitting it, only one line's text is held at a time: the sidecar of a million documents is a few
 * hundred megabytes, and holding it whole while its documents are being parsed doubled the peak memory of an open.
 */
export async function fileLines(path: string, what: string): Promise<AsyncGenerator<FileLine> | undefined> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw ioError(err, path, what);
  }
  const h = handle;
  return (async function* lines(): AsyncGenerator<FileLine> {
    const buf = Buffer.allocUnsafe(CHUNK_BYTES);
    let carry: Buffer[] = [];
    let position = 0;
    let line = 0;
    try {
      for (;;) {
        let n: number;
        try {
          n = (await h.read(buf, 0, CHUNK_BYTES, position)).bytesRead;
        } catch (err) {
          throw ioError(err, path, what);
        }
        if (n === 0) break;
        const chunk = buf.subarray(0, n);
        let start = 0;
        for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
          const piece = chunk.subarray(start, nl);
          const text = carry.length === 0 ? piece.toString('utf8') : Buffer.concat([...carry, piece]).toString('utf8');
          carry = [];
          start = nl + 1;
          yield { text, line: ++line, last: false, bytes: position + start };
        }
        // The chunk's buffer is reused by the next read: keep a copy of the unfinished line.
        if (start < n) carry.push(Buffer.from(chunk.subarray(start)));
        position += n;
      }
      yield { text: Buffer.concat(carry).toString('utf8'), line: ++line, last: true, bytes: position };
    } finally {
      await h.close().catch(() => undefined);
    }
  })();
}
