import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  FORK_TOKEN,
  MASTER_TOKEN,
  canonical,
  docsById,
  putDocs,
  rmDocs,
  startPeer,
  waitConverged,
  writeDocsFile,
  e2eFixture,
} from '../helpers/e2e.js';

const { temp, signals } = e2eFixture();

const CONNECT_MS = 20_000;

describe('two p2psync peers (JSON on one side, NDJSON on the other)', () => {
  for (const aRole of ['master', 'fork'] as const) {
    it(`converge with creates, updates and deletes in both directions, A as ${aRole}`, async () => {
      const dir = await temp.make();
      const fileA = join(dir, 'a.json');
      const fileB = join(dir, 'b.ndjson');
      await writeDocsFile(
        fileA,
        [1, 2, 3].map((i) => ({ id: `a-${i}`, from: 'A', n: i })),
      );
      await writeDocsFile(
        fileB,
        [1, 2, 3].map((i) => ({ id: `b-${i}`, from: 'B', n: i, tags: ['x', { deep: [i] }] })),
      );
      const sig = await signals.start();
      const [tokenA, tokenB] = aRole === 'master' ? [MASTER_TOKEN, FORK_TOKEN] : [FORK_TOKEN, MASTER_TOKEN];
      const [a, b] = await Promise.all([
        startPeer({ store: fileA, signal: sig.url, token: tokenA }),
        startPeer({ store: fileB, signal: sig.url, token: tokenB }),
      ]);
      const [connA, connB] = await Promise.all([
        a.waitFor('peer-connected', CONNECT_MS),
        b.waitFor('peer-connected', CONNECT_MS),
      ]);
      expect(connA.role).toBe(aRole);
      expect(connB.role).toBe(aRole === 'master' ? 'fork' : 'master');
      expect(connA.peerToken).toBe(tokenB);
      expect(connB.peerToken).toBe(tokenA);

      // Initial sync: each side gets the other's seed.
      const initial = await waitConverged([fileA, fileB], 6);
      expect([...initial.keys()].sort()).toEqual(['a-1', 'a-2', 'a-3', 'b-1', 'b-2', 'b-3']);
      expect(initial.get('b-2')).toEqual({ id: 'b-2', from: 'B', n: 2, tags: ['x', { deep: [2] }] });

      // Live changes on both sides at once, on disjoint documents: a create, an update of a document that came
      // from the other side, and a delete of one that came from the other side.
      await Promise.all([
        putDocs(fileA, [
          { id: 'a-new', from: 'A' },
          { id: 'b-1', from: 'A', edited: true },
        ]).then(() => rmDocs(fileA, ['b-2'])),
        putDocs(fileB, [
          { id: 'b-new', from: 'B' },
          { id: 'a-1', from: 'B', edited: true },
        ]).then(() => rmDocs(fileB, ['a-2'])),
      ]);
      const expected = docsById([
        { id: 'a-1', from: 'B', edited: true },
        { id: 'a-3', from: 'A', n: 3 },
        { id: 'a-new', from: 'A' },
        { id: 'b-1', from: 'A', edited: true },
        { id: 'b-3', from: 'B', n: 3, tags: ['x', { deep: [3] }] },
        { id: 'b-new', from: 'B' },
      ]);
      const final = await waitConverged([fileA, fileB], 6);
      expect(canonical(final)).toBe(canonical(expected));

      // A deleted id can be created again, and that replicates too.
      await putDocs(fileB, [{ id: 'b-2', from: 'B', revived: true }]);
      const revived = await waitConverged([fileA, fileB], 7);
      expect(revived.get('b-2')).toEqual({ id: 'b-2', from: 'B', revived: true });

      expect(a.events.filter((e) => e.event === 'error')).toEqual([]);
      expect(b.events.filter((e) => e.event === 'error')).toEqual([]);
      expect(a.child.exitCode).toBeNull();
      expect(b.child.exitCode).toBeNull();
    });
  }
});
