import { P2PSyncError } from './errors.js';
import type { DocState, Json } from './types.js';

/**
 * Pure helpers for document states (docs/PROTOCOL.md §3). Comparisons work on JSON semantics: key order is ignored,
 * `undefined` members do not exist, a missing `_deleted` is `false`.
 */

/** Deep equality of two doc states as they would compare after a JSON round trip. */
export function docEquals(a: DocState | null | undefined, b: DocState | null | undefined): boolean {
  if (a === b) return true;
  if (a == null || b == null) return a == b;
  if ((a._deleted === true) !== (b._deleted === true)) return false;
  return objectEquals(a as Record<string, unknown>, b as Record<string, unknown>, true);
}

function objectEquals(a: Record<string, unknown>, b: Record<string, unknown>, top: boolean): boolean {
  let countA = 0;
  for (const key in a) {
    if (!Object.hasOwn(a, key)) continue;
    const va = a[key];
    if (va === undefined || (top && key === '_deleted')) continue;
    countA++;
    if (!Object.hasOwn(b, key) || !jsonEquals(va, b[key])) return false;
  }
  let countB = 0;
  for (const key in b) {
    if (!Object.hasOwn(b, key)) continue;
    if (b[key] === undefined || (top && key === '_deleted')) continue;
    countB++;
  }
  return countA === countB;
}

export function jsonEquals(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) {
    // NaN and non-finite numbers become null in JSON
    if (typeof a === 'number' && typeof b === 'number') return !Number.isFinite(a) && !Number.isFinite(b);
    return false;
  }
  const arrA = Array.isArray(a);
  if (arrA !== Array.isArray(b)) return false;
  if (arrA) {
    const x = a as unknown[];
    const y = b as unknown[];
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (!jsonEquals(x[i] ?? null, y[i] ?? null)) return false;
    return true;
  }
  return objectEquals(a as Record<string, unknown>, b as Record<string, unknown>, false);
}

/** Fields that are p2psync/RxDB internals and never travel or get stored in user files. */
export function isInternalField(field: string): boolean {
  return field === '_deleted' || field === '_meta' || field === '_rev' || field === '_attachments';
}

/** The user's fields of a doc state (what goes into the user's file), without `_deleted` and internals. */
export function userFields(doc: DocState): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const key of Object.keys(doc)) {
    const v = doc[key];
    if (v === undefined || isInternalField(key)) continue;
    out[key] = v;
  }
  return out;
}

/** A wire doc state from user fields: internals removed, `_deleted` set to a boolean. */
export function toDocState(fields: Record<string, unknown>, deleted = false): DocState {
  const out: DocState = { ...(fields as Record<string, Json>), _deleted: deleted };
  delete out._meta;
  delete out._rev;
  delete out._attachments;
  return out;
}

/** Returns the primary key value if it is a non-empty string, else undefined. */
export function docKey(doc: Record<string, unknown>, primaryKey: string): string | undefined {
  const v = doc[primaryKey];
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

/** Compares two strings by UTF-16 code units, like JavaScript's `<` (and RxDB). */
export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Validates a document and turns it into a normalised doc state: a copy, so that the caller's object can change
 * later without changing a store. E_NOT_OBJECT or E_BAD_KEY.
 */
export function normaliseDocument(document: unknown, primaryKey: string): DocState {
  if (typeof document !== 'object' || document === null || Array.isArray(document)) {
    throw new P2PSyncError('E_NOT_OBJECT', 'a document must be a JSON object');
  }
  const d = document as Record<string, unknown>;
  if (docKey(d, primaryKey) === undefined) {
    throw new P2PSyncError('E_BAD_KEY', `a document needs a non-empty string "${primaryKey}"`, { key: primaryKey });
  }
  return toDocState(d, d._deleted === true);
}
