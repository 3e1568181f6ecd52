import { afterEach, describe, expect, it } from 'vitest';
import type { SyncEvent } from '../../src/core/events.js';
import type { Store } from '../../src/core/store.js';
import type { DocState } from '../../src/core/types.js';
import { createMemoryLinkPair } from '../../src/transport/memory-link.js';
import { lastWriteWins, masterWins } from '../../src/replication/conflict.js';
import {
  FORK_TOKEN,
  allIdle,
  until,
  MASTER_TOKEN,
  connect,
  converged,
  digest,
  doc,
  put,
  seed,
  store,
  type Pair,
} from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

function track(p: Pair): Pair {
  cleanups.push(() => p.close());
  return p;
}

async function getDoc(s: Store, id: string): Promise<DocState | undefined> {
  return (await s.get([id])).get(id);
}

const events = (list: SyncEvent[], name: SyncEvent['event']): SyncEvent[] => list.filter((e) => e.event === name);

describe.each([
  { name: 'A master', tokenA: MASTER_TOKEN, tokenB: FORK_TOKEN },
  { name: 'A fork', tokenA: FORK_TOKEN, tokenB: MASTER_TOKEN },
])('two stores ($name)', ({ tokenA, tokenB }) => {
  it('converge with creates, updates and deletes in both directions', async () => {
    const sa = store(tokenA);
    const sb = store(tokenB);
    await seed(sa, 120, 'a');
    await seed(sb, 80, 'b');
    await put(sa, doc('shared', { from: 'a' }));
    const p = track(connect(sa, sb));
    await Promise.all([p.a.rep.ready, p.b.rep.ready]);
    expect(p.a.rep.role).toBe(tokenA === MASTER_TOKEN ? 'master' : 'fork');
    expect(p.b.rep.role).toBe(tokenA === MASTER_TOKEN ? 'fork' : 'master');
    expect(p.a.rep.peerToken).toBe(tokenB);
    await converged([p.a.rep, p.b.rep], [sa, sb]);
    expect((await sb.all()).length).toBe(201);

    // live changes on both sides
    await put(sa, doc('a-000001', { n: 'changed on a' }), doc('new-a', { x: 1 }));
    await put(sb, doc('b-000002', { n: 'changed on b' }), doc('new-b', { y: 2 }), doc('a-000003', {}, true));
    await put(sb, doc('shared', { from: 'a' }, true));
    await converged([p.a.rep, p.b.rep], [sa, sb]);
    expect((await getDoc(sa, 'b-000002'))?.n).toBe('changed on b');
    expect((await getDoc(sb, 'a-000001'))?.n).toBe('changed on a');
    expect(await getDoc(sa, 'a-000003')).toEqual(doc('a-000003', {}, true));
    expect(await getDoc(sa, 'shared')).toEqual(doc('shared', { from: 'a' }, true));
    expect((await sa.all()).length).toBe(201);

    // re-create a deleted id
    await put(sa, doc('a-000003', { back: true }));
    await converged([p.a.rep, p.b.rep], [sa, sb]);
    expect(await getDoc(sb, 'a-000003')).toEqual(doc('a-000003', { back: true }));
    expect(p.a.rep.stats.conflicts + p.b.rep.stats.conflicts).toBe(0);
    const fork = p.a.rep.role === 'fork' ? p.a : p.b;
    expect(events(fork.events, 'pulled').length).toBeGreaterThan(0);
    expect(events(fork.events, 'pushed').length).toBeGreaterThan(0);
    expect(events([...p.a.events, ...p.b.events], 'error')).toEqual([]);
  });

  it('converges concurrent conflicting updates with "master": the master state wins', async () => {
    const sa = store(tokenA);
    const sb = store(tokenB);
    await seed(sa, 20, 's');
    const p = track(connect(sa, sb));
    await converged([p.a.rep, p.b.rep], [sa, sb]);
    // both sides change the same documents before either change can travel
    await Promise.all([
      put(sa, doc('s-000001', { v: 'A' }), doc('s-000002', { v: 'A' }), doc('s-000003', {}, true)),
      put(sb, doc('s-000001', { v: 'B' }), doc('s-000002', {}, true), doc('s-000003', { v: 'B' })),
    ]);
    await converged([p.a.rep, p.b.rep], [sa, sb]);
    const masterSide = tokenA === MASTER_TOKEN ? 'A' : 'B';
    const one = await getDoc(sa, 's-000001');
    expect(one?.v).toBe(masterSide);
    const fork = p.a.rep.role === 'fork' ? p.a : p.b;
    const conflicts = events(fork.events, 'conflict');
    expect(conflicts.length).toBe(3);
    for (const c of conflicts) {
      if (c.event !== 'conflict') continue;
      expect(c.strategy).toBe('master');
      expect(c.winner).toBe('remote');
      expect(c.resolved).toEqual(c.remote);
      expect(c.local).not.toEqual(c.remote);
    }
    expect(fork.rep.stats.conflicts).toBe(3);
  });

  it('converges concurrent conflicting updates with "lww": the newer timestamp wins whatever the role', async () => {
    const sa = store(tokenA);
    const sb = store(tokenB);
    await put(sa, doc('x', { v: 0, updatedAt: 1 }), doc('y', { v: 0, updatedAt: 1 }), doc('z', { v: 0, updatedAt: 1 }));
    const p = track(connect(sa, sb, { conflict: lastWriteWins() }));
    await converged([p.a.rep, p.b.rep], [sa, sb]);
    await Promise.all([
      put(
        sa,
        doc('x', { v: 'A', updatedAt: 10 }),
        doc('y', { v: 'A', updatedAt: '2030-01-01T00:00:00Z' }),
        doc('z', { v: 'A', updatedAt: 5 }, true),
      ),
      put(
        sb,
        doc('x', { v: 'B', updatedAt: 20 }),
        doc('y', { v: 'B', updatedAt: '2029-12-31T23:59:59Z' }),
        doc('z', { v: 'B', updatedAt: 6 }),
      ),
    ]);
    await converged([p.a.rep, p.b.rep], [sa, sb]);
    expect(await getDoc(sa, 'x')).toEqual(doc('x', { v: 'B', updatedAt: 20 }));
    expect(await getDoc(sa, 'y')).toEqual(doc('y', { v: 'A', updatedAt: '2030-01-01T00:00:00Z' }));
    expect(await getDoc(sb, 'z')).toEqual(doc('z', { v: 'B', updatedAt: 6 }));
    const fork = p.a.rep.role === 'fork' ? p.a : p.b;
    const winners = events(fork.events, 'conflict').map((c) =>
      c.event === 'conflict' ? `${c.id}:${c.winner}:${c.strategy}` : '',
    );
    const forkIsA = fork === p.a;
    expect(winners.sort()).toEqual([
      `x:${forkIsA ? 'remote' : 'local'}:lww`,
      `y:${forkIsA ? 'local' : 'remote'}:lww`,
      `z:${forkIsA ? 'remote' : 'local'}:lww`,
    ]);
  });
});

