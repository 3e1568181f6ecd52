/**
 * The `p2psyncDigest` extension message (docs/PROTOCOL.md, "Digests for verify"): its names, shapes and limits,
 * and the validation of both directions. Pure: no I/O. A query and its answer are untrusted JSON from a peer.
 */
import { compareIds } from '../core/doc.js';
import { P2PSyncError } from '../core/errors.js';

/** The request method. RxDB ignores unknown methods; a p2psync peer without this extension answers an error. */
export const DIGEST_METHOD = 'p2psyncDigest';

/**
 * Key of the `token` request's hello (`params[0]`) by which a p2psync peer says it serves `DIGEST_METHOD`, and the
 * version of the message it serves. A separate key next to `p2psync` (the capability version), so it needs no
 * version bump shared with other extensions.
 */
export const DIGEST_FEATURE = 'p2psyncDigest';
export const DIGEST_VERSION = 1;

/** Key of an observer's hello (`p2psync verify`): it holds no documents and never replicates. */
export const OBSERVER_FEATURE = 'p2psyncObserver';

/**
 * The error code an observer answers every `token` request with. A replica that gets it does not replicate with
 * that peer (an RxDB peer ignores any peer whose `token` request failed; a p2psync peer stops its handshake).
 */
export const OBSERVER_ERROR_CODE = 'E_OBSERVER';

/** The error a request failed with is the observer's answer (see `OBSERVER_ERROR_CODE`). */
export function isObserverError(err: unknown): boolean {
  const remote = err instanceof P2PSyncError ? err.details.remote : undefined;
  return typeof remote === 'object' && remote !== null && (remote as { code?: unknown }).code === OBSERVER_ERROR_CODE;
}

/** Bounds of one query, chosen so that an answer stays far below the 64 Mi-char message limit. */
export const DIGEST_LIMITS = Object.freeze({
  /** Ranges in one request. */
  maxRanges: 32,
  /** Largest `leaves`: a range with at most this many documents is answered with its entries. */
  maxLeaves: 64,
  /** `split` bounds: a larger range is cut into at most this many parts. */
  minSplit: 2,
  maxSplit: 64,
  /** Longest range bound (the longest primary key a replica accepts). */
  maxBoundChars: 2048,
});

/** `[from, to)`: `from` inclusive (null: before the first id), `to` exclusive (null: after the last id). */
export type KeyRange = readonly [from: string | null, to: string | null];

export interface DigestQuery {
  ranges: KeyRange[];
  /** A range holding at most this many documents is answered with `entries`. At least 1. */
  leaves: number;
  /** A larger range is answered with up to `split - 1` `bounds` that cut it into parts of about equal size. */
  split: number;
}

/** The answer for one range: its document count and digest, plus entries (small range) or bounds (large range). */
export interface RangeAnswer {
  count: number;
  /** Lowercase hex SHA-256 over the leaf hashes of the range's documents in id order. */
  digest: string;
  /** `[id, leaf hash]` of every document of the range, in id order, when `count <= leaves`. */
  entries?: Array<[string, string]>;
  /** Ids strictly inside the range, increasing, when `count > leaves`. */
  bounds?: string[];
}

const HEX64 = /^[0-9a-f]{64}$/;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isBound(value: unknown): value is string | null {
  return (
    value === null || (typeof value === 'string' && value.length > 0 && value.length <= DIGEST_LIMITS.maxBoundChars)
  );
}

/** True when `id` lies in the range. */
export function inRange(id: string, [from, to]: KeyRange): boolean {
  return (from === null || compareIds(id, from) >= 0) && (to === null || compareIds(id, to) < 0);
}

function wholeNumber(value: unknown, min: number, max: number): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= min && value <= max;
}

