import { docEquals, jsonEquals } from '../core/doc.js';
import type { DocState, Json } from '../core/types.js';
import type { ConflictInput, SyncConflictStrategy } from '../replication/conflict.js';

/**
 * The `merge` strategy's algorithm: a per-field three-way merge of the fork's state and the master's state, with
 * the last state both agreed on (the fork's assumed master state) as the base. Pure and deterministic: the result
 * depends on the three inputs and their roles only, never on which peer computes it or on key order.
 */

/** What a merge produced: the document, and what made it a conflict (empty for a clean merge). */
export interface MergeOutcome {
  document: DocState;
  /** Field paths (`a.b.c`) changed on both sides to different values; the master's value was taken. */
  fields: string[];
  /** Which input lost something: `local` (the fork's state) or `remote` (the master's), at most one. */
  lost: 'local' | 'remote' | undefined;
}

type Obj = Record<string, Json | undefined>;

/** Absent member: differs from every JSON value, `null` included. */
const ABSENT = Symbol('absent');
type Slot = Json | typeof ABSENT;

/**
 * Merges `fork` (the fork's state, its write the master refused) with `master` (the master's current state) over
 * `base` (the fork's assumed master state; undefined when it never saw the document on the master: a two-way merge,
 * where a field present on one side only is kept and fields that differ count as changed on both sides).
 *
 * - A field changed on one side only takes that side's value (a removal is a change).
 * - A field changed on both sides to different values takes the master's value (RxDB's rule) and is listed in
 *   `fields`; the fork's state is then the loser (`lost: 'local'`).
 * - Plain objects on both sides merge member by member the same way; arrays and scalars are values.
 * - Deletes: a delete on one side against an edit on the other keeps the edit (`lost` names the deleting side). A
 *   delete against an unchanged state is a clean delete; both deleted gives a tombstone whose body merges as above.
 */
export function mergeStates(fork: DocState, master: DocState, base: DocState | undefined): MergeOutcome {
  const fd = fork._deleted === true;
  const md = master._deleted === true;
  const bd = base?._deleted === true;
  if (fd !== md) {
    const deleting = fd ? fork : master;
    const living = fd ? master : fork;
    // A clean delete: the living side is what the deleting side saw last (the base, itself alive).
    if (base !== undefined && !bd && bodyEquals(living, base)) return clean(deleting);
    // A clean re-creation: the deleting side is unchanged since the base, which was already deleted.
    if (base !== undefined && bd && bodyEquals(deleting, base)) return clean(living);
    return { document: living, fields: [], lost: fd ? 'local' : 'remote' };
  }
  const fields: string[] = [];
  const body = mergeObjects(
    withoutDeleted(fork),
    withoutDeleted(master),
    base === undefined ? {} : withoutDeleted(base),
    '',
    fields,
  ) as Obj;
  const document = { ...body, _deleted: md } as DocState;
  // Both sides deleted: nobody's edit is lost, whatever the tombstones' bodies say.
  return { document, fields: md ? [] : fields, lost: fields.length > 0 && !md ? 'local' : undefined };
}

function clean(document: DocState): MergeOutcome {
  return { document, fields: [], lost: undefined };
}

function withoutDeleted(doc: DocState): Obj {
  const { _deleted: _, ...rest } = doc;
  return rest;
}

function bodyEquals(a: DocState, b: DocState): boolean {
  return jsonEquals(withoutDeleted(a), withoutDeleted(b));
}

function slot(o: Obj, key: string): Slot {
  const v = Object.hasOwn(o, key) ? o[key] : undefined;
  return v === undefined ? ABSENT : v;
}

function same(a: Slot, b: Slot): boolean {
  if (a === ABSENT || b === ABSENT) return a === b;
  return jsonEquals(a, b);
}

function isPlain(v: Slot): v is { [key: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Member by member; keys in the master's order, then the fork's new ones, so equal inputs give equal output. */
function mergeObjects(fork: Obj, master: Obj, base: Obj, path: string, fields: string[]): Obj {
  const out: Obj = {};
  const keys = Object.keys(master);
  for (const k of Object.keys(fork)) if (!Object.hasOwn(master, k)) keys.push(k);
  for (const k of keys) {
    const v = mergeValue(slot(fork, k), slot(master, k), slot(base, k), path === '' ? k : `${path}.${k}`, fields);
    if (v !== ABSENT) out[k] = v;
  }
  return out;
}

function mergeValue(fork: Slot, master: Slot, base: Slot, path: string, fields: string[]): Slot {
  if (same(fork, master)) return master;
  if (same(fork, base)) return master;
  if (same(master, base)) return fork;
  if (isPlain(fork) && isPlain(master))
    return mergeObjects(fork, master, isPlain(base) ? base : {}, path, fields) as Json;
  fields.push(path);
  return master;
}

/**
 * `--conflict merge`. Deterministic whichever side computes it; a clean merge discards nothing, a conflicting one
 * discards the losing side's version, which is kept (`discarded`).
 */
export function mergeStrategy(): SyncConflictStrategy {
  // The outcome of the last merges by result object, so `discarded` need not merge again.
  const outcomes = new WeakMap<DocState, MergeOutcome>();
  const merge = (input: ConflictInput): MergeOutcome =>
    mergeStates(input.newDocumentState, input.realMasterState, input.assumedMasterState);
  return {
    name: 'merge',
    isEqual: docEquals,
    resolve(input) {
      const outcome = merge(input);
      outcomes.set(outcome.document, outcome);
      return outcome.document;
    },
    discarded(input, resolved) {
      let outcome = outcomes.get(resolved);
      if (outcome === undefined || outcome.document !== resolved) outcome = merge(input);
      if (outcome.lost === undefined) return [];
      return [outcome.fields.length > 0 ? { side: outcome.lost, fields: outcome.fields } : { side: outcome.lost }];
    },
  };
}
