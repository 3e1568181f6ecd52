import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Subscription } from 'rxjs';
import { P2PSyncError } from '../../src/core/errors.js';
import type { PeerStateStore, Store } from '../../src/core/store.js';
import type { Checkpoint, DocState, StoreChange } from '../../src/core/types.js';
import { doc } from '../helpers/doc.js';

/** How the contract suite gets stores from one implementation. */
export interface StoreHarness {
  /** Opens the store: a fresh one on the first call, the same one again on later calls if `persistent`. */
  open(options?: { storageToken?: string }): Promise<Store & PeerStateStore>;
  /** Survives close + open (file stores); the persistence tests only run when true. */
  persistent: boolean;
  /** Closes whatever is still open and removes temp files. */
  cleanup(): Promise<void>;
}

/** Re-exported for the tests that import it from here. */
export { doc };

export async function insert(
  store: Store,
  docs: DocState[],
  origin: Parameters<Store['bulkWrite']>[1] = { kind: 'local' },
): Promise<void> {
  const conflicts = await store.bulkWrite(
    docs.map((d) => ({ document: d, expected: null })),
    origin,
  );
  expect(conflicts).toEqual([]);
}

async function feed(
  store: Store,
  limit = 1_000,
): Promise<{ checkpoint: Checkpoint | null; ids: string[]; docs: DocState[] }> {
  const page = await store.changesSince(null, limit);
  return { checkpoint: page.checkpoint, ids: page.documents.map((d) => d.id as string), docs: page.documents };
}

function before(a: Checkpoint, b: Checkpoint): boolean {
  return a.lwt < b.lwt || (a.lwt === b.lwt && a.id < b.id);
}

