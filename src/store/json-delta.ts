import { isUtf8 } from 'node:buffer';
import type { FileHandle } from 'node:fs/promises';
import { docKey } from '../core/doc.js';
import type { DocState } from '../core/types.js';
import { EntryStates } from './entry-states.js';
import type { IndexEntry } from './index-entry.js';
import { fingerprintOf, sameFingerprint, type FileVersion } from './fs-util.js';
import { reservedField } from './user-file.js';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
/** Bytes compared per step while looking for where two versions of a file start (or stop) differing. */
const COMPARE_BLOCK = 1 << 16;

/**
 * A JSON file (a top-level array of documents) as p2psync last read it: that version, still open (a file replaced
 * by rename stays readable through it), and where each document sits in it. The next version is compared with it
 * byte for byte, and only the text between the documents both versions share is parsed (`readDelta`): a lowdb app
 * or `jq ... > tmp && mv tmp file` that changes one document of 10,000 costs a read and a compare of the file, not a
 * parse of every document and a deep comparison of each with what p2psync knew.
 */
export interface JsonImage {
  handle: FileHandle;
  version: FileVersion;
  /** Offsets of the array's `[` and `]`. */
  open: number;
  close: number;
  /** Byte range of each element, in file order. */
  starts: Float64Array;
  ends: Float64Array;
  /** The id of each element's document. */
  ids: string[];
  /** The document each element holds, as p2psync knows it (held as the writer's `known` holds it: no parse). */
  docs: Array<IndexEntry | DocState>;
}

/** Where a top-level array's elements are; undefined if the text is not one this scanner is sure about. */
export interface ArrayRanges {
  open: number;
  close: number;
  starts: number[];
  ends: number[];
}

/**
 * Finds the elements of a top-level JSON array of objects in `buf` (after an optional byte order mark and
 * whitespace, and followed by whitespace only). It checks structure only: each element is parsed by the caller.
 */
export function scanArray(buf: Buffer): ArrayRanges | undefined {
  let i = buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf ? 3 : 0;
  i = skipSpace(buf, i, buf.length);
  if (buf[i] !== OPEN_ARRAY) return undefined;
  const open = i;
  let close = buf.length - 1;
  while (close > open && isSpace(buf[close]!)) close--;
  if (close <= open || buf[close] !== CLOSE_ARRAY) return undefined;
  const found = scanElements(buf, open + 1, close, false, false);
  return found && { open, close, starts: found.starts, ends: found.ends };
}

/** A new version of the file, read whole, against the image of the last one. */
export interface DeltaResult {
  /** Every document of the new version in file order: held as the image holds it where an element is unchanged. */
  docs: EntryStates;
  /** The documents parsed anew (those between the first and the last difference). */
  changed: Map<string, DocState>;
  /** Ids of the image's documents between the first and the last difference (some may be in `changed` again). */
  removed: string[];
  ranges: ArrayRanges;
}

/**
 * The documents of `next` (the new version's bytes), taking every element whose bytes are those of the image's
 * version (before and after the changed span) as the document the image has for it, and parsing only the rest.
 * Undefined when that cannot be done with certainty (the image's version was modified in place, the change reaches
 * outside the array, a new element is not a valid document, a key repeats...): the caller then reads the file the
 * ordinary way, which also reports whatever is wrong with it.
 */
export async function readDelta(image: JsonImage, next: Buffer, primaryKey: string): Promise<DeltaResult | undefined> {
  const old = await readUnchanged(image);
  if (!old) return undefined;
  const p = commonPrefix(old, next);
  const s = commonSuffix(old, next, Math.min(old.length, next.length) - p);
  const shift = next.length - old.length;
  const n = image.docs.length;
  if (p === old.length && shift === 0) {
    return { docs: docsOf(image, 0, n), changed: new Map(), removed: [], ranges: rangesOf(image) };
  }
  // The array's brackets, and anything around them, must be shared.
  if (p <= image.open || old.length - s > image.close) return undefined;
  // Elements kept from the start: those that end before the change (`}` is self-delimiting, so an element whose
  // bytes are all shared is the same element). Kept from the end: those that start in the shared tail.
  let k = 0;
  while (k < n && image.ends[k]! <= p) k++;
  let m = n;
  while (m > k && image.starts[m - 1]! >= old.length - s) m--;
  const left = k > 0 ? image.ends[k - 1]! : image.open + 1;
  const right = m < n ? image.starts[m]! + shift : image.close + shift;
  if (right < left) return undefined;
  const gap = scanElements(next, left, right, k > 0, m < n);
  if (!gap || !isUtf8(next.subarray(left, right))) return undefined;
  const docs = docsOf(image, 0, k);
  const changed = new Map<string, DocState>();
  for (let j = 0; j < gap.starts.length; j++) {
    const doc = parseDoc(next.toString('utf8', gap.starts[j], gap.ends[j]), primaryKey);
    if (!doc) return undefined;
    const id = doc[primaryKey] as string;
    if (docs.has(id)) return undefined;
    docs.set(id, doc);
    changed.set(id, doc);
  }
  const removed: string[] = [];
  for (let i = k; i < m; i++) removed.push(image.ids[i]!);
  for (let i = m; i < n; i++) {
    const id = image.ids[i]!;
    if (docs.has(id)) return undefined;
    docs.hold(id, image.docs[i]!);
  }
  const starts: number[] = [];
  const ends: number[] = [];
  for (let i = 0; i < k; i++) {
    starts.push(image.starts[i]!);
    ends.push(image.ends[i]!);
  }
  for (let j = 0; j < gap.starts.length; j++) {
    starts.push(gap.starts[j]!);
    ends.push(gap.ends[j]!);
  }
  for (let i = m; i < n; i++) {
    starts.push(image.starts[i]! + shift);
    ends.push(image.ends[i]! + shift);
  }
  return { docs, changed, removed, ranges: { open: image.open, close: image.close + shift, starts, ends } };
}