describe('replication', () => {
  it('converges under a stream of interleaved conflicting writes (master and lww)', async () => {
    for (const conflict of [masterWins(), lastWriteWins()]) {
      const sa = store(MASTER_TOKEN);
      const sb = store(FORK_TOKEN);
      const p = track(connect(sa, sb, { conflict, batchSize: 7 }));
      await p.a.rep.ready;
      let t = 0;
      for (let round = 0; round < 40; round++) {
        const id = `k${round % 9}`;
        const writes = [
          put(sa, doc(id, { v: `a${round}`, updatedAt: ++t }, round % 7 === 3)),
          put(sb, doc(id, { v: `b${round}`, updatedAt: ++t })),
        ];
        if (round % 3 === 0) writes.push(put(sb, doc(`o${round}`, { only: 'b' })));
        await Promise.all(writes);
        if (round % 5 === 0) await new Promise((r) => setImmediate(r));
      }
      await converged([p.a.rep, p.b.rep], [sa, sb]);
      expect((await sa.all()).some((d) => d.id === 'o0')).toBe(true);
    }
  });

  it('converges along a chain A-B-C where A and C never connect', async () => {
    const sa = store('chain-a');
    const sb = store('chain-b');
    const sc = store('chain-c');
    await seed(sa, 150, 'a');
    await seed(sc, 150, 'c');
    const ab = track(connect(sa, sb, {}, {}, createMemoryLinkPair('B', 'A')));
    const bc = track(connect(sb, sc, {}, {}, createMemoryLinkPair('C', 'B')));
    const reps = [ab.a.rep, ab.b.rep, bc.a.rep, bc.b.rep];
    await converged(reps, [sa, sb, sc]);
    expect((await sa.all()).length).toBe(300);
    await put(sc, doc('c-000001', { edited: 'on c' }), doc('from-c', {}));
    await put(sa, doc('a-000001', {}, true));
    await converged(reps, [sa, sb, sc]);
    expect((await getDoc(sa, 'c-000001'))?.edited).toBe('on c');
    expect(await getDoc(sc, 'a-000001')).toEqual(doc('a-000001', {}, true));
  });

  it('never lets a closed link stall the others', async () => {
    const sa = store(MASTER_TOKEN);
    const sb = store(FORK_TOKEN);
    const sc = store('cccccccccc');
    await seed(sa, 2000, 'a');
    await seed(sc, 50, 'c');
    const ab = track(connect(sa, sb, { batchSize: 20 }));
    const bc = track(connect(sb, sc, {}, {}, createMemoryLinkPair('C', 'B')));
    // close A-B in the middle of B's initial pull
    await new Promise<void>((resolve) => {
      ab.b.rep.onStateChange(() => undefined);
      const sub = sb.changes$.subscribe(() => {
        if (ab.b.rep.stats.pulled >= 200) {
          sub.unsubscribe();
          resolve();
        }
      });
    });
    ab.linkA.close();
    await expect(ab.b.rep.close()).resolves.toBeUndefined();
    await converged([bc.a.rep, bc.b.rep], [sb, sc]);
    const n = (await sb.all()).length;
    expect(n).toBeGreaterThanOrEqual(250);
    expect(n).toBeLessThan(2050);
    expect(ab.a.rep.isIdle()).toBe(false);
    // and the remaining link keeps replicating
    await put(sc, doc('late', {}));
    await converged([bc.a.rep, bc.b.rep], [sb, sc]);
    expect(await getDoc(sb, 'late')).toBeDefined();
  });

  it('restarts incrementally: zero documents when nothing changed, then only the changed ones', async () => {
    const sa = store(MASTER_TOKEN);
    const sb = store(FORK_TOKEN);
    await seed(sa, 300, 'a');
    await seed(sb, 200, 'b');
    const first = connect(sa, sb);
    await converged([first.a.rep, first.b.rep], [sa, sb]);
    await first.close();

    const again = connect(sa, sb);
    await converged([again.a.rep, again.b.rep], [sa, sb]);
    for (const s of [again.a.rep.stats, again.b.rep.stats]) {
      expect(s).toMatchObject({ sent: 0, received: 0, pulled: 0, pushed: 0, conflicts: 0 });
    }
    await again.close();

    // offline changes on both sides (master A, fork B)
    await put(sa, doc('a-000010', { v: 'new' }), doc('a-000011', {}, true));
    await put(sb, doc('b-000010', { v: 'new' }), doc('fresh', {}));
    const third = track(connect(sa, sb));
    await converged([third.a.rep, third.b.rep], [sa, sb]);
    expect(third.a.rep.stats.sent).toBe(2); // the fork pulled the master's two changes
    expect(third.b.rep.stats.sent).toBe(2); // and pushed its two
    expect(third.b.rep.stats.pulled).toBe(2);
    expect(third.b.rep.stats.pushed).toBe(2);
    expect(third.a.rep.stats.received + third.b.rep.stats.received).toBe(4);
  });

  it('replicates a document over 1 MB in chunks within the link limit', async () => {
    const sa = store(FORK_TOKEN);
    const sb = store(MASTER_TOKEN);
    const big = doc('big', {
      text: 'ab"c\\€😀'.repeat(150_000),
      nested: { list: Array.from({ length: 1000 }, (_, i) => ({ i })) },
    });
    expect(JSON.stringify(big).length).toBeGreaterThan(1_000_000);
    await put(sa, big, doc('small', {}));
    const [linkA, linkB] = createMemoryLinkPair();
    const sizes: number[] = [];
    const send = linkA.send.bind(linkA);
    linkA.send = (frame: string) => {
      sizes.push(Buffer.byteLength(frame, 'utf8'));
      send(frame);
    };
    const p = track(connect(sa, sb, {}, {}, [linkA, linkB]));
    await converged([p.a.rep, p.b.rep], [sa, sb]);
    expect(await getDoc(sb, 'big')).toEqual(big);
    expect(sizes.length).toBeGreaterThan(10);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(linkA.maxMessageSize);
    // and an update of it travels back the other way (B is master: it streams)
    const bigger = { ...big, text: (big.text as string) + 'x' };
    await put(sb, bigger);
    await converged([p.a.rep, p.b.rep], [sa, sb]);
    expect((await getDoc(sa, 'big'))?.text).toBe(bigger.text);
  });

  it('supports pull-only and push-only peers', async () => {
    // A pulls only (fork), B pushes only (master): B's data reaches A, A's never reaches B
    const sa = store(FORK_TOKEN);
    const sb = store(MASTER_TOKEN);
    await seed(sa, 10, 'a');
    await seed(sb, 10, 'b');
    const p = track(connect(sa, sb, { direction: 'pull' }, { direction: 'push' }));
    await until2(p);
    expect((await sa.all()).length).toBe(20);
    expect((await sb.all()).length).toBe(10);

    // the other way round: A pushes only (fork), B pulls only (master)
    const sc = store(FORK_TOKEN);
    const sd = store(MASTER_TOKEN);
    await seed(sc, 10, 'c');
    await seed(sd, 10, 'd');
    const q = track(connect(sc, sd, { direction: 'push' }, { direction: 'pull' }));
    await until2(q);
    expect((await sd.all()).length).toBe(20);
    expect((await sc.all()).length).toBe(10);
    // a pull-only fork resolves conflicts locally with the strategy
    await put(sa, doc('b-000001', { mine: true }));
    await put(sb, doc('b-000001', { theirs: true }));
    await until(
      async () => (await getDoc(sa, 'b-000001'))?.theirs === true,
      [p.a.rep, p.b.rep],
      [sa, sb],
      'the pull-only side to take the remote change',
    );
    expect(await getDoc(sa, 'b-000001')).toEqual(doc('b-000001', { theirs: true }));
    expect(await getDoc(sb, 'b-000001')).toEqual(doc('b-000001', { theirs: true }));
    expect(events(p.a.events, 'conflict').length).toBe(1);
  });

  it('the digest helper sees tombstones', async () => {
    const s1 = store();
    const s2 = store();
    await put(s1, doc('x', {}, true));
    await put(s2, doc('x', {}));
    expect(await digest(s1)).not.toBe(await digest(s2));
  });
});

