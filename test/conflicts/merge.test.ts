import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mergeStates, mergeStrategy } from '../../src/conflicts/merge.js';
import { canonicalJson } from '../../src/replication/conflict.js';
import type { DocState } from '../../src/core/types.js';

const d = (fields: Record<string, unknown>, deleted = false): DocState =>
  ({ id: 'x', ...fields, _deleted: deleted }) as DocState;

describe('mergeStates (three-way, per field)', () => {
  it("takes each side's changes to different fields, and records no conflict", () => {
    const r = mergeStates(d({ a: 2, b: 1 }), d({ a: 1, b: 3 }), d({ a: 1, b: 1 }));
    expect(r.document).toEqual(d({ a: 2, b: 3 }));
    expect(r).toMatchObject({ fields: [], lost: undefined });
  });

  it("a field changed on both sides to different values takes the master's value; the fork lost", () => {
    const r = mergeStates(d({ a: 'fork', b: 2 }), d({ a: 'master', b: 1 }), d({ a: 'base', b: 1 }));
    expect(r.document).toEqual(d({ a: 'master', b: 2 }));
    expect(r).toMatchObject({ fields: ['a'], lost: 'local' });
  });

  it('the same change on both sides is no conflict', () => {
    expect(mergeStates(d({ a: 5 }), d({ a: 5 }), d({ a: 1 }))).toMatchObject({
      document: d({ a: 5 }),
      fields: [],
      lost: undefined,
    });
  });

  it('removing a field is a change: kept when the other side left it alone, a conflict when it edited it', () => {
    expect(mergeStates(d({ b: 1 }), d({ a: 1, b: 2 }), d({ a: 1, b: 1 })).document).toEqual(d({ b: 2 }));
    const r = mergeStates(d({ b: 1 }), d({ a: 9, b: 1 }), d({ a: 1, b: 1 }));
    expect(r.document).toEqual(d({ a: 9, b: 1 }));
    expect(r.fields).toEqual(['a']);
    // The master removed it while the fork edited it: the master's "absent" wins.
    const m = mergeStates(d({ a: 9 }), d({}), d({ a: 1 }));
    expect(m.document).toEqual(d({}));
    expect(m.fields).toEqual(['a']);
  });

  it('nested plain objects merge member by member, with dotted paths; arrays are values', () => {
    const base = d({ p: { x: 1, y: 1, q: { z: 1 } }, list: [1] });
    const r = mergeStates(
      d({ p: { x: 2, y: 1, q: { z: 5 } }, list: [1, 2] }),
      d({ p: { x: 1, y: 3, q: { z: 6 } }, list: [0] }),
      base,
    );
    expect(r.document).toEqual(d({ p: { x: 2, y: 3, q: { z: 6 } }, list: [0] }));
    expect(r.fields).toEqual(['p.q.z', 'list']);
  });

  it('two-way without a base: fields on one side only are kept, differing fields are changed on both', () => {
    const r = mergeStates(d({ a: 1, f: 'fork' }), d({ b: 2, f: 'master' }), undefined);
    expect(r.document).toEqual(d({ b: 2, f: 'master', a: 1 }));
    expect(r.fields).toEqual(['f']);
    expect(mergeStates(d({ a: 1 }), d({ b: 2 }), undefined)).toMatchObject({
      document: d({ b: 2, a: 1 }),
      lost: undefined,
    });
  });

  it('a delete against an edit keeps the edit and names the deleting side as the loser', () => {
    const base = d({ a: 1 });
    expect(mergeStates(d({ a: 1 }, true), d({ a: 2 }), base)).toMatchObject({ document: d({ a: 2 }), lost: 'local' });
    expect(mergeStates(d({ a: 2 }), d({ a: 1 }, true), base)).toMatchObject({ document: d({ a: 2 }), lost: 'remote' });
    // Without a base, every delete against a live state is a conflict.
    expect(mergeStates(d({ a: 1 }, true), d({ a: 1 }), undefined)).toMatchObject({
      document: d({ a: 1 }),
      lost: 'local',
    });
  });

  it('a delete against an unchanged state is clean, and so is a re-creation of an unchanged tombstone', () => {
    expect(mergeStates(d({ a: 1 }, true), d({ a: 1 }), d({ a: 1 }))).toMatchObject({
      document: d({ a: 1 }, true),
      lost: undefined,
    });
    expect(mergeStates(d({ a: 7 }), d({ a: 1 }, true), d({ a: 1 }, true))).toMatchObject({
      document: d({ a: 7 }),
      lost: undefined,
    });
  });

  it('both deleted: a tombstone, nobody lost', () => {
    expect(mergeStates(d({ a: 2 }, true), d({ a: 3 }, true), d({ a: 1 }))).toMatchObject({
      document: d({ a: 3 }, true),
      lost: undefined,
    });
  });

  it('null is a value, not an absence', () => {
    expect(mergeStates(d({ a: null }), d({ a: 1 }), d({ a: 1 })).document).toEqual(d({ a: null }));
    expect(mergeStates(d({}), d({ a: null }), d({})).document).toEqual(d({ a: null }));
  });

  // Generated states over a few fields with small values, so that sides often agree, differ and nest.
  const value = fc.oneof(
    fc.constantFrom(0, 1, 'a', null),
    fc.constant([1]),
    fc.record({ x: fc.constantFrom(0, 1), y: fc.constantFrom(0, 1) }, { requiredKeys: [] }),
  );
  const state = fc
    .tuple(fc.record({ f: value, g: value, h: value }, { requiredKeys: [] }), fc.boolean())
    .map(([f, del]) => d(f, del));

  it('is deterministic: the same inputs give the same document whatever the key order', () => {
    fc.assert(
      fc.property(state, state, fc.option(state, { nil: undefined }), (fork, master, base) => {
        const reorder = (s: DocState): DocState => Object.fromEntries(Object.entries(s).reverse()) as DocState;
        const a = mergeStates(fork, master, base);
        const b = mergeStates(reorder(fork), reorder(master), base && reorder(base));
        expect(canonicalJson(a.document)).toBe(canonicalJson(b.document));
        expect(a.lost).toBe(b.lost);
      }),
    );
  });

  it('changes of one side only are taken whole; equal sides give that state; merging is idempotent', () => {
    fc.assert(
      fc.property(state, state, (base, changed) => {
        if (base._deleted || changed._deleted) return;
        expect(canonicalJson(mergeStates(changed, base, base).document)).toBe(canonicalJson(changed));
        expect(canonicalJson(mergeStates(base, changed, base).document)).toBe(canonicalJson(changed));
        expect(canonicalJson(mergeStates(changed, changed, base).document)).toBe(canonicalJson(changed));
      }),
    );
  });

  it('re-merging the result with the master over the master converges (the fork re-pushes, the master accepts)', () => {
    fc.assert(
      fc.property(state, state, fc.option(state, { nil: undefined }), (fork, master, base) => {
        const r = mergeStates(fork, master, base).document;
        // The re-push carries the merge with the master's state as assumed state: nothing is left to conflict.
        expect(canonicalJson(mergeStates(r, master, master).document)).toBe(canonicalJson(r));
      }),
    );
  });

  it('the strategy keeps the loser only when something was lost', () => {
    const s = mergeStrategy();
    const input = {
      newDocumentState: d({ a: 'f' }),
      realMasterState: d({ a: 'm' }),
      assumedMasterState: d({ a: 'b' }),
    };
    const resolved = s.resolve(input);
    expect(s.discarded!(input, resolved)).toEqual([{ side: 'local', fields: ['a'] }]);
    const clean = {
      newDocumentState: d({ a: 'f', b: 1 }),
      realMasterState: d({ a: 'b', b: 2 }),
      assumedMasterState: d({ a: 'b', b: 1 }),
    };
    expect(s.discarded!(clean, s.resolve(clean))).toEqual([]);
  });
});