/** The image's documents `[from, to)`, held as it holds them. */
function docsOf(image: JsonImage, from: number, to: number): EntryStates {
  const out = new EntryStates();
  for (let i = from; i < to; i++) out.hold(image.ids[i]!, image.docs[i]!);
  return out;
}

function rangesOf(image: JsonImage): ArrayRanges {
  return { open: image.open, close: image.close, starts: [...image.starts], ends: [...image.ends] };
}

/** The image's version, if it is still as it was read (not modified in place since). */
async function readUnchanged(image: JsonImage): Promise<Buffer | undefined> {
  try {
    if (!sameFingerprint(fingerprintOf(await image.handle.stat()), image.version)) return undefined;
    const buf = await readWhole(image.handle, image.version.size);
    if (!buf || !sameFingerprint(fingerprintOf(await image.handle.stat()), image.version)) return undefined;
    return buf;
  } catch {
    return undefined;
  }
}

/** The first `size` bytes of an open file; undefined if it is shorter. */
export async function readWhole(handle: FileHandle, size: number): Promise<Buffer | undefined> {
  const buf = Buffer.allocUnsafe(size);
  let got = 0;
  while (got < size) {
    const { bytesRead } = await handle.read(buf, got, size - got, got);
    if (bytesRead === 0) return undefined;
    got += bytesRead;
  }
  return buf;
}

/** A parsed element, if it is a valid document (the ordinary read reports what is wrong with one that is not). */
function parseDoc(text: string, primaryKey: string): DocState | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  if (docKey(o, primaryKey) === undefined || reservedField(o) !== undefined) return undefined;
  o._deleted = false;
  return o as DocState;
}

/** Length of the longest common prefix of `a` and `b`. */
export function commonPrefix(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  let at = 0;
  while (at < n) {
    const end = Math.min(n, at + COMPARE_BLOCK);
    if (a.compare(b, at, end, at, end) !== 0) {
      while (a[at] === b[at]) at++;
      return at;
    }
    at = end;
  }
  return n;
}

/** Length of the longest common suffix of `a` and `b`, at most `max`. */
export function commonSuffix(a: Buffer, b: Buffer, max: number): number {
  const la = a.length;
  const lb = b.length;
  let s = 0;
  while (s < max) {
    const len = Math.min(max - s, COMPARE_BLOCK);
    if (a.compare(b, lb - s - len, lb - s, la - s - len, la - s) !== 0) {
      while (s < max && a[la - s - 1] === b[lb - s - 1]) s++;
      return s;
    }
    s += len;
  }
  return max;
}

/**
 * The object elements in `buf[from, to)`, which must be a run of an array's content: whitespace, elements and the
 * commas between them, plus a leading comma when an element comes before `from` (`afterElement`) and a trailing one
 * when one follows `to` (`beforeElement`). Undefined for anything else (including elements that are not objects).
 */
export function scanElements(
  buf: Buffer,
  from: number,
  to: number,
  afterElement: boolean,
  beforeElement: boolean,
): { starts: number[]; ends: number[] } | undefined {
  const starts: number[] = [];
  const ends: number[] = [];
  /** True when the next token must be a comma (an element precedes), false when it must be an element. */
  let wantComma = afterElement;
  let i = skipSpace(buf, from, to);
  while (i < to) {
    const c = buf[i]!;
    if (wantComma) {
      if (c !== COMMA) return undefined;
      wantComma = false;
      i = skipSpace(buf, i + 1, to);
      continue;
    }
    if (c !== OPEN_OBJECT) return undefined;
    const end = objectEnd(buf, i, to);
    if (end < 0) return undefined;
    starts.push(i);
    ends.push(end);
    wantComma = true;
    i = skipSpace(buf, end, to);
  }
  // Between two elements the run must end after a comma; before `]` (or at an empty array) after an element.
  if (beforeElement ? wantComma : !wantComma && (afterElement || starts.length > 0)) return undefined;
  return { starts, ends };
}

/** The offset just after the object starting at `at` (its `{`), or -1 if it does not end before `to`. */
function objectEnd(buf: Buffer, at: number, to: number): number {
  let depth = 0;
  // The next backslash at or after the current position (found once per stretch: strings rarely have any).
  let backslash = -1;
  for (let i = at; i < to; i++) {
    const c = buf[i]!;
    if (c === QUOTE) {
      // Skip the string: to the next quote that is not escaped.
      for (i++; ;) {
        const q = buf.indexOf(QUOTE, i);
        if (q < 0 || q >= to) return -1;
        if (backslash < i) backslash = indexOrEnd(buf, BACKSLASH, i);
        if (backslash < q) {
          i = backslash + 2; // past the escaped byte
          continue;
        }
        i = q;
        break;
      }
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) depth++;
    else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      depth--;
      if (depth === 0) return i + 1;
      if (depth < 0) return -1;
    }
  }
  return -1;
}

function indexOrEnd(buf: Buffer, byte: number, from: number): number {
  const at = buf.indexOf(byte, from);
  return at < 0 ? buf.length : at;
}

function skipSpace(buf: Buffer, i: number, to: number): number {
  while (i < to && isSpace(buf[i]!)) i++;
  return i;
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}
