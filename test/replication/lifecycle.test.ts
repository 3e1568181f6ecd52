import { afterEach, describe, expect, it } from 'vitest';
import type { Checkpoint, DocState } from '../../src/core/types.js';
import { createMemoryLinkPair } from '../../src/transport/memory-link.js';
import { RXDB_FRAME_SIZES } from '../../src/replication/chunking.js';
import { masterWins } from '../../src/replication/conflict.js';
import { replicate } from '../../src/replication/peer-replication.js';
import {
  FORK_TOKEN,
  MASTER_TOKEN,
  RawPeer,
  allIdle,
  connect,
  converged,
  doc,
  put,
  seed,
  side,
  store,
  until,
  type Side,
} from './helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

function rawFork(options: Parameters<typeof side>[2] = {}): { a: Side; raw: RawPeer } {
  const [linkA, linkB] = createMemoryLinkPair('raw', 'a');
  const raw = new RawPeer(linkB, FORK_TOKEN);
  const a = side(store(MASTER_TOKEN), linkA, { batchSize: 10, ...options });
  cleanups.push(async () => {
    await a.rep.close();
    linkA.close();
  });
  return { a, raw };
}

async function pullAll(raw: RawPeer, from: Checkpoint | null = null, size = 50): Promise<Checkpoint | null> {
  let checkpoint = from;
  for (;;) {
    const page = (await raw.request('masterChangesSince', [checkpoint, size])).result as {
      checkpoint: Checkpoint | null;
      documents: DocState[];
    };
    if (page.documents.length > 0) checkpoint = page.checkpoint;
    if (page.documents.length < size) return checkpoint;
  }
}

describe('"in sync" as seen by a master', () => {
  it('waits for the fork to pull everything and for its in-sync marker', async () => {
    const { a, raw } = rawFork();
    await seed(a.store, 30, 'm');
    // a p2psync fork announces itself, so its own writes come back without their documents
    await raw.request('token', [{ p2psync: 1 }]);
    await a.rep.ready;
    await raw.waitFor(() => raw.stream.includes('RESYNC'), 'RESYNC');
    expect(a.rep.isIdle()).toBe(false); // the fork has not pulled yet
    const checkpoint = await pullAll(raw);
    // having served everything is not enough: the fork may still be applying it or have changes of its own
    expect(a.rep.isIdle()).toBe(false);
    await raw.request('masterWrite', [[], { p2psyncResyncs: 1 }]);
    await allIdle([a.rep]);

    await raw.request('masterWrite', [[{ newDocumentState: { id: 'f1', v: 1 } }]]);
    expect(a.rep.isIdle()).toBe(false); // the fork may have more to write
    const stale = await raw.request('masterWrite', [[], { p2psyncResyncs: 0 }]);
    expect(stale.result).toEqual([]);
    expect(a.rep.isIdle()).toBe(false); // it has not seen the RESYNC that was sent, so the marker is out of date
    await raw.request('masterWrite', [[], { p2psyncResyncs: 1 }]);
    expect(a.rep.isIdle()).toBe(true);

    // its own writes come back as checkpoint-only events, new local ones as documents
    const echo = raw.stream.find(
      (e) => typeof e === 'object' && (e as { documents: unknown[] }).documents.length === 0,
    ) as { checkpoint: Checkpoint };
    expect(echo.checkpoint).toEqual({ id: 'f1', lwt: expect.any(Number) });
    expect(checkpoint).not.toBeNull();
    await put(a.store, doc('m-new'));
    await raw.waitFor(
      () =>
        raw.stream.some(
          (e) => typeof e === 'object' && (e as { documents: DocState[] }).documents.some((d) => d.id === 'm-new'),
        ),
      'the new document',
    );
    await allIdle([a.rep]); // streamed and handed to the link
  });

  it('prompts a fork that sends no marker (like RxDB) with RESYNC and accepts its next short page', async () => {
    const { a, raw } = rawFork({ limits: { resyncPromptMs: 20 } });
    await a.rep.ready;
    await raw.waitFor(() => raw.stream.includes('RESYNC'), 'RESYNC');
    const checkpoint = await pullAll(raw);
    await raw.request('masterWrite', [[{ newDocumentState: { id: 'f1', v: 1 } }]]);
    expect(a.rep.isIdle()).toBe(false);
    await raw.waitFor(() => raw.stream.filter((e) => e === 'RESYNC').length === 2, 'the prompt');
    expect(a.rep.isIdle()).toBe(false);
    await pullAll(raw, checkpoint);
    await allIdle([a.rep]);
  });
});