function until2(p: Pair): Promise<void> {
  return allIdle([p.a.rep, p.b.rep], [p.a.store, p.b.store]);
}

describe("a fork's first up-scan after its initial pull", () => {
  it('leaves every pulled document out unread, and still pushes a local change made among them', async () => {
    const sa = store(MASTER_TOKEN);
    const sb = store(FORK_TOKEN);
    await seed(sa, 500, 'a');
    await seed(sb, 3, 'b');
    const pages: Array<{ scanned: number; ids: string[] }> = [];
    const except = sb.changesSinceExcept.bind(sb);
    sb.changesSinceExcept = async (checkpoint, limit, known) => {
      const page = await except(checkpoint, limit, known);
      pages.push({ scanned: page.scanned, ids: page.documents.map((d) => d.id as string) });
      return page;
    };
    const pair = connect(sa, sb);
    await converged([pair.a.rep, pair.b.rep], [sa, sb]);
    // Its own three documents are read (and pushed); the 500 pulled ones are scanned but never read.
    expect(pages.reduce((n, p) => n + p.scanned, 0)).toBeGreaterThanOrEqual(503);
    expect(pages.flatMap((p) => p.ids).sort()).toEqual(['b-000000', 'b-000001', 'b-000002']);
    expect(pair.b.rep.stats.pushed).toBe(3);

    pages.length = 0;
    await put(sb, doc('a-000100', { v: 'local' }));
    await converged([pair.a.rep, pair.b.rep], [sa, sb]);
    expect(pages.flatMap((p) => p.ids)).toEqual(['a-000100']);
    expect((await sa.get(['a-000100'])).get('a-000100')).toMatchObject({ v: 'local' });
    await pair.close();
  });
});