/** Checks the params of a `p2psyncDigest` request (`[query]`). Returns the query, or why it is refused. */
export function checkDigestQuery(params: readonly unknown[]): DigestQuery | string {
  const q = params[0];
  if (!isPlainObject(q)) return 'the query must be a JSON object';
  const { ranges, leaves, split } = q;
  if (!wholeNumber(leaves, 1, DIGEST_LIMITS.maxLeaves))
    return `leaves must be a whole number from 1 to ${DIGEST_LIMITS.maxLeaves}`;
  if (!wholeNumber(split, DIGEST_LIMITS.minSplit, DIGEST_LIMITS.maxSplit)) {
    return `split must be a whole number from ${DIGEST_LIMITS.minSplit} to ${DIGEST_LIMITS.maxSplit}`;
  }
  if (!Array.isArray(ranges) || ranges.length === 0 || ranges.length > DIGEST_LIMITS.maxRanges) {
    return `ranges must be an array of 1 to ${DIGEST_LIMITS.maxRanges} ranges`;
  }
  const out: KeyRange[] = [];
  for (const r of ranges) {
    if (!Array.isArray(r) || r.length !== 2 || !isBound(r[0]) || !isBound(r[1])) {
      return `a range must be [from, to], each a string of 1 to ${DIGEST_LIMITS.maxBoundChars} characters or null`;
    }
    const [from, to] = r as [string | null, string | null];
    if (from !== null && to !== null && compareIds(from, to) >= 0) return 'a range must have from < to';
    out.push([from, to]);
  }
  return { ranges: out, leaves, split };
}

/**
 * Checks a peer's answer to `query`: one entry per range, counts and digests well formed, entries exactly when
 * the count allows them (sorted, inside the range, as many as the count), otherwise bounds that are strictly
 * inside the range and increasing, so that cutting at them always makes progress. Returns why it is refused.
 */
export function checkDigestAnswer(result: unknown, query: DigestQuery): RangeAnswer[] | string {
  if (!Array.isArray(result) || result.length !== query.ranges.length)
    return 'the answer must hold one entry per range';
  const out: RangeAnswer[] = [];
  for (let i = 0; i < result.length; i++) {
    const a: unknown = result[i];
    const range = query.ranges[i]!;
    if (!isPlainObject(a)) return `answer ${i} is not an object`;
    const { count, digest } = a;
    if (!wholeNumber(count, 0, Number.MAX_SAFE_INTEGER)) return `answer ${i}: count is not a whole number`;
    if (typeof digest !== 'string' || !HEX64.test(digest)) return `answer ${i}: digest is not 64 lowercase hex digits`;
    if (count <= query.leaves) {
      const entries = checkEntries(a.entries, count, range);
      if (typeof entries === 'string') return `answer ${i}: ${entries}`;
      out.push({ count, digest, entries });
    } else {
      const bounds = checkBounds(a.bounds, query.split, range);
      if (typeof bounds === 'string') return `answer ${i}: ${bounds}`;
      out.push({ count, digest, bounds });
    }
  }
  return out;
}

function checkEntries(value: unknown, count: number, range: KeyRange): Array<[string, string]> | string {
  if (!Array.isArray(value) || value.length !== count) return 'entries must list every document of a small range';
  const out: Array<[string, string]> = [];
  let previous: string | undefined;
  for (const e of value) {
    if (
      !Array.isArray(e) ||
      e.length !== 2 ||
      !isBound(e[0]) ||
      e[0] === null ||
      typeof e[1] !== 'string' ||
      !HEX64.test(e[1])
    ) {
      return 'an entry must be [id, 64 hex digits]';
    }
    const id = e[0];
    if (!inRange(id, range)) return 'an entry lies outside its range';
    if (previous !== undefined && compareIds(previous, id) >= 0) return 'entries must be in increasing id order';
    previous = id;
    out.push([id, e[1]]);
  }
  return out;
}

function checkBounds(value: unknown, split: number, [from, to]: KeyRange): string[] | string {
  if (!Array.isArray(value) || value.length === 0 || value.length > split - 1)
    return `bounds must hold 1 to ${split - 1} ids`;
  let previous = from;
  for (const b of value) {
    if (!isBound(b) || b === null) return 'a bound must be a non-empty string';
    if ((previous !== null && compareIds(previous, b) >= 0) || (to !== null && compareIds(b, to) >= 0)) {
      return 'bounds must be increasing and strictly inside their range';
    }
    previous = b;
  }
  return value as string[];
}

/** The hello a peer put in its `token` request (`params[0]`), read for the features above. */
export function helloFeature(params: readonly unknown[], feature: string): number {
  const hello = params[0];
  const v = isPlainObject(hello) ? hello[feature] : undefined;
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 1 ? v : 0;
}
