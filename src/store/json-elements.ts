import type { FileHandle } from 'node:fs/promises';
import { ioError } from './fs-util.js';

const CHUNK_BYTES = 4 << 20;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** The file is not a plain top-level JSON array (or not one this scanner is sure about): read it whole instead. */
export class NotAnArray extends Error {}

/**
 * The elements of a file that is one top-level JSON array, as the bytes of each element's text, read a chunk at a
 * time (so that a big file's text is never held whole). The scanner only finds where elements end (a comma or the
 * closing bracket at depth 1, outside strings); each element is parsed by the caller, which therefore still sees
 * any syntax error inside one. Anything around the array other than whitespace (or a byte order mark) throws
 * `NotAnArray`, as does a nesting it cannot follow. An element's bytes may be a view of the read buffer: use them
 * before asking for the next one.
 */
export async function* jsonArrayElements(
  handle: FileHandle,
  path: string,
  hash: { update(bytes: Buffer): unknown },
): AsyncGenerator<Buffer> {
  const buf = Buffer.allocUnsafe(CHUNK_BYTES);
  let position = 0;
  /** 0: before '[', 1: inside the array, 2: after ']'. */
  let phase = 0;
  let depth = 0;
  let inString = false;
  let escaped = false;
  let carry: Buffer[] = [];
  /** The current element has begun (a non-space byte), and how many elements ended with a comma. */
  let started = false;
  let count = 0;
  for (;;) {
    let n: number;
    try {
      n = (await handle.read(buf, 0, CHUNK_BYTES, position)).bytesRead;
    } catch (err) {
      throw ioError(err, path, 'read');
    }
    if (n === 0) break;
    const chunk = buf.subarray(0, n);
    hash.update(chunk);
    let i = 0;
    if (position === 0 && n >= 3 && chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) i = 3;
    position += n;
    let from = i; // start of the current element's bytes within this chunk
    let nextQuote = -1;
    let nextBackslash = -1;
    for (; i < n; i++) {
      const c = chunk[i]!;
      if (inString) {
        if (escaped) escaped = false;
        else if (c === BACKSLASH) escaped = true;
        else if (c === QUOTE) inString = false;
        else {
          // Jump to the next quote or backslash: most of a document's bytes are string content. Their positions
          // are remembered until passed, so a chunk without backslashes is not searched to its end every time.
          if (nextQuote < i) nextQuote = indexOr(chunk, QUOTE, i, n);
          if (nextBackslash < i) nextBackslash = indexOr(chunk, BACKSLASH, i, n);
          i = Math.min(nextQuote, nextBackslash) - 1;
        }
        continue;
      }
      if (phase !== 1) {
        if (isSpace(c)) continue;
        if (phase === 0 && c === 0x5b) {
          phase = 1;
          depth = 1;
          from = i + 1;
          continue;
        }
        throw new NotAnArray();
      }
      if (c === QUOTE) {
        inString = true;
        started = true;
      } else if (c === 0x7b || c === 0x5b) {
        depth++;
        started = true;
      } else if (c === 0x7d || c === 0x5d) {
        depth--;
        if (depth === 0) {
          // The closing bracket: the last element ends here; `[1,]` is an error the whole-text parse reports.
          const last = element(carry, chunk, from, i);
          carry = [];
          if (started) yield last;
          else if (count > 0) throw new NotAnArray();
          started = false;
          phase = 2;
        } else if (depth < 0) throw new NotAnArray();
      } else if (c === 0x2c && depth === 1) {
        const el = element(carry, chunk, from, i);
        carry = [];
        // `[,` or `,,` is a syntax error the whole-text parse reports with its position.
        if (!started) throw new NotAnArray();
        count++;
        yield el;
        started = false;
        from = i + 1;
      } else if (!isSpace(c)) started = true;
    }
    // The chunk's buffer is reused by the next read: keep a copy of the unfinished element.
    if (phase === 1 && from < n) carry.push(Buffer.from(chunk.subarray(from)));
  }
  if (phase !== 2 || inString) throw new NotAnArray();
}

function element(carry: Buffer[], chunk: Buffer, from: number, to: number): Buffer {
  const tail = chunk.subarray(from, to);
  return carry.length === 0 ? tail : Buffer.concat([...carry, tail]);
}

/** The position of `byte` in `chunk` from `from` on, or `n` (the chunk's end) if there is none. */
function indexOr(chunk: Buffer, byte: number, from: number, n: number): number {
  const at = chunk.indexOf(byte, from);
  return at === -1 ? n : at;
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}
