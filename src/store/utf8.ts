import { isUtf8 } from 'node:buffer';
import { P2PSyncError } from '../core/errors.js';

/**
 * Decodes a store file as UTF-8, refusing invalid bytes with E_PARSE (file, line, column, byte offset). A lenient
 * decoder would turn them into U+FFFD, and the next rewrite would then silently change the user's documents.
 * `isUtf8` is a fast whole-buffer check; the offset is searched only when it fails.
 */
export function decodeUtf8(buf: Buffer, file: string): string {
  if (isUtf8(buf)) return buf.toString('utf8');
  const offset = firstInvalidUtf8(buf);
  let line = 1;
  let lineStart = 0;
  for (let i = buf.indexOf(0x0a); i !== -1 && i < offset; i = buf.indexOf(0x0a, i + 1)) {
    line++;
    lineStart = i + 1;
  }
  const column = offset - lineStart + 1;
  const byte = buf[offset]!.toString(16).padStart(2, '0');
  return fail(file, offset, line, column, byte);
}

function fail(file: string, offset: number, line: number, column: number, byte: string): never {
  throw new P2PSyncError(
    'E_PARSE',
    `${file}:${line}:${column}: invalid UTF-8 (byte 0x${byte} at byte offset ${offset}); the file must be UTF-8`,
    {
      file,
      line,
      column,
      offset,
    },
  );
}

/** The offset of the first byte that does not belong to a well-formed UTF-8 sequence (RFC 3629), or -1. */
export function firstInvalidUtf8(buf: Uint8Array): number {
  const n = buf.length;
  let i = 0;
  while (i < n) {
    const b = buf[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lo = 0xa0;
      else if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lo = 0x90;
      else if (b === 0xf4) hi = 0x8f;
    } else return i;
    for (let k = 1; k <= need; k++) {
      const c = buf[i + k];
      if (c === undefined || c < (k === 1 ? lo : 0x80) || c > (k === 1 ? hi : 0xbf)) return i;
    }
    i += need + 1;
  }
  return -1;
}
