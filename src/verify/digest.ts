/**
 * Canonical digests of a replica's documents (docs/PROTOCOL.md, "Digests for verify"). Pure: no I/O.
 *
 * - A document's **leaf hash** is SHA-256 of the UTF-8 bytes of its canonical JSON: the user's fields only (no
 *   `_deleted`, `_meta`, `_rev`, `_attachments`), object keys sorted by UTF-16 code units at every level, numbers and
 *   strings as `JSON.stringify` writes them (shortest round-trip numbers, `-0` as `0`; lone surrogates escaped as
 *   `\udXXX`), no whitespace. Two replicas holding equal documents therefore hash them equally whatever their file
 *   format, key order or escapes.
 * - A **range digest** is SHA-256 over the 32-byte leaf hashes of the range's live documents in id order (UTF-16 code
 *   units, the order of `Store.all()`); an empty range hashes nothing.
 * - Tombstones do not count: they are not user data, and replicas that hold the same documents may hold different
 *   tombstones (RxDB purges them after 31 days, p2psync after its tombstone TTL; a replica that joined later never
 *   saw the older ones). A document live on one replica and deleted on another still differs: it is in one digest
 *   and not in the other.
 */
import { createHash } from 'node:crypto';
import { compareIds, userFields } from '../core/doc.js';
import type { DocState, Json } from '../core/types.js';
import { canonicalJson } from '../replication/conflict.js';
import type { DigestQuery, KeyRange, RangeAnswer } from './protocol.js';

const LEAF_BYTES = 32;

/** The leaf hash of a document given by its user fields (what a file holds) or its doc state. */
export function leafHash(doc: Record<string, Json | undefined>): Buffer {
  return createHash('sha256')
    .update(canonicalJson(userFields(doc as DocState)), 'utf8')
    .digest();
}

/**
 * The live documents of one replica at one moment, as sorted ids and leaf hashes. Every answer on one link comes
 * from one snapshot, so a bisection sees a consistent replica even while documents change.
 */
export class DigestSnapshot {
  private readonly ids: string[];
  private readonly leaves: Buffer;

  /** `docs`: live documents (user fields or doc states, tombstones left out by the caller), in any order. */
  constructor(docs: Iterable<Record<string, Json | undefined>>, primaryKey: string) {
    const entries: Array<{ id: string; leaf: Buffer }> = [];
    for (const d of docs) entries.push({ id: d[primaryKey] as string, leaf: leafHash(d) });
    entries.sort((a, b) => compareIds(a.id, b.id));
    this.ids = entries.map((e) => e.id);
    this.leaves = Buffer.allocUnsafe(entries.length * LEAF_BYTES);
    entries.forEach((e, i) => e.leaf.copy(this.leaves, i * LEAF_BYTES));
  }

  get size(): number {
    return this.ids.length;
  }

  /** Answers a (validated) query: count and digest per range, with entries or bounds as the query asks. */
  answer(query: DigestQuery): RangeAnswer[] {
    return query.ranges.map((range) => this.answerRange(range, query.leaves, query.split));
  }

  private answerRange(range: KeyRange, leaves: number, split: number): RangeAnswer {
    const [start, end] = this.indexes(range);
    const count = end - start;
    const digest = createHash('sha256')
      .update(this.leaves.subarray(start * LEAF_BYTES, end * LEAF_BYTES))
      .digest('hex');
    if (count <= leaves) {
      const entries: Array<[string, string]> = [];
      for (let i = start; i < end; i++) entries.push([this.ids[i]!, this.leaf(i)]);
      return { count, digest, entries };
    }
    // Cut points at positions count*k/split (k = 1..split-1) from the range's start; never the first id, so every
    // part is smaller than the range. count > leaves >= 1 guarantees at least one.
    const bounds: string[] = [];
    for (let k = 1; k < split; k++) {
      const p = Math.floor((count * k) / split);
      if (p < 1) continue;
      const id = this.ids[start + p]!;
      if (bounds[bounds.length - 1] !== id) bounds.push(id);
    }
    return { count, digest, bounds };
  }

  private leaf(i: number): string {
    return this.leaves.toString('hex', i * LEAF_BYTES, (i + 1) * LEAF_BYTES);
  }

  /** `[start, end)` positions of the range's ids, by binary search. */
  private indexes([from, to]: KeyRange): [number, number] {
    const start = from === null ? 0 : this.lowerBound(from);
    const end = to === null ? this.ids.length : this.lowerBound(to);
    return [start, Math.max(start, end)];
  }

  private lowerBound(id: string): number {
    let lo = 0;
    let hi = this.ids.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareIds(this.ids[mid]!, id) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
