/**
 * Finds the documents on which replicas differ, by digests of key ranges (a Merkle-style bisection over sorted
 * ids): ask every replica for the digest of a range; where they disagree, cut the range at the bounds the replicas
 * suggest and ask again, until the ranges are small enough to compare their entries (id and leaf hash). Documents
 * themselves never travel. Pure: replicas are reached through `DigestSource`.
 */
import { compareIds } from '../core/doc.js';
import type { DigestQuery, KeyRange, RangeAnswer } from './protocol.js';

/** One replica that answers digest queries (a peer over its link, or the local file). */
export interface DigestSource {
  /** Answers must already be validated against the query (`checkDigestAnswer`). */
  digest(query: DigestQuery): Promise<RangeAnswer[]>;
}

export interface BisectOptions {
  /** Differing ids reported at most (the first ones in id order). */
  limit: number;
  /** Entries asked for ranges up to this size (protocol `leaves`). */
  leaves: number;
  /** Parts a larger range is cut into (protocol `split`). */
  split: number;
  /** Ranges per request. */
  batch: number;
  /**
   * Ranges asked about in total before giving up: a hostile or changing replica could otherwise keep suggesting
   * bounds that never narrow anything down.
   */
  maxRanges: number;
}

/** A document on which replicas differ: its leaf hash on each source (in source order), null where missing. */
export interface DifferingId {
  id: string;
  leaves: Array<string | null>;
}

export interface BisectResult {
  equal: boolean;
  /** Per source: its live documents and the digest of all of them. */
  roots: Array<{ count: number; digest: string }>;
  /** The first `limit` differing ids in id order (all of them when `complete`). */
  differing: DifferingId[];
  /** False when more ids may differ than listed (the limit was reached, or `maxRanges` stopped the search). */
  complete: boolean;
  /** Ranges asked about and requests sent to each source. */
  ranges: number;
  requests: number;
}

export const DEFAULT_BISECT: Readonly<BisectOptions> = Object.freeze({
  limit: 100,
  leaves: 16,
  split: 16,
  batch: 32,
  maxRanges: 100_000,
});

const ALL: KeyRange = [null, null];

function lowerFrom(a: KeyRange, b: KeyRange): number {
  if (a[0] === null || b[0] === null) return a[0] === null ? (b[0] === null ? 0 : -1) : 1;
  return compareIds(a[0], b[0]);
}

export async function bisect(
  sources: readonly DigestSource[],
  options: Partial<BisectOptions> = {},
): Promise<BisectResult> {
  const o = { ...DEFAULT_BISECT, ...options };
  if (sources.length < 2) throw new Error('bisect needs at least two sources');
  const ask = async (ranges: KeyRange[]): Promise<RangeAnswer[][]> => {
    const query: DigestQuery = { ranges, leaves: o.leaves, split: o.split };
    return Promise.all(sources.map((s) => s.digest(query)));
  };

  let requests = 1;
  const rootAnswers = (await ask([ALL])).map((a) => a[0]!);
  const roots = rootAnswers.map(({ count, digest }) => ({ count, digest }));
  const found: DifferingId[] = [];
  // Ranges still to look at, kept in id order so the first differing ids are found first.
  let pending: KeyRange[] = [];
  let asked = 1;
  const settle = (range: KeyRange, answers: RangeAnswer[]): void => {
    const first = answers[0]!;
    if (answers.every((a) => a.count === first.count && a.digest === first.digest)) return;
    if (answers.every((a) => a.entries)) {
      found.push(...compareEntries(answers.map((a) => a.entries!)));
      return;
    }
    pending.push(...cut(range, answers));
  };
  settle(ALL, rootAnswers);
  const equal = found.length === 0 && pending.length === 0;

  // Stop once more than `limit` ids are known (so the list is known to be incomplete) and no range left could hold
  // one of the first `limit`. With exactly `limit` found, the ranges left must still be asked: a part cut at another
  // replica's bound may turn out equal, and only then is the list complete.
  const done = (): boolean => {
    if (found.length <= o.limit) return false;
    found.sort((a, b) => compareIds(a.id, b.id));
    const last = found[o.limit - 1]!.id;
    return pending.every(([from]) => from !== null && compareIds(from, last) > 0);
  };
  while (pending.length > 0 && !done() && asked < o.maxRanges) {
    pending.sort(lowerFrom);
    const batch = pending.slice(0, Math.min(o.batch, o.maxRanges - asked));
    pending = pending.slice(batch.length);
    asked += batch.length;
    requests++;
    const answers = await ask(batch);
    batch.forEach((range, i) =>
      settle(
        range,
        answers.map((a) => a[i]!),
      ),
    );
  }
  found.sort((a, b) => compareIds(a.id, b.id));
  return {
    equal,
    roots,
    differing: found.slice(0, o.limit),
    complete: pending.length === 0 && found.length <= o.limit,
    ranges: asked,
    requests,
  };
}

/** Ids whose leaf hash is not the same on every source (missing counts as different). */
function compareEntries(lists: Array<Array<[string, string]>>): DifferingId[] {
  const byId = new Map<string, Array<string | null>>();
  lists.forEach((entries, s) => {
    for (const [id, leaf] of entries) {
      let leaves = byId.get(id);
      if (!leaves) byId.set(id, (leaves = new Array<string | null>(lists.length).fill(null)));
      leaves[s] = leaf;
    }
  });
  const out: DifferingId[] = [];
  for (const [id, leaves] of byId) {
    if (leaves.some((l) => l === null || l !== leaves[0])) out.push({ id, leaves });
  }
  return out;
}

/** Cuts a range at every bound any source suggested: each part is smaller for every source that gave bounds. */
function cut([from, to]: KeyRange, answers: RangeAnswer[]): KeyRange[] {
  const bounds = [...new Set(answers.flatMap((a) => a.bounds ?? []))].sort(compareIds);
  const parts: KeyRange[] = [];
  let start = from;
  for (const b of bounds) {
    parts.push([start, b]);
    start = b;
  }
  parts.push([start, to]);
  return parts;
}
