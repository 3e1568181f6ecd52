import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DigestSnapshot, leafHash } from '../../src/verify/digest.js';
import type { KeyRange, RangeAnswer } from '../../src/verify/protocol.js';
import { checkDigestAnswer } from '../../src/verify/protocol.js';

const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

function answer(
  docs: Array<Record<string, unknown>>,
  range: KeyRange = [null, null],
  leaves = 64,
  split = 4,
): RangeAnswer {
  const snap = new DigestSnapshot(docs as never, 'id');
  const query = { ranges: [range], leaves, split };
  const a = snap.answer(query);
  // whatever the snapshot answers must pass the receiving side's validation
  expect(checkDigestAnswer(JSON.parse(JSON.stringify(a)), query)).toEqual(a);
  return a[0]!;
}

describe('leaf hashes are canonical', () => {
  it('ignores key order at every level, internals and _deleted:false', () => {
    const a = { id: 'x', b: { y: 1, x: [1, { q: 2, p: 3 }] }, a: 'é' };
    const b = {
      a: 'e\u0301'.normalize('NFC'),
      b: { x: [1, { p: 3, q: 2 }], y: 1 },
      id: 'x',
      _deleted: false,
      _meta: { lwt: 5 },
      _rev: '1-a',
    };
    expect(leafHash(a).equals(leafHash(b))).toBe(true);
  });

  it('gives the same hash to documents parsed from different JSON texts of the same value', () => {
    const texts = [
      '{"id":"x","n":1.0,"s":"\\u00e9\\ud83d\\ude00","z":-0,"big":1e21}',
      '{"big":1000000000000000000000,"z":0,"s":"é😀","n":1,"id":"x"}',
    ];
    const [h1, h2] = texts.map((t) => leafHash(JSON.parse(t) as Record<string, never>));
    expect(h1!.equals(h2!)).toBe(true);
  });

  it('tells apart values that differ only in type, array order, unicode normalisation or a lone surrogate', () => {
    const base = leafHash({ id: 'x', v: 1 });
    expect(leafHash({ id: 'x', v: '1' }).equals(base)).toBe(false);
    expect(leafHash({ id: 'x', v: [1, 2] }).equals(leafHash({ id: 'x', v: [2, 1] }))).toBe(false);
    // NFC and NFD are different strings to JSON, to RxDB and to p2psync's replication: different documents
    expect(leafHash({ id: 'x', v: '\u00e9' }).equals(leafHash({ id: 'x', v: 'e\u0301' }))).toBe(false);
    expect(leafHash({ id: 'x', v: '\ud800' }).equals(leafHash({ id: 'x', v: '\udc00' }))).toBe(false);
  });

  it('is SHA-256 of the canonical JSON; a range digest is SHA-256 of the leaves (fixed vectors)', () => {
    // sha256('{"id":"a","n":1}') and sha256 of those 32 bytes, computed with a shell, not with this module
    expect(leafHash({ n: 1, id: 'a' }).toString('hex')).toBe(
      'ebddcace15c56ac9ac7a5499fffba4dece33724d7e2ad7ff5bdd262a10e643ef',
    );
    expect(answer([{ n: 1, id: 'a' }]).digest).toBe('a7549f87f22e073ccdf31b8539513d6f0e55e49037cb24daab31803c6dc1c6f7');
    expect(answer([])).toEqual({ count: 0, digest: EMPTY_SHA256, entries: [] });
  });
});

describe('range answers', () => {
  const docs = Array.from({ length: 100 }, (_, i) => ({ id: `d${String(i).padStart(3, '0')}`, n: i }));

  it('does not depend on the order documents come in', () => {
    expect(answer([...docs].reverse())).toEqual(answer(docs));
  });

  it('answers small ranges with entries and large ones with bounds that cut them into smaller parts', () => {
    const small = answer(docs, ['d010', 'd013'], 4);
    expect(small.count).toBe(3);
    expect(small.entries!.map(([id]) => id)).toEqual(['d010', 'd011', 'd012']);
    const large = answer(docs, ['d010', null], 4, 4);
    expect(large.count).toBe(90);
    expect(large.bounds).toEqual(['d032', 'd055', 'd077']);
  });

  it('orders ids by UTF-16 code units, like the stores and RxDB', () => {
    const ids = ['b', 'a', 'B', '\u00e9', '\ud83d\ude00', '\uffff', 'aa'];
    const a = answer(ids.map((id) => ({ id })));
    expect(a.entries!.map(([id]) => id)).toEqual([...ids].sort());
  });

  it('always makes progress: every bound is inside the range and after its first id', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.string({ minLength: 1, maxLength: 4 }), { maxLength: 60 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 2, max: 8 }),
        (ids, leaves, split) => {
          const a = answer(
            ids.map((id) => ({ id })),
            [null, null],
            leaves,
            split,
          );
          expect(a.count).toBe(ids.length);
          if (a.bounds) {
            const sorted = [...ids].sort();
            expect(a.bounds.length).toBeGreaterThan(0);
            for (const b of a.bounds) expect(b > sorted[0]!).toBe(true);
          }
        },
      ),
    );
  });
});
