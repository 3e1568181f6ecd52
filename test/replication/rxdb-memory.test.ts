// In-process interop with stock RxDB 17 (memory storage, its own `replicateWebRTC`): RxDB's replication logic talks
// to p2psync's over an in-memory link through a small RxDB connection handler, so the protocol semantics are checked
// fast and deterministically. The WebRTC transport itself is covered by the end-to-end interop tests.
import { afterEach, describe, expect, it } from 'vitest';
import { ReplaySubject, Subject } from 'rxjs';
import { createRxDatabase, randomToken, type RxCollection, type RxDatabase } from 'rxdb';
import { getRxStorageMemory } from 'rxdb/plugins/storage-memory';
import { replicateWebRTC, type RxWebRTCReplicationPool } from 'rxdb/plugins/replication-webrtc';
import type { PeerLink } from '../../src/core/link.js';
import { userFields } from '../../src/core/doc.js';
import { canonicalJson } from '../../src/replication/conflict.js';
import { Reassembler } from '../../src/replication/chunking.js';
import { isMaster } from '../../src/replication/master-rule.js';
import { createMemoryLinkPair } from '../../src/transport/memory-link.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { allIdle, doc, put, seed, side, until, type Side } from './helpers.js';
import { createJitterLinkPair, hops, prng } from './jitter.js';

// SOAK_SEEDS=n runs more (or fewer) seeds of the soak below.
const SOAK_SEEDS = Number(process.env.SOAK_SEEDS ?? 30);
const ROUNDS = 25;

const schema = {
  version: 0 as const,
  primaryKey: 'id',
  type: 'object',
  properties: { id: { type: 'string' as const, maxLength: 100 }, n: { type: 'number' as const }, v: {} },
  required: ['id'],
  // Without a validator plugin nothing enforces this, so documents with extra fields replicate unchanged.
  additionalProperties: false as const,
};

interface Peer {
  errors: unknown[];
  db: RxDatabase;
  docs: RxCollection;
  pool: RxWebRTCReplicationPool<unknown, PeerLink>;
}

const cleanups: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** An RxDB connection handler with exactly one peer: the given link (chunked frames are reassembled). */
function handlerFor(link: PeerLink) {
  return async () => {
    const connect$ = new ReplaySubject<PeerLink>(1);
    const disconnect$ = new Subject<PeerLink>();
    const message$ = new Subject<{ peer: PeerLink; message: never }>();
    const response$ = new Subject<{ peer: PeerLink; response: never }>();
    const error$ = new Subject<never>();
    const chunks = new Reassembler({ maxChunkTotal: 10_000, maxIncompleteChunkSets: 4, maxMessageChars: 1e9 });
    link.onFrame((frame) => {
      let msg = JSON.parse(frame) as Record<string, unknown>;
      if (msg.chunk) {
        const whole = chunks.add(msg.chunk);
        if (whole === undefined) return;
        msg = JSON.parse(whole) as Record<string, unknown>;
      }
      if (typeof msg.method === 'string') message$.next({ peer: link, message: msg as never });
      else response$.next({ peer: link, response: msg as never });
    });
    link.onClose(() => disconnect$.next(link));
    connect$.next(link);
    return {
      connect$,
      disconnect$,
      message$,
      response$,
      error$,
      send: async (_peer: PeerLink, message: unknown) => link.send(JSON.stringify(message)),
      close: async () => link.close(),
    };
  };
}

async function rxdbPeer(link: PeerLink, seedCount: number): Promise<Peer & { token: string }> {
  const db = await createRxDatabase({
    name: `rx${randomToken(8)}`,
    storage: getRxStorageMemory(),
    multiInstance: false,
  });
  const { docs } = await db.addCollections({ docs: { schema } });
  if (seedCount > 0) {
    const rows = Array.from({ length: seedCount }, (_, i) => ({ id: `rx-${String(i).padStart(4, '0')}`, n: i }));
    await docs.bulkInsert(rows);
  }
  const token = await db.storageToken;
  const pool = (await replicateWebRTC<unknown, PeerLink>({
    collection: docs,
    topic: 'topic-one',
    connectionHandlerCreator: handlerFor(link) as never,
    pull: {},
    push: {},
    retryTime: 50,
  })) as RxWebRTCReplicationPool<unknown, PeerLink>;
  const errors: unknown[] = [];
  pool.error$.subscribe((e) => errors.push(e));
  cleanups.push(async () => {
    await pool.cancel();
    await db.close();
  });
  return { errors, db, docs, pool, token };
}

/** A p2psync token that gives p2psync the wanted role against the RxDB token. */
function tokenFor(role: 'master' | 'fork', rxToken: string): string {
  for (;;) {
    const t = randomToken(10);
    if (isMaster(t, rxToken) === (role === 'master')) return t;
  }
}

async function rxContent(docs: RxCollection): Promise<string> {
  const all = await docs.find({ sort: [{ id: 'asc' }] }).exec();
  return canonicalJson(all.map((d) => userFields(d.toJSON() as never)));
}

async function p2pContent(s: MemoryStore): Promise<string> {
  return canonicalJson((await s.all()).map(userFields));
}

async function setup(
  role: 'master' | 'fork',
  rxSeed: number,
  p2pSeed: number,
  [linkRx, linkP2p]: [PeerLink, PeerLink] = createMemoryLinkPair('p2psync', 'rxdb'),
): Promise<{ rx: Peer; p2p: Side; store: MemoryStore }> {
  const rx = await rxdbPeer(linkRx, rxSeed);
  const store = new MemoryStore({ storageToken: tokenFor(role, rx.token) });
  if (p2pSeed > 0) await seed(store, p2pSeed, 'p2p');
  const p2p = side(store, linkP2p, { batchSize: 20, limits: { resyncPromptMs: 20 } });
  cleanups.push(async () => {
    await p2p.rep.close();
    linkP2p.close();
  });
  await p2p.rep.ready;
  expect(p2p.rep.role).toBe(role);
  return { rx, p2p, store };
}

