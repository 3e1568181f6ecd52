/**
 * Interop: concurrent conflicting edits between a live `p2psync join` and a stock RxDB 17 peer. Both sides update
 * (and now and then delete) the same 30 ids as fast as they can for a couple of seconds; afterwards both must hold
 * identical content (RxDB's dump against p2psync's file). p2psync as master (through `p2psync signal`) and as fork
 * (through RxDB's own signaling server); RxDB's default conflict handler and p2psync's `master` strategy, so the
 * master's state wins every clash.
 *
 * p2psync's side is edited through the functions behind `p2psync put` / `p2psync rm` (file edits under the write
 * lock, taken in by the running join as outside edits), in-process: a process start per round would be far too slow.
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { putDocuments, removeDocuments } from '../../src/store/crud.js';
import { readDocs } from '../helpers/e2e.js';
import type { PlainDoc } from '../helpers/rxdb.js';
import { startConvergedPair, interopFixture, waitRxdbMatches, type SignalKind } from '../helpers/rxdb-join.js';

const RX_SEED = 40;
const P2P_SEED = 20;
/** The ids both sides fight over: 30 of RxDB's seeded documents. */
const CONTESTED = Array.from({ length: 30 }, (_, i) => `R-${String(i + 11).padStart(8, '0')}`);
const SOAK_MS = 2_500;
const DELETE_SHARE = 0.1;

/** A random half of the contested ids. */
function pick(): string[] {
  return CONTESTED.filter(() => Math.random() < 0.5);
}

const { tmp, peers, url, topic } = interopFixture('join-rxdb-conflicts');

describe.each([
  { role: 'master' as const, server: 'p2psync' as SignalKind },
  { role: 'fork' as const, server: 'rxdb' as SignalKind },
])('p2psync join <-> stock RxDB 17, p2psync as $role via $server signaling', ({ role, server }) => {
  it('concurrent conflicting updates and deletes of the same 30 ids end with identical content', async () => {
    const file = join(await tmp.make('join-rxdb-conflicts-'), 'docs.json');
    const { rx, p2p } = await startConvergedPair({
      signal: url(server),
      topic: topic(),
      role,
      file,
      rxSeed: RX_SEED,
      p2pSeed: P2P_SEED,
      // Per-document change events would only cost CPU here.
      changes: false,
      track: (p) => peers.push(p),
    });

    const written = new Map<string, Set<string>>(CONTESTED.map((id) => [id, new Set()]));
    const record = (id: string, v: string): void => void written.get(id)!.add(v);
    const deadline = Date.now() + SOAK_MS;
    const counts = { rx: 0, p2p: 0 };

    // RxDB side: rounds of upserts (and the odd delete) of a random half of the ids, as fast as RxDB takes them.
    const rxLoop = (async () => {
      for (let round = 0; Date.now() < deadline; round++) {
        await Promise.all(
          pick().map(async (id) => {
            if (Math.random() < DELETE_SHARE) {
              await rx.remove(id);
            } else {
              const v = `rx-${round}`;
              record(id, v);
              await rx.put({ id, title: `rxdb ${round}`, v, updatedAt: Date.now() });
            }
            counts.rx++;
          }),
        );
      }
    })();
    // p2psync side: the same through `put` / `rm`'s code path.
    const opts = { path: file, primaryKey: 'id' };
    const p2pLoop = (async () => {
      for (let round = 0; Date.now() < deadline; round++) {
        const ids = pick();
        const gone = ids.filter(() => Math.random() < DELETE_SHARE);
        const docs = ids
          .filter((id) => !gone.includes(id))
          .map((id) => ({ id, title: `p2psync ${round}`, v: `p2p-${round}`, updatedAt: Date.now(), _deleted: false }));
        for (const d of docs) record(d.id, d.v);
        if (docs.length > 0) await putDocuments(opts, docs);
        // Deleting an id that is already gone is fine: only the end state matters.
        if (gone.length > 0) await removeDocuments(opts, gone);
        counts.p2p += ids.length;
      }
    })();
    await Promise.all([rxLoop, p2pLoop]);
    expect(counts.rx).toBeGreaterThan(CONTESTED.length);
    expect(counts.p2p).toBeGreaterThan(CONTESTED.length);

    const docs: PlainDoc[] = await waitRxdbMatches(rx, async () => (await readDocs(file)).values(), {
      timeoutMs: 20_000,
    });

    // Nothing outside the contested ids changed, and every surviving contested doc is a version one side wrote.
    expect(docs.filter((d) => !written.has(d.id))).toHaveLength(RX_SEED + P2P_SEED - CONTESTED.length);
    for (const d of docs.filter((x) => written.has(x.id))) {
      const versions = written.get(d.id)!;
      // (An id neither side happened to pick keeps its seeded body, which has no `v`.)
      expect(
        versions.size === 0 ? d.v === undefined : versions.has(String(d.v)),
        `${d.id} holds ${JSON.stringify(d)}`,
      ).toBe(true);
    }
    // As fork, p2psync resolved the clashes itself (RxDB's default: the master's state wins); as master it only
    // detects them, and the RxDB fork resolves them out of p2psync's sight.
    const conflicts = p2p.events.filter((e) => e.event === 'conflict');
    if (role === 'fork') {
      expect(conflicts.length).toBeGreaterThan(0);
      expect(conflicts.every((e) => e.strategy === 'master' && e.winner === 'remote')).toBe(true);
    } else {
      expect(conflicts).toEqual([]);
    }
    // The link stayed up throughout, and p2psync reported no error.
    expect(p2p.events.filter((e) => e.event === 'peer-disconnected' || e.event === 'error')).toEqual([]);
  }, 60_000);
});
