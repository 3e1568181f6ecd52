import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import type { OpenedStore } from '../../src/store/open.js';
import type { SyncEvent } from '../../src/core/events.js';
import type { DocState, WriteOrigin } from '../../src/core/types.js';
import { doc } from './contract.js';
import { StoreFixture } from './harness.js';

/** A small deterministic PRNG (mulberry32), so a failing sequence can be replayed. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const fileDocs = async (path: string, format: 'json' | 'ndjson'): Promise<unknown[]> => {
  const text = await readFile(path, 'utf8');
  return format === 'json'
    ? (JSON.parse(text) as unknown[])
    : text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as unknown);
};

/** The file version the sidecar recorded last has the hash of the file on disk (an incremental hash went right). */
async function expectRecordedHash(path: string): Promise<void> {
  const lines = (await readFile(path + '.p2psync', 'utf8')).split('\n').filter(Boolean);
  const versions = lines.map((l) => (JSON.parse(l) as { f?: { hash: string } }).f).filter((f) => f !== undefined);
  expect(versions.at(-1)?.hash).toBe(
    createHash('sha1')
      .update(await readFile(path))
      .digest('hex'),
  );
}

describe('file stores: writes that overlap, incremental rewrites and peer-state records', () => {
  let fx: StoreFixture;
  beforeEach(async () => {
    fx = await StoreFixture.create();
  });
  afterEach(async () => {
    await fx.cleanup();
  });

  for (const format of ['json', 'ndjson'] as const) {
    it(`keeps writing while a flush is on disk, and every write reaches the file and the sidecar (${format})`, async () => {
      const path = fx.file(`a.${format}`);
      let s: OpenedStore = await fx.open({ path, watch: false });
      const all: DocState[] = [];
      const byId = (a: DocState, b: DocState): number => ((a.id as string) < (b.id as string) ? -1 : 1);
      const flushes: Array<Promise<void>> = [];
      for (let batch = 0; batch < 30; batch++) {
        const docs = Array.from({ length: 50 }, (_, i) => doc(`d${batch}-${i}`, { batch, i }));
        // One batch gets one lwt, so it reaches the feed (and the end of the file) in id order.
        all.push(...[...docs].sort(byId));
        // Not awaited: later batches are written while this flush's I/O runs.
        flushes.push(s.flush());
        await s.bulkWrite(
          docs.map((d) => ({ document: d, expected: null })),
          { kind: 'peer', peerToken: 'pppppppppp' },
        );
      }
      await Promise.all(flushes);
      await s.flush();
      await expectRecordedHash(path);
      const expected = all.map(({ _deleted, ...fields }) => fields);
      expect(await fileDocs(path, format)).toEqual(expected);
      const feed = await s.changesSince(null, 10_000);
      await s.close();
      s = await fx.open({ path, watch: false });
      expect(await s.changesSince(null, 10_000)).toEqual(feed);
      expect(s.stats.outsideEdits).toBe(0);
    });

    it(`rewrites incrementally with the same bytes as a full rewrite, also after an outside edit (${format})`, async () => {
      const path = fx.file(`b.${format}`);
      const s = await fx.open({ path, watch: false });
      const live = new Map<string, DocState>();
      const random = prng(7);
      for (let round = 0; round < 12; round++) {
        if (round === 6) {
          // Another program replaces the file (same content, another inode and formatting): the next rewrite must
          // not depend on where documents sat in the file it wrote before.
          const docs = await fileDocs(path, format);
          const other = format === 'json' ? JSON.stringify(docs) : docs.map((d) => JSON.stringify(d) + '\n').join('');
          await writeFile(path + '.tmp', other);
          await rename(path + '.tmp', path);
        }
        for (let i = 0; i < 40; i++) {
          const id = `d${Math.floor(random() * 120)}`;
          const current = (await s.get([id])).get(id) ?? null;
          const deleted = current !== null && !current._deleted && random() < 0.2;
          const next = deleted
            ? { ...current, _deleted: true }
            : doc(id, { round, i, text: 'é'.repeat(Math.floor(random() * 5)) });
          expect(await s.bulkWrite([{ document: next, expected: current }], { kind: 'local' })).toEqual([]);
          if (deleted) live.delete(id);
          else live.set(id, next);
        }
        await s.flush();
        const text = await readFile(path, 'utf8');
        const docs = await fileDocs(path, format);
        // Same order as the store keeps it, and the exact text a full rewrite produces.
        const inFile = docs.map((d) => (d as { id: string }).id);
        expect(new Set(inFile)).toEqual(new Set(live.keys()));
        const full =
          format === 'json' ? JSON.stringify(docs, null, 2) + '\n' : docs.map((d) => JSON.stringify(d) + '\n').join('');
        expect(text).toBe(full);
        await expectRecordedHash(path);
      }
    });
  }

  for (const format of ['json', 'ndjson'] as const) {
    it(`tells an outside edit apart from the documents it appended (${format})`, async () => {
      const path = fx.file(`e.${format}`);
      const events: SyncEvent[] = [];
      const s = await fx.open({ path, watch: false, emit: (e) => events.push(e) });
      for (let round = 0; round < 3; round++) {
        await s.bulkWrite(
          Array.from({ length: 20 }, (_, i) => ({ document: doc(`r${round}-${i}`, { round }), expected: null })),
          { kind: 'peer', peerToken: 'pppppppppp' },
        );
        await s.flush();
      }
      // Another program changes one appended document and deletes another.
      const docs = (await fileDocs(path, format)) as Array<Record<string, unknown>>;
      const edited = docs.filter((d) => d.id !== 'r1-3').map((d) => (d.id === 'r2-5' ? { ...d, edited: true } : d));
      await writeFile(
        path,
        format === 'json' ? JSON.stringify(edited) : edited.map((d) => JSON.stringify(d) + '\n').join(''),
      );
      await s.bulkWrite([{ document: doc('new'), expected: null }], { kind: 'local' });
      await s.flush();
      expect(events.filter((e) => e.event === 'outside-edit')).toEqual([
        expect.objectContaining({ created: 0, updated: 1, deleted: 1 }),
      ]);
      expect((await s.get(['r2-5', 'r1-3'])).get('r2-5')).toEqual(doc('r2-5', { round: 2, edited: true }));
      expect((await s.get(['r1-3'])).get('r1-3')?._deleted).toBe(true);
      expect((await fileDocs(path, format)).map((d) => (d as { id: string }).id)).toEqual([
        ...edited.map((d) => d.id),
        'new',
      ]);
      await expectRecordedHash(path);
    });
  }

  it('keeps assumed states right through random document changes, flushes and reopens', async () => {
    const path = fx.file('c.ndjson');
    let s: OpenedStore = await fx.open({ path, watch: false, compactMinBytes: 2_000 });
    const random = prng(42);
    const ids = Array.from({ length: 25 }, (_, i) => `d${i}`);
    const pending: Array<Promise<void>> = [];
    let compactions = 0;
    for (let step = 0; step < 400; step++) {
      const id = ids[Math.floor(random() * ids.length)]!;
      const current = (await s.get([id])).get(id) ?? null;
      const r = random();
      if (r < 0.35) {
        // A document changes (or is deleted): assumed states of it must keep their old value.
        const next =
          current && !current._deleted && random() < 0.2 ? { ...current, _deleted: true } : doc(id, { step });
        const origin: WriteOrigin = random() < 0.5 ? { kind: 'local' } : { kind: 'peer', peerToken: 'pppppppppp' };
        expect(await s.bulkWrite([{ document: next, expected: current }], origin)).toEqual([]);
      } else if (r < 0.7 && current) {
        // A peer is assumed to have the stored state (the common case: written as a marker).
        const key = random() < 0.5 ? 'p' : 'q';
        await s.setPeerState(key, { assumed: [[id, current]], down: { step } });
      } else if (r < 0.85) {
        const key = random() < 0.5 ? 'p' : 'q';
        await s.setPeerState(key, {
          assumed: [[id, random() < 0.3 ? null : doc(id, { other: step })]],
          up: { id, lwt: step },
        });
      } else if (r < 0.95) {
        pending.push(s.flush());
      } else {
        await Promise.all(pending.splice(0));
        const before = [await s.getPeerState('p'), await s.getPeerState('q')];
        const feed = await s.changesSince(null, 1_000);
        await s.close();
        compactions += s.stats.compactions;
        s = await fx.open({ path, watch: false, compactMinBytes: 2_000 });
        expect([await s.getPeerState('p'), await s.getPeerState('q')]).toEqual(before);
        expect(await s.changesSince(null, 1_000)).toEqual(feed);
      }
    }
    await Promise.all(pending);
    // Creating the sidecar is one; the journal must also have been compacted along the way.
    expect(compactions + s.stats.compactions).toBeGreaterThan(1);
  });
});
