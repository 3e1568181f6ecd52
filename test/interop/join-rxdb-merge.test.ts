/**
 * Interop of conflict handling with a stock RxDB 17 peer:
 * - p2psync as the fork with `--conflict merge` resolves a conflict that the RxDB master detected: both edited the
 *   same document while apart; the merge (per field, over p2psync's assumed master state) is pushed and RxDB takes it.
 * - RxDB as the fork with its default handler against a p2psync master running `--conflict merge`: only forks
 *   resolve, so RxDB's handler decides (the master's state wins) and p2psync neither resolves nor keeps anything.
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { putDocuments } from '../../src/store/crud.js';
import { listConflicts } from '../../src/conflicts/index.js';
import { readDocs } from '../helpers/e2e.js';
import {
  ROLE_FORK_TOKEN,
  ROLE_MASTER_TOKEN,
  interopFixture,
  startJoin,
  startRxdbAndJoin,
  waitRxdbMatches,
} from '../helpers/rxdb-join.js';

const { tmp, peers, url, topic } = interopFixture('join-rxdb-merge');
const track = (p: { stop(): Promise<unknown> }): void => void peers.push(p);

describe('conflicts with stock RxDB 17', () => {
  it("p2psync as fork merges an RxDB master's conflicting edit per field; RxDB ends with the merge", async () => {
    const file = join(await tmp.make('join-rxdb-merge-'), 'docs.json');
    const base = { id: 'n1', title: 'Plan', tags: ['a'], done: false };
    await writeFile(file, JSON.stringify([base]));
    const t = topic();
    const join1 = {
      store: file,
      topic: t,
      signal: url('rxdb'),
      token: ROLE_FORK_TOKEN,
      extra: ['--conflict', 'merge'],
    };
    const { rx, p2p } = await startRxdbAndJoin(
      { signal: url('rxdb'), topic: t, token: ROLE_MASTER_TOKEN, prefix: 'R', seed: 0 },
      join1,
      track,
    );
    expect((await p2p.waitFor('peer-connected', 20_000)).role).toBe('fork');
    await waitRxdbMatches(rx, async () => (await readDocs(file)).values(), { count: 1 });
    await p2p.stop();

    // Apart: RxDB (the master) changes title and done, p2psync (the fork) title and tags.
    await rx.put({ ...base, title: 'Plan B', done: true });
    await putDocuments({ path: file }, [{ ...base, title: 'Plan C', tags: ['a', 'b'], _deleted: false }]);
    const again = await startJoin(join1, track);
    const conflict = await again.waitFor('conflict', 20_000);
    expect(conflict).toMatchObject({
      id: 'n1',
      strategy: 'merge',
      winner: 'merged',
      kept: [{ side: 'local', fields: ['title'] }],
    });
    const docs = await waitRxdbMatches(rx, async () => (await readDocs(file)).values(), { count: 1 });
    expect(docs).toEqual([{ id: 'n1', title: 'Plan B', tags: ['a', 'b'], done: true }]);
    expect(await listConflicts({ path: file })).toMatchObject([{ id: 'n1', versions: 1 }]);
    expect(again.events.filter((e) => e.event === 'error')).toEqual([]);
  }, 60_000);

  it('RxDB as fork with its default handler against a p2psync merge master: converges, p2psync resolves and keeps nothing', async () => {
    const file = join(await tmp.make('join-rxdb-merge-'), 'docs.json');
    const ids = Array.from({ length: 20 }, (_, i) => `c-${String(i).padStart(2, '0')}`);
    await writeFile(file, JSON.stringify(ids.map((id) => ({ id, v: 'seed' }))));
    const t = topic();
    const { rx, p2p } = await startRxdbAndJoin(
      { signal: url('p2psync'), topic: t, token: ROLE_FORK_TOKEN, prefix: 'R', seed: 0 },
      { store: file, topic: t, signal: url('p2psync'), token: ROLE_MASTER_TOKEN, extra: ['--conflict', 'merge'] },
      track,
    );
    expect((await p2p.waitFor('peer-connected', 20_000)).role).toBe('master');
    await waitRxdbMatches(rx, async () => (await readDocs(file)).values(), { count: ids.length });
    // Both sides write every id at once, a few rounds: RxDB's pushes meet p2psync's newer states.
    for (let round = 0; round < 3; round++) {
      await Promise.all([
        Promise.all(ids.map((id) => rx.put({ id, v: `rx-${round}` }))),
        putDocuments(
          { path: file },
          ids.map((id) => ({ id, v: `p2p-${round}`, _deleted: false })),
        ),
      ]);
    }
    const docs = await waitRxdbMatches(rx, async () => (await readDocs(file)).values(), {
      count: ids.length,
      timeoutMs: 30_000,
    });
    expect(docs.every((d) => typeof d.v === 'string' && /^(rx|p2p)-\d$/.test(d.v))).toBe(true);
    // The master only detects conflicts: no conflict events, nothing kept on the p2psync side.
    expect(p2p.events.filter((e) => e.event === 'conflict' || e.event === 'error')).toEqual([]);
    expect(await listConflicts({ path: file })).toEqual([]);
  }, 60_000);
});