describe('lifecycle', () => {
  it('rejects ready when the link closes before the handshake, and closes idempotently', async () => {
    const [linkA, linkB] = createMemoryLinkPair();
    const s = store();
    const rep = replicate({
      store: s,
      meta: s,
      link: linkA,
      topic: 'topic-one',
      conflict: masterWins(),
      batchSize: 10,
    });
    linkB.close(); // the remote goes away before answering the token request
    await expect(rep.ready).rejects.toMatchObject({ code: 'E_PEER' });
    expect(rep.isIdle()).toBe(false);
    expect(rep.role).toBeUndefined();
    await Promise.all([rep.close(), rep.close()]);
    await rep.close();
  });

  it('waits for in-flight store writes on close and stops replicating', async () => {
    const sa = store(MASTER_TOKEN);
    const sb = store(FORK_TOKEN);
    await seed(sa, 500, 'x');
    const p = connect(sa, sb, { batchSize: 20 });
    cleanups.push(() => p.close());
    await until(() => p.b.rep.stats.pulled >= 100, [p.b.rep], [sb], 'a first part of the pull');
    await p.b.rep.close();
    const pulled = p.b.rep.stats.pulled;
    const count = (await sb.all()).length;
    expect(count).toBe(pulled); // every received page was written before close resolved
    await put(sa, doc('after-close'));
    await p.a.rep.close();
    expect((await sb.all()).length).toBe(count);
  });

  it('reports state changes until idle and gives roles and tokens', async () => {
    const p = connect(store(MASTER_TOKEN), store(FORK_TOKEN));
    cleanups.push(() => p.close());
    let changes = 0;
    let detached = 0;
    p.b.rep.onStateChange(() => detached++)();
    p.b.rep.onStateChange(() => changes++);
    await converged([p.a.rep, p.b.rep], [p.a.store, p.b.store]);
    expect(changes).toBeGreaterThan(0);
    expect(detached).toBe(0);
    expect([p.a.rep.role, p.b.rep.role, p.a.rep.peerToken, p.b.rep.peerToken]).toEqual([
      'master',
      'fork',
      FORK_TOKEN,
      MASTER_TOKEN,
    ]);
  });

  it('validates options up front', () => {
    const [link] = createMemoryLinkPair();
    const s = store();
    const base = { store: s, meta: s, link, topic: 't', conflict: masterWins(), batchSize: 10 };
    expect(() => replicate({ ...base, batchSize: 0 })).toThrow(/batch size/);
    expect(() => replicate({ ...base, batchSize: 1.5 })).toThrow(/batch size/);
    expect(() => replicate({ ...base, topic: '' })).toThrow(/topic/);
    expect(() => replicate({ ...base, direction: 'sideways' as 'both' })).toThrow(/direction/);
    expect(() => replicate({ ...base, requestTimeoutMs: -1 })).toThrow(/requestTimeoutMs/);
    expect(() => replicate({ ...base, conflict: {} as never })).toThrow(/conflict strategy/);
    let thrown: unknown;
    try {
      replicate({ ...base, batchSize: -3 });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toMatchObject({ code: 'E_BAD_OPTION' });
    link.close();
  });

  it('restarts incrementally as fork too (roles swapped)', async () => {
    const sa = store(FORK_TOKEN);
    const sb = store(MASTER_TOKEN);
    await seed(sa, 100, 'a');
    await seed(sb, 100, 'b');
    const first = connect(sa, sb);
    await converged([first.a.rep, first.b.rep], [sa, sb]);
    await first.close();
    const again = connect(sa, sb);
    cleanups.push(() => again.close());
    await converged([again.a.rep, again.b.rep], [sa, sb]);
    expect([
      again.a.rep.stats.sent,
      again.a.rep.stats.received,
      again.b.rep.stats.sent,
      again.b.rep.stats.received,
    ]).toEqual([0, 0, 0, 0]);
  });

  it("replicates with RxDB's 16,384-character chunks as well", async () => {
    const sa = store(MASTER_TOKEN);
    const sb = store(FORK_TOKEN);
    // batches are sized to fit one frame, so only documents larger than a frame need chunks
    await seed(sa, 400, 'a', (i) => ({ text: `"quoted" ${'€'.repeat(i % 50)} 😀`.repeat(i % 40 === 0 ? 2000 : 3) }));
    await seed(sb, 400, 'b');
    const [linkA, linkB] = createMemoryLinkPair();
    const frames: number[] = [];
    const send = linkA.send.bind(linkA);
    linkA.send = (f: string) => {
      frames.push(f.length);
      send(f);
    };
    const p = connect(
      sa,
      sb,
      { frameSizes: RXDB_FRAME_SIZES, batchSize: 500 },
      { frameSizes: RXDB_FRAME_SIZES, batchSize: 500 },
      [linkA, linkB],
    );
    cleanups.push(() => p.close());
    await converged([p.a.rep, p.b.rep], [sa, sb]);
    expect((await sb.all()).length).toBe(800);
    expect(Math.max(...frames)).toBeGreaterThan(16_384); // escaped chunk frames are larger than their slice
    expect(Math.max(...frames)).toBeLessThan(3 * 16_384);
  });

  it('times out requests a peer never answers, then retries', async () => {
    const [linkA, linkB] = createMemoryLinkPair('raw', 'a');
    const raw = new RawPeer(linkB, MASTER_TOKEN);
    const a = side(store(FORK_TOKEN), linkA, { requestTimeoutMs: 30, retryDelayMs: 10 });
    cleanups.push(async () => {
      await a.rep.close();
      linkA.close();
    });
    await raw.nextRequest('masterChangesSince');
    await raw.waitFor(() => raw.requests.filter((r) => r.method === 'masterChangesSince').length >= 2, 'a retry');
    expect(a.events.some((e) => e.event === 'error' && e.code === 'E_TIMEOUT')).toBe(true);
  });
});

describe('fork downstream ordering', () => {
  it('skips a stream event that its pulls already covered, so an older version never overwrites a newer one', async () => {
    const [linkA, linkB] = createMemoryLinkPair('raw', 'a');
    const raw = new RawPeer(linkB, MASTER_TOKEN);
    const a = side(store(FORK_TOKEN), linkA, { batchSize: 10 });
    cleanups.push(async () => {
      await a.rep.close();
      linkA.close();
    });
    raw.autoAnswer = (r) => {
      if (r.method === 'masterWrite') return [];
      if (r.params[0] === null)
        return { checkpoint: { id: 'x', lwt: 10 }, documents: [{ id: 'x', v: 2, _deleted: false }] };
      return { checkpoint: r.params[0], documents: [] };
    };
    await until(
      async () => (await a.store.get(['x'])).get('x')?.v === 2 && a.rep.isIdle(),
      [a.rep],
      [a.store],
      'the first pull',
    );
    raw.sendJson({
      id: 'masterChangeStream$',
      result: { checkpoint: { id: 'x', lwt: 5 }, documents: [{ id: 'x', v: 1, _deleted: false }] },
    });
    raw.sendJson({
      id: 'masterChangeStream$',
      result: { checkpoint: { id: 'y', lwt: 11 }, documents: [{ id: 'y', v: 1, _deleted: false }] },
    });
    await until(
      async () => (await a.store.get(['y'])).has('y') && a.rep.isIdle(),
      [a.rep],
      [a.store],
      'the newer event',
    );
    expect((await a.store.get(['x'])).get('x')).toEqual({ id: 'x', v: 2, _deleted: false });
  });
});
