import type { Checkpoint, DocState, Json } from '../core/types.js';
import { compareIds } from '../core/doc.js';

/**
 * Validation of everything a peer sends, before any of it is used (docs/PROTOCOL.md §3; STYLE "never trust a frame").
 * Values come straight from `JSON.parse`, so they are plain data; the checks are about shape, limits and keys
 * that could pollute prototypes if another layer ever copied them with assignment semantics.
 */

export interface DocRules {
  primaryKey: string;
  maxDepth: number;
  maxKeyLength: number;
}

/** Fields that are internals of RxDB and never belong to a doc state; a peer that sends them gets them removed. */
const INTERNALS = ['_meta', '_rev', '_attachments'] as const;

/**
 * Checks a doc state and normalises it in place (it is a freshly parsed value nobody else holds): `_deleted`
 * missing becomes `false`, RxDB internals are removed. Returns the doc, or a reason why it is refused: not a
 * plain object, no non-empty string primary key (or a longer one than allowed, or `__proto__`), `_deleted` neither
 * boolean nor missing, a `__proto__` member anywhere, or nesting deeper than allowed.
 */
export function checkDoc(value: unknown, rules: DocRules): DocState | string {
  if (!isPlainObject(value)) return 'a document must be a JSON object';
  const key = value[rules.primaryKey];
  if (typeof key !== 'string' || key.length === 0) return `a document needs a non-empty string "${rules.primaryKey}"`;
  if (key.length > rules.maxKeyLength) return `the primary key is longer than ${rules.maxKeyLength} characters`;
  if (key === '__proto__') return 'the primary key may not be "__proto__"';
  const deleted = value._deleted;
  if (deleted === undefined) value._deleted = false;
  else if (typeof deleted !== 'boolean') return '"_deleted" must be a boolean';
  for (const f of INTERNALS) if (Object.hasOwn(value, f)) delete value[f];
  const bad = checkTree(value, 1, rules.maxDepth);
  return bad ?? (value as DocState);
}

/** Rejects `__proto__` members at any depth and nesting deeper than `maxDepth`. */
function checkTree(node: object, depth: number, maxDepth: number): string | undefined {
  if (depth > maxDepth) return `a document may not nest deeper than ${maxDepth} levels`;
  if (Array.isArray(node)) {
    for (const v of node) {
      if (typeof v === 'object' && v !== null) {
        const bad = checkTree(v, depth + 1, maxDepth);
        if (bad) return bad;
      }
    }
    return undefined;
  }
  if (Object.hasOwn(node, '__proto__')) return 'a document may not have a "__proto__" member';
  const rec = node as Record<string, unknown>;
  for (const k in rec) {
    const v = rec[k];
    if (typeof v === 'object' && v !== null) {
      const bad = checkTree(v, depth + 1, maxDepth);
      if (bad) return bad;
    }
  }
  return undefined;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// ---- checkpoints ----

const MAX_CHECKPOINT_CHARS = 8192;

/**
 * A master checkpoint as the fork receives it: opaque, but a JSON object (or null before the first document).
 * Returns undefined when it is not acceptable: another type, a `__proto__` member, or more than 8 KiB of JSON.
 */
export function checkCheckpoint(value: unknown): Json | undefined {
  if (value === null) return null;
  if (!isPlainObject(value) || Object.hasOwn(value, '__proto__')) return undefined;
  if (JSON.stringify(value).length > MAX_CHECKPOINT_CHARS) return undefined;
  return value as Json;
}

/** RxDB's `stackCheckpoints`: keys of the older checkpoint survive unless the newer one overwrites them. */
export function mergeCheckpoints(previous: Json, next: Json): Json {
  if (!isPlainObject(next)) return previous;
  return isPlainObject(previous) ? { ...previous, ...next } : { ...next };
}

/** True if the value has the `{id, lwt}` shape of an RxDB or p2psync master checkpoint. */
export function isLwtCheckpoint(value: unknown): value is Checkpoint {
  return (
    isPlainObject(value) && typeof value.id === 'string' && typeof value.lwt === 'number' && Number.isFinite(value.lwt)
  );
}

/** Orders two checkpoints when both have the `{id, lwt}` shape; undefined when they cannot be compared. */
export function compareCheckpoints(a: unknown, b: unknown): number | undefined {
  if (!isLwtCheckpoint(a) || !isLwtCheckpoint(b)) return undefined;
  return a.lwt - b.lwt || compareIds(a.id, b.id);
}

// ---- method params and results ----

export interface WriteRow {
  newDocumentState: DocState;
  assumedMasterState?: DocState;
}

/** `masterWrite` params: `[rows]`. Any invalid row refuses the whole request (nothing is written). */
export function checkWriteRows(params: unknown[], rules: DocRules): WriteRow[] | string {
  const rows = params[0];
  if (!Array.isArray(rows)) return 'masterWrite expects an array of rows';
  const out: WriteRow[] = new Array<WriteRow>(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const row: unknown = rows[i];
    if (!isPlainObject(row)) return `row ${i} is not an object`;
    const doc = checkDoc(row.newDocumentState, rules);
    if (typeof doc === 'string') return `row ${i}: newDocumentState: ${doc}`;
    const assumedRaw = row.assumedMasterState;
    if (assumedRaw === undefined || assumedRaw === null) {
      out[i] = { newDocumentState: doc };
      continue;
    }
    const assumed = checkDoc(assumedRaw, rules);
    if (typeof assumed === 'string') return `row ${i}: assumedMasterState: ${assumed}`;
    if (assumed[rules.primaryKey] !== doc[rules.primaryKey]) return `row ${i}: assumedMasterState is another document`;
    out[i] = { newDocumentState: doc, assumedMasterState: assumed };
  }
  return out;
}

export interface CheckedBatch {
  checkpoint: Json;
  documents: DocState[];
  /** Documents that failed validation and were left out. */
  rejected: string[];
}

/** A `masterChangesSince` result or a stream event: `{checkpoint, documents}`. Invalid documents are left out. */
export function checkBatch(value: unknown, rules: DocRules): CheckedBatch | string {
  if (!isPlainObject(value)) return 'the result is not an object';
  const checkpoint = checkCheckpoint(value.checkpoint ?? null);
  if (checkpoint === undefined) return 'the checkpoint is not a JSON object';
  const docs = checkDocs(value.documents, rules);
  if (typeof docs === 'string') return docs;
  return { checkpoint, documents: docs.documents, rejected: docs.rejected };
}

/** An array of doc states (a page's documents, or `masterWrite` conflicts); invalid entries are left out. */
export function checkDocs(value: unknown, rules: DocRules): { documents: DocState[]; rejected: string[] } | string {
  if (!Array.isArray(value)) return 'documents is not an array';
  const documents: DocState[] = [];
  const rejected: string[] = [];
  for (const d of value) {
    const doc = checkDoc(d, rules);
    if (typeof doc === 'string') rejected.push(doc);
    else documents.push(doc);
  }
  return { documents, rejected };
}
