import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { bisect, type DigestSource } from '../../src/verify/bisect.js';
import { DigestSnapshot } from '../../src/verify/digest.js';
import { checkDigestAnswer, type DigestQuery } from '../../src/verify/protocol.js';

type Docs = Map<string, number>;

/** A replica in memory, answering through the same snapshot code a peer uses, validated like a peer's answer. */
function source(docs: Docs, counter = { queries: 0 }): DigestSource {
  const snap = new DigestSnapshot(
    [...docs].map(([id, v]) => ({ id, v })),
    'id',
  );
  return {
    digest: async (q: DigestQuery) => {
      counter.queries++;
      const a = checkDigestAnswer(JSON.parse(JSON.stringify(snap.answer(q))), q);
      if (typeof a === 'string') throw new Error(a);
      return a;
    },
  };
}

/** Ids on which not all replicas hold the same value, sorted. */
function trueDiff(replicas: Docs[]): string[] {
  const ids = new Set(replicas.flatMap((r) => [...r.keys()]));
  return [...ids].filter((id) => replicas.some((r) => r.get(id) !== replicas[0]!.get(id))).sort();
}

const idArb = fc.oneof(
  fc.string({ minLength: 1, maxLength: 6 }),
  fc.integer({ min: 0, max: 5000 }).map((n) => `doc-${n}`),
);

/** A base replica and copies of it, each with random ids removed, changed or added. */
const replicasArb = fc
  .record({
    base: fc.uniqueArray(idArb, { maxLength: 300 }),
    copies: fc.array(
      fc.record({
        remove: fc.array(fc.nat(), { maxLength: 12 }),
        change: fc.array(fc.nat(), { maxLength: 12 }),
        add: fc.uniqueArray(idArb, { maxLength: 12 }),
      }),
      { minLength: 1, maxLength: 3 },
    ),
  })
  .map(({ base, copies }) => {
    const original: Docs = new Map(base.map((id) => [id, 0]));
    const replicas = [original];
    for (const c of copies) {
      const r = new Map(original);
      for (const i of c.remove) if (base.length) r.delete(base[i % base.length]!);
      for (const i of c.change) if (base.length) r.set(base[i % base.length]!, 1 + (i % 3));
      for (const id of c.add) r.set(id, 7);
      replicas.push(r);
    }
    return replicas;
  });

describe('bisect', () => {
  it('finds exactly the differing ids, the first ones in id order up to the limit (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        replicasArb,
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 2, max: 8 }),
        fc.integer({ min: 1, max: 6 }),
        async (replicas, limit, leaves, split, batch) => {
          const r = await bisect(
            replicas.map((d) => source(d)),
            { limit, leaves, split, batch },
          );
          const expected = trueDiff(replicas);
          expect(r.equal).toBe(expected.length === 0);
          expect(r.differing.map((d) => d.id)).toEqual(expected.slice(0, limit));
          if (expected.length <= limit) expect(r.complete).toBe(true);
          else expect(r.complete).toBe(false);
          for (const d of r.differing) {
            expect(d.leaves.map((l) => l !== null)).toEqual(replicas.map((x) => x.has(d.id)));
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('reports complete when exactly `limit` ids differ and the parts left turn out equal (shrunk from the property)', async () => {
    const replicas: Docs[] = [
      new Map([
        ['doc-0', 0],
        ['e', 0],
      ]),
      new Map([
        ['e', 0],
        [' ', 7],
        ['!', 7],
        ['"', 7],
        ['doc-1', 7],
      ]),
    ];
    const r = await bisect(
      replicas.map((d) => source(d)),
      { limit: 5, leaves: 1, split: 2, batch: 1 },
    );
    expect(r.differing.map((d) => d.id)).toEqual([' ', '!', '"', 'doc-0', 'doc-1']);
    expect(r.complete).toBe(true);
  });

  it('reports incomplete when one more id differs than the limit', async () => {
    const a: Docs = new Map(Array.from({ length: 100 }, (_, i) => [`d${String(i).padStart(3, '0')}`, i]));
    const b = new Map(a);
    for (const id of ['d010', 'd020', 'd030', 'd090']) b.set(id, -1);
    const r = await bisect([source(a), source(b)], { limit: 3, leaves: 2, split: 2, batch: 1 });
    expect(r.differing.map((d) => d.id)).toEqual(['d010', 'd020', 'd030']);
    expect(r.complete).toBe(false);
  });

  it('asks one request per source when replicas are equal', async () => {
    const docs: Docs = new Map(Array.from({ length: 1000 }, (_, i) => [`d${i}`, i]));
    const counter = { queries: 0 };
    const r = await bisect([source(docs, counter), source(new Map(docs), counter)]);
    expect(r).toMatchObject({ equal: true, differing: [], complete: true, requests: 1 });
    expect(r.roots).toEqual([r.roots[0], r.roots[0]]);
    expect(counter.queries).toBe(2);
  });

  it('narrows one difference among 50,000 documents in a few round trips, never listing the equal ones', async () => {
    const a: Docs = new Map(Array.from({ length: 50_000 }, (_, i) => [`d${String(i).padStart(6, '0')}`, i]));
    const b = new Map(a);
    b.set('d054321', -1);
    const r = await bisect([source(a), source(b)]);
    expect(r.differing.map((d) => d.id)).toEqual(['d054321']);
    // 50,000 / 16 per level down to 16 entries: four levels below the root, one request each
    expect(r.requests).toBeLessThanOrEqual(6);
    expect(r.ranges).toBeLessThan(100);
  });

  it('gives up after maxRanges against a replica whose bounds never narrow anything', async () => {
    const honest = source(new Map([['a', 1]]));
    // claims a huge range and suggests a bound just after the start, forever
    const hostile: DigestSource = {
      digest: async (q) =>
        q.ranges.map(([from]) => ({ count: 1_000_000, digest: 'f'.repeat(64), bounds: [(from ?? '') + '\u0001'] })),
    };
    const r = await bisect([honest, hostile], { maxRanges: 50 });
    expect(r.equal).toBe(false);
    expect(r.complete).toBe(false);
    expect(r.ranges).toBeLessThanOrEqual(50);
  });
});