function bothEqual(rx: Peer, p2p: Side, store: MemoryStore, timeoutMs = 15_000): Promise<void> {
  return until(
    async () => p2p.rep.isIdle() && (await rxContent(rx.docs)) === (await p2pContent(store)),
    [p2p.rep],
    [store],
    'identical content on RxDB and p2psync',
    timeoutMs,
    [rx.docs.$],
  ).catch(async (err: Error) => {
    const [a, b] = [await rxContent(rx.docs), await p2pContent(store)];
    throw new Error(
      `${err.message}: rxdb ${a.length} chars, p2psync ${b.length} chars, idle ${p2p.rep.isIdle()}, ${JSON.stringify((p2p.rep as never as { inspect(): unknown }).inspect())} ${a.slice(0, 200)} | ${b.slice(0, 200)}`,
    );
  });
}

describe.each(['master', 'fork'] as const)('with stock RxDB 17, p2psync as %s', (role) => {
  it('converges with data on both sides, then live creates, updates and deletes both ways', async () => {
    const { rx, p2p, store } = await setup(role, 60, 45);
    await bothEqual(rx, p2p, store);
    expect((await store.all()).length).toBe(105);

    await put(store, doc('p2p-000001', { n: 'changed by p2psync' }), doc('from-p2p', { v: [1, { x: 'y' }] }));
    await put(store, doc('rx-0002', { n: 2 }, true));
    await rx.docs.upsert({ id: 'rx-0003', n: 'changed by rxdb' });
    await (await rx.docs.findOne('p2p-000002').exec())!.remove();
    await rx.docs.insert({ id: 'from-rx', n: 7 });
    await bothEqual(rx, p2p, store);
    expect((await store.get(['p2p-000002'])).get('p2p-000002')?._deleted).toBe(true);
    expect((await rx.docs.findOne('from-p2p').exec())?.toJSON()).toMatchObject({ id: 'from-p2p', v: [1, { x: 'y' }] });
    expect(p2p.events.filter((e) => e.event === 'error')).toEqual([]);
    expect(rx.errors).toEqual([]);
  });

  it('converges after concurrent conflicting updates', async () => {
    const { rx, p2p, store } = await setup(role, 20, 0);
    await bothEqual(rx, p2p, store);
    for (let round = 0; round < 10; round++) {
      const id = `rx-${String(round % 4).padStart(4, '0')}`;
      await Promise.all([
        put(store, doc(id, { n: 1000 + round, by: 'p2p' })),
        rx.docs.upsert({ id, n: 2000 + round, by: 'rx' }),
      ]);
    }
    await bothEqual(rx, p2p, store);
  });
});

// Both sides update and delete the same ids at once, in random rounds; RxDB holds stream events back while it
// pushes, so this also checks that a p2psync master echoes an RxDB fork's own writes with their documents.
describe.each(['master', 'fork'] as const)(
  'with stock RxDB 17 under concurrent conflicting writes, p2psync as %s',
  (role) => {
    it('converges for every random interleaving', async () => {
      const ids = Array.from({ length: 6 }, (_, i) => `rx-${String(i).padStart(4, '0')}`);
      const failures: string[] = [];
      for (let seed = 1; seed <= SOAK_SEEDS; seed++) {
        const random = prng(seed);
        const { rx, p2p, store } = await setup(role, ids.length, 0, createJitterLinkPair(random, 'p2psync', 'rxdb'));
        await bothEqual(rx, p2p, store);
        const rxWrites = (async () => {
          for (let round = 0; round < ROUNDS; round++) {
            await hops(Math.floor(random() * 3));
            await Promise.all(
              ids
                .filter(() => random() < 0.4)
                .map(async (id) => {
                  if (random() < 0.15) await (await rx.docs.findOne(id).exec())?.remove();
                  else await rx.docs.upsert({ id, n: round, v: `rx-${round}` });
                }),
            );
          }
        })();
        const p2pWrites = (async () => {
          for (let round = 0; round < ROUNDS; round++) {
            const docs = ids
              .filter(() => random() < 0.4)
              .map((id) => doc(id, { n: round, v: `p2p-${round}` }, random() < 0.15));
            for (;;) {
              const now = await store.get(docs.map((d) => d.id as string));
              const conflicts = await store.bulkWrite(
                docs.map((d) => ({ document: d, expected: now.get(d.id as string) ?? null })),
                { kind: 'local' },
              );
              if (conflicts.length === 0) break;
            }
            await hops(Math.floor(random() * 3));
          }
        })();
        await Promise.all([rxWrites, p2pWrites]);
        await bothEqual(rx, p2p, store, 5_000).catch((err: Error) => failures.push(`seed ${seed}: ${err.message}`));
        expect(rx.errors).toEqual([]);
        for (const c of cleanups.splice(0).reverse()) await c();
      }
      expect(failures, `${failures.length} of ${SOAK_SEEDS} seeds diverged`).toEqual([]);
    }, 120_000);
  },
);

describe('with stock RxDB 17', () => {
  it('carries a large document in chunks both ways', async () => {
    const { rx, p2p, store } = await setup('master', 0, 0);
    const text = 'x"😀'.repeat(60_000);
    await put(store, doc('big', { v: text }));
    await bothEqual(rx, p2p, store);
    await rx.docs.upsert({ id: 'big', v: text + '!' });
    await bothEqual(rx, p2p, store);
    await allIdle([p2p.rep]);
    expect(rx.errors).toEqual([]);
  });
});