/** Runs the whole Store contract against one implementation. */
export function runStoreContract(name: string, makeHarness: () => Promise<StoreHarness> | StoreHarness): void {
  describe(`Store contract: ${name}`, () => {
    let h: StoreHarness;
    let store: Store & PeerStateStore;
    const subs: Subscription[] = [];

    beforeEach(async () => {
      h = await makeHarness();
      store = await h.open();
    });
    afterEach(async () => {
      for (const s of subs.splice(0)) s.unsubscribe();
      await h.cleanup();
    });

    it('has a storage token and the primary key', () => {
      expect(store.storageToken).toMatch(/^.+$/);
      expect(store.primaryKey).toBe('id');
    });

    it('inserts, gets and lists live documents in key order', async () => {
      await insert(store, [doc('c', { n: 3 }), doc('a', { n: 1 }), doc('b', { n: 2 })]);
      const got = await store.get(['a', 'zz']);
      expect([...got.keys()]).toEqual(['a']);
      expect(got.get('a')).toEqual(doc('a', { n: 1 }));
      expect((await store.all()).map((d) => d.id)).toEqual(['a', 'b', 'c']);
    });

    it('orders the feed by (lwt, id), ties broken by id, each checkpoint after the previous one', async () => {
      await insert(store, [doc('c'), doc('a'), doc('b')]);
      await insert(store, [doc('0')]);
      await store.bulkWrite([{ document: doc('a', { v: 2 }), expected: doc('a') }], { kind: 'local' });
      expect((await feed(store)).ids).toEqual(['b', 'c', '0', 'a']);
      let cp: Checkpoint | null = null;
      const seen: string[] = [];
      for (;;) {
        const page = await store.changesSince(cp, 1);
        if (page.documents.length === 0) break;
        expect(page.documents).toHaveLength(1);
        const next = page.checkpoint as Checkpoint;
        expect(next.id).toBe(page.documents[0]!.id);
        if (cp) expect(before(cp, next)).toBe(true);
        cp = next;
        seen.push(next.id);
      }
      expect(seen).toEqual(['b', 'c', '0', 'a']);
    });

    it('returns exactly `limit` documents while more remain, and resumes from each checkpoint', async () => {
      for (let b = 0; b < 5; b++)
        await insert(
          store,
          Array.from({ length: 5 }, (_, i) => doc(`d${(i * 7 + b * 3) % 25}-${b}`)),
        );
      const sizes: number[] = [];
      const ids: string[] = [];
      let cp: Checkpoint | null = null;
      for (;;) {
        const page = await store.changesSince(cp, 7);
        sizes.push(page.documents.length);
        if (page.documents.length === 0) {
          expect(page.checkpoint).toEqual(cp);
          break;
        }
        ids.push(...page.documents.map((d) => d.id as string));
        cp = page.checkpoint;
      }
      expect(sizes).toEqual([7, 7, 7, 4, 0]);
      expect(new Set(ids).size).toBe(25);
      expect((await store.changesSince(null, 25)).documents).toHaveLength(25);
      expect((await store.changesSince(null, 0)).documents).toHaveLength(0);
    });

    it('moves an updated document to the end of the feed, once', async () => {
      await insert(store, [doc('a'), doc('b')]);
      const all = await store.changesSince(null, 10);
      await store.bulkWrite([{ document: doc('a', { v: 2 }), expected: doc('a') }], { kind: 'local' });
      const after = await store.changesSince(all.checkpoint, 10);
      expect(after.documents).toEqual([doc('a', { v: 2 })]);
      expect((await feed(store)).ids).toEqual(['b', 'a']);
    });

    it('skips changes without reading them, to where changesSince would stand, with and without stale entries', async (ctx) => {
      if (!store.skipChanges) return ctx.skip();
      await insert(
        store,
        Array.from({ length: 10 }, (_, i) => doc(`d${i}`)),
      );
      const check = async (): Promise<void> => {
        for (const from of [null, (await store.changesSince(null, 3)).checkpoint])
          for (const count of [0, 1, 4, 7, 20]) {
            const page = await store.changesSince(from, count);
            expect(await store.skipChanges!(from, count)).toEqual({
              checkpoint: page.checkpoint,
              skipped: page.documents.length,
            });
          }
      };
      await check();
      // Updated documents leave stale entries behind in the feed, which a skip must not count.
      await store.bulkWrite(
        [1, 4, 5].map((i) => ({ document: doc(`d${i}`, { v: 2 }), expected: doc(`d${i}`) })),
        { kind: 'local' },
      );
      await check();
      expect(await store.skipChanges(null, 100)).toMatchObject({ skipped: 10 });
    });

    it('pages changes less those held as known, and all of them against a plain map', async (ctx) => {
      if (!store.changesSinceExcept) return ctx.skip();
      await insert(
        store,
        Array.from({ length: 6 }, (_, i) => doc(`d${i}`)),
      );
      const plain = await store.changesSinceExcept(null, 4, new Map([['d0', doc('d0')]]));
      const page = await store.changesSince(null, 4);
      expect(plain).toEqual({ ...page, scanned: 4 });
      expect(await store.changesSinceExcept(plain.checkpoint, 4, new Map())).toMatchObject({ scanned: 2 });
    });

    it('echoes the checkpoint when nothing is new and ignores checkpoints of a foreign shape', async () => {
      expect(await store.changesSince(null, 10)).toEqual({ checkpoint: null, documents: [] });
      await insert(store, [doc('a')]);
      const { checkpoint } = await store.changesSince(null, 10);
      expect(await store.changesSince(checkpoint, 10)).toEqual({ checkpoint, documents: [] });
      expect((await store.changesSince({} as Checkpoint, 10)).documents).toEqual([]);
      expect((await store.changesSince('abc' as unknown as Checkpoint, 10)).documents).toEqual([]);
    });

    it('keeps deleted documents as tombstones with their last body, in the feed and in get()', async () => {
      await insert(store, [doc('a', { title: 'x' }), doc('b')]);
      const conflicts = await store.bulkWrite(
        [{ document: doc('a', { title: 'x' }, true), expected: doc('a', { title: 'x' }) }],
        { kind: 'local' },
      );
      expect(conflicts).toEqual([]);
      expect((await store.get(['a'])).get('a')).toEqual(doc('a', { title: 'x' }, true));
      expect((await store.all()).map((d) => d.id)).toEqual(['b']);
      expect(await store.count()).toBe(1);
      const f = await feed(store);
      expect(f.docs[f.docs.length - 1]).toEqual(doc('a', { title: 'x' }, true));
      // Re-creating a deleted id is an update of its tombstone.
      expect(
        await store.bulkWrite([{ document: doc('a', { title: 'y' }), expected: null }], { kind: 'local' }),
      ).toEqual([doc('a', { title: 'x' }, true)]);
      expect(
        await store.bulkWrite([{ document: doc('a', { title: 'y' }), expected: doc('a', { title: 'x' }, true) }], {
          kind: 'local',
        }),
      ).toEqual([]);
      expect((await store.all()).map((d) => d.id)).toEqual(['a', 'b']);
      expect(await store.count()).toBe(2);
    });

    it('compare-and-set: writes on a match, returns the current state on a conflict, in input order', async () => {
      await insert(store, [doc('a', { v: 1 }), doc('b', { v: 1 }), doc('c', { v: 1 })]);
      const conflicts = await store.bulkWrite(
        [
          { document: doc('a', { v: 2 }), expected: doc('a', { v: 9 }) }, // stale expectation
          { document: doc('b', { v: 2 }), expected: { v: 1, id: 'b' } as unknown as DocState }, // no _deleted, other key order: equal
          { document: doc('c', { v: 2 }), expected: null }, // exists
          { document: doc('n', { v: 1 }), expected: doc('n', { v: 0 }) }, // missing: always inserted
        ],
        { kind: 'local' },
      );
      expect(conflicts).toEqual([doc('a', { v: 1 }), doc('c', { v: 1 })]);
      const got = await store.get(['a', 'b', 'c', 'n']);
      expect(got.get('a')).toEqual(doc('a', { v: 1 }));
      expect(got.get('b')).toEqual(doc('b', { v: 2 }));
      expect(got.get('c')).toEqual(doc('c', { v: 1 }));
      expect(got.get('n')).toEqual(doc('n', { v: 1 }));
    });

    it('compare-and-set: later rows see earlier rows of the same batch', async () => {
      const conflicts = await store.bulkWrite(
        [
          { document: doc('a', { v: 1 }), expected: null },
          { document: doc('a', { v: 2 }), expected: doc('a', { v: 1 }) },
          { document: doc('a', { v: 3 }), expected: doc('a', { v: 1 }) },
        ],
        { kind: 'local' },
      );
      expect(conflicts).toEqual([doc('a', { v: 2 })]);
      expect((await store.get(['a'])).get('a')).toEqual(doc('a', { v: 2 }));
    });

    it('does not rewrite a document that equals the current state (no new lwt, no event)', async () => {
      await insert(store, [doc('a', { v: 1, nested: { x: [1, 2] } })]);
      const { checkpoint } = await store.changesSince(null, 10);
      const events: StoreChange[] = [];
      subs.push(store.changes$.subscribe((e) => events.push(e)));
      const same = { nested: { x: [1, 2] }, v: 1, id: 'a', _deleted: false } as DocState;
      expect(
        await store.bulkWrite([{ document: same, expected: doc('a', { v: 1, nested: { x: [1, 2] } }) }], {
          kind: 'local',
        }),
      ).toEqual([]);
      expect((await store.changesSince(checkpoint, 10)).documents).toEqual([]);
      expect(events).toEqual([]);
    });

    it('is atomic per batch: one bad row and nothing is written', async () => {
      await expect(
        store.bulkWrite(
          [
            { document: doc('a'), expected: null },
            { document: { v: 1, _deleted: false } as DocState, expected: null },
          ],
          { kind: 'local' },
        ),
      ).rejects.toMatchObject({
        code: 'E_BAD_KEY',
      });
      await expect(
        store.bulkWrite(
          [
            { document: doc('b'), expected: null },
            { document: 'nope' as unknown as DocState, expected: null },
          ],
          { kind: 'local' },
        ),
      ).rejects.toBeInstanceOf(P2PSyncError);
      expect(await store.get(['a', 'b'])).toEqual(new Map());
      expect((await store.changesSince(null, 10)).documents).toEqual([]);
      await insert(store, [doc('c')]); // still usable
      expect((await store.all()).map((d) => d.id)).toEqual(['c']);
    });

    it('emits one change batch per write with a resume checkpoint and the origin', async () => {
      await insert(store, [doc('x')]);
      const start = (await store.changesSince(null, 10)).checkpoint;
      const events: StoreChange[] = [];
      subs.push(store.changes$.subscribe((e) => events.push(e)));
      await insert(store, [doc('c'), doc('a'), doc('b')], { kind: 'peer', peerToken: 'peerpeerpe' });
      await store.bulkWrite([{ document: doc('x', {}, true), expected: doc('x') }], { kind: 'local' });
      expect(events).toHaveLength(2);
      const [first, second] = events as [StoreChange, StoreChange];
      expect(first.origin).toEqual({ kind: 'peer', peerToken: 'peerpeerpe' });
      expect(first.documents.map((d) => d.id)).toEqual(['a', 'b', 'c']);
      expect(first.checkpoint.id).toBe('c');
      const page = await store.changesSince(start, 10);
      expect(page.documents.slice(0, 3)).toEqual(first.documents);
      expect((await store.changesSince(first.checkpoint, 10)).documents).toEqual(second.documents);
      expect(second.documents).toEqual([doc('x', {}, true)]);
      expect(await store.changesSince(second.checkpoint, 10)).toEqual({ checkpoint: second.checkpoint, documents: [] });
    });

    it('merges peer state updates and removes assumed states set to null', async () => {
      expect(await store.getPeerState('k')).toBeUndefined();
      await store.setPeerState('k', { down: { id: 'm', lwt: 5 } });
      expect(await store.getPeerState('k')).toEqual({ down: { id: 'm', lwt: 5 }, up: null, assumed: new Map() });
      await store.setPeerState('k', {
        up: { id: 'a', lwt: 1 },
        assumed: [
          ['a', doc('a')],
          ['b', doc('b', { v: 1 })],
        ],
      });
      await store.setPeerState('k', { assumed: [['a', null]] });
      const s = await store.getPeerState('k');
      expect(s).toEqual({
        down: { id: 'm', lwt: 5 },
        up: { id: 'a', lwt: 1 },
        assumed: new Map([['b', doc('b', { v: 1 })]]),
      });
      s!.assumed.clear(); // a copy
      expect((await store.getPeerState('k'))!.assumed.size).toBe(1);
    });

    it('takes assumed states as ids plus a map to read them from, at the time of the call', async () => {
      const states = new Map([
        ['a', doc('a', { v: 1 })],
        ['c', doc('c')],
      ]);
      await store.setPeerState('k', { assumed: [['b', doc('b')]] });
      // 'a' twice (ids may repeat), 'b' missing from the map: removed.
      await store.setPeerState('k', { assumed: { ids: ['a', 'b', 'c', 'a'], states } });
      states.set('a', doc('a', { v: 2 })); // later changes are not seen
      expect((await store.getPeerState('k'))!.assumed).toEqual(
        new Map([
          ['a', doc('a', { v: 1 })],
          ['c', doc('c')],
        ]),
      );
    });

    it('completes changes$ on close; close is idempotent; writes after close fail', async () => {
      let completed = false;
      subs.push(store.changes$.subscribe({ complete: () => (completed = true) }));
      await Promise.all([store.close(), store.close()]);
      await store.close();
      expect(completed).toBe(true);
      await expect(store.bulkWrite([{ document: doc('a'), expected: null }], { kind: 'local' })).rejects.toThrow(
        /closed/,
      );
    });

    describe('persistence', () => {
      // A store that does not persist skips these (reported as skipped, not as passed without asserting anything).
      it('keeps documents, lwts, tombstones and the storage token across a reopen', async (ctx) => {
        if (!h.persistent) ctx.skip();
        await insert(store, [doc('a', { v: 1 }), doc('b', { v: 1 }), doc('c')]);
        await store.bulkWrite([{ document: doc('b', { v: 1 }, true), expected: doc('b', { v: 1 }) }], {
          kind: 'local',
        });
        await store.bulkWrite([{ document: doc('a', { v: 2 }), expected: doc('a', { v: 1 }) }], { kind: 'local' });
        const token = store.storageToken;
        const feedBefore = await store.changesSince(null, 100);
        await store.close();
        store = await h.open();
        expect(store.storageToken).toBe(token);
        expect(await store.changesSince(null, 100)).toEqual(feedBefore);
        expect((await store.get(['b'])).get('b')).toEqual(doc('b', { v: 1 }, true));
        // The clock continues after the last lwt: a new write lands after everything old.
        await insert(store, [doc('0')]);
        expect((await store.changesSince(feedBefore.checkpoint, 100)).documents).toEqual([doc('0')]);
      });

      it('keeps peer states across a reopen, including assumed states of documents that changed later', async (ctx) => {
        if (!h.persistent) ctx.skip();
        await insert(store, [doc('a', { v: 1 }), doc('b', { v: 1 }), doc('c', { v: 1 })]);
        await store.flush();
        await store.setPeerState('p', {
          down: { id: 'z', lwt: 7 },
          up: { id: 'c', lwt: 3 },
          assumed: [
            ['a', doc('a', { v: 1 })], // equals the stored doc
            ['b', doc('b', { v: 0 })], // differs
            ['c', doc('c', { v: 1 })],
            ['gone', doc('gone', {}, true)],
          ],
        });
        await store.flush();
        // The documents move on after the assumed states were saved; the assumed states must not follow them.
        await store.bulkWrite([{ document: doc('a', { v: 2 }), expected: doc('a', { v: 1 }) }], { kind: 'local' });
        await store.bulkWrite([{ document: doc('c', { v: 1 }, true), expected: doc('c', { v: 1 }) }], {
          kind: 'local',
        });
        await store.setPeerState('q', { down: null, assumed: [['b', doc('b', { v: 1 })]] });
        const expected = await store.getPeerState('p');
        await store.close();
        store = await h.open();
        expect(await store.getPeerState('p')).toEqual(expected);
        expect((await store.getPeerState('p'))!.assumed.get('a')).toEqual(doc('a', { v: 1 }));
        expect(await store.getPeerState('q')).toEqual({
          down: null,
          up: null,
          assumed: new Map([['b', doc('b', { v: 1 })]]),
        });
      });

      it('persists assumed states changed in place in the live peer state once their ids are reported', async (ctx) => {
        if (!store.livePeerState) return ctx.skip();
        await insert(store, [doc('a', { v: 1 }), doc('b', { v: 1 })]);
        const live = store.livePeerState('p');
        expect(store.livePeerState('p')).toBe(live);
        live.assumed.set('a', doc('a', { v: 1 }));
        live.assumed.set('b', doc('b', { v: 0 }));
        await store.setPeerState('p', {
          down: { id: 'b', lwt: 2 },
          assumed: { ids: ['a', 'b'], states: live.assumed },
        });
        live.assumed.set('b', doc('b', { v: 1 }));
        await store.setPeerState('p', { assumed: { ids: ['b'], states: live.assumed } });
        const expected = new Map([
          ['a', doc('a', { v: 1 })],
          ['b', doc('b', { v: 1 })],
        ]);
        expect((await store.getPeerState('p'))!.assumed).toEqual(expected);
        if (!h.persistent) return;
        await store.close();
        store = await h.open();
        expect(await store.getPeerState('p')).toEqual({ down: { id: 'b', lwt: 2 }, up: null, assumed: expected });
      });

      it('uses the storageToken option only when the store is created', async () => {
        await store.close();
        await h.cleanup();
        h = await makeHarness();
        store = await h.open({ storageToken: 'aaaaaaaaaa' });
        expect(store.storageToken).toBe('aaaaaaaaaa');
        if (!h.persistent) return;
        await store.close();
        store = await h.open({ storageToken: 'bbbbbbbbbb' });
        expect(store.storageToken).toBe('aaaaaaaaaa');
      });
    });
  });
}
