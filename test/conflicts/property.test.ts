/**
 * Property: over 3 to 5 in-memory peers in a full mesh, random schedules of puts, deletes, concurrent edits of the
 * same ids, links cut and healed and peers restarted (from their store's saved replication state and kept versions)
 * end, once every link is healed and every peer idle, with identical stores, and with no write lost: every value a
 * write put into a document is in the final document, or was replaced by a later write that had seen it, or is in a
 * version some peer kept. For each strategy: master, lww, merge and a custom (RxDB-shaped) handler.
 *
 * Shrunk failures found by fast-check are kept at the bottom as regression tests (`schedule(...)` replays one).
 */
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { handlerStrategy } from '../../src/conflicts/handler.js';
import { MemoryKeptVersions } from '../../src/conflicts/kept.js';
import { mergeStrategy } from '../../src/conflicts/merge.js';
import type { DocState } from '../../src/core/types.js';
import { canonicalJson, lastWriteWins, masterWins, type ConflictStrategy } from '../../src/replication/conflict.js';
import { replicate, type PeerReplication } from '../../src/replication/peer-replication.js';
import { isMaster } from '../../src/replication/master-rule.js';
import type { PeerLink } from '../../src/core/link.js';
import { converged, digest } from '../replication/helpers.js';
import { JitterStore, createJitterLinkPair, hops, prng } from '../replication/jitter.js';

const IDS = ['a', 'b', 'c'];
const FIELDS = ['f0', 'f1', 'f2'];

export type Op =
  | { op: 'put'; peer: number; id: number; field: number }
  | { op: 'del'; peer: number; id: number }
  | { op: 'cut'; a: number; b: number }
  | { op: 'heal'; a: number; b: number }
  | { op: 'restart'; peer: number }
  | { op: 'wait'; turns: number };

export interface Schedule {
  peers: number;
  seed: number;
  ops: Op[];
}

/** An RxDB-shaped handler a user might write: the larger state by canonical JSON wins (deterministic). */
const LARGER_WINS = {
  isEqual: (a: unknown, b: unknown) => canonicalJson(a) === canonicalJson(b),
  resolve: async (i: { newDocumentState: unknown; realMasterState: unknown }) =>
    canonicalJson(i.newDocumentState) > canonicalJson(i.realMasterState) ? i.newDocumentState : i.realMasterState,
};

export const STRATEGIES: Record<string, () => ConflictStrategy> = {
  master: () => masterWins(),
  lww: () => lastWriteWins('updatedAt'),
  merge: () => mergeStrategy(),
  handler: () => handlerStrategy(LARGER_WINS, 'larger-wins.mjs', 'id'),
};

interface Write {
  id: string;
  /** The value it wrote (every value is unique). */
  token: string;
  /** Values this write replaced: the ones it saw in the field it wrote, or all of a deleted doc's body it re-created. */
  replaced: string[];
}

interface Peer {
  store: JitterStore;
  kept: MemoryKeptVersions;
}

interface Connection {
  links: [PeerLink, PeerLink];
  reps: [PeerReplication, PeerReplication];
}

const open: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of open.splice(0)) await c();
});

function tokensOf(doc: DocState | undefined): string[] {
  if (!doc) return [];
  return Object.entries(doc)
    .filter(([k, v]) => k !== 'id' && k !== 'updatedAt' && k !== '_deleted' && typeof v === 'string')
    .map(([, v]) => v as string);
}

/**
 * Storage tokens for the peers. With `acyclic`, ones whose pairwise master relation (PROTOCOL §2.3) is a total order:
 * `master` and `merge` let the master's value win, and over a cycle of roles (A master of B, B of C, C of A) three
 * peers that each hold a different value pass them round forever. See README "Conflicts", limitations.
 */
function peerTokens(s: Schedule, acyclic: boolean): string[] {
  for (let attempt = 0; ; attempt++) {
    const tokens = Array.from({ length: s.peers }, (_, i) => `peer${i}token${s.seed}x${attempt}`);
    if (!acyclic) return tokens;
    const wins = tokens.map((t) => tokens.filter((u) => u !== t && isMaster(t, u)).length);
    // A tournament is transitive exactly when its out-degrees are 0..n-1, all different.
    if (new Set(wins).size === tokens.length) return tokens;
  }
}

/** Runs one schedule; returns a description of what went wrong, or undefined. */
export async function runSchedule(
  s: Schedule,
  strategy: () => ConflictStrategy,
  acyclic = false,
): Promise<string | undefined> {
  const random = prng(s.seed);
  const tokens = peerTokens(s, acyclic);
  const peers: Peer[] = tokens.map((token) => ({
    store: new JitterStore(token, random),
    kept: new MemoryKeptVersions(1000),
  }));
  const conns = new Map<string, Connection>();
  const errors: string[] = [];
  const writes: Write[] = [];
  let clock = 0;
  let serial = 0;

  const key = (a: number, b: number): string => (a < b ? `${a}-${b}` : `${b}-${a}`);
  const connect = (a: number, b: number): void => {
    if (a === b || conns.has(key(a, b))) return;
    const links = createJitterLinkPair(random, `p${a}`, `p${b}`);
    const rep = (i: number, link: PeerLink): PeerReplication =>
      replicate({
        store: peers[i]!.store,
        meta: peers[i]!.store,
        link,
        topic: 'property',
        conflict: strategy(),
        keeper: peers[i]!.kept,
        batchSize: 3,
        retryDelayMs: 20,
        emit: (e) => {
          if (e.event === 'error') errors.push(`peer ${i}: ${e.message}`);
          if (process.env.PROPERTY_TRACE && e.event === 'conflict')
            console.log(
              `peer ${i} vs ${e.peerId}: ${JSON.stringify({ local: e.local, remote: e.remote, resolved: e.resolved, kept: e.kept })}`,
            );
        },
      });
    conns.set(key(a, b), { links, reps: [rep(a, links[0]), rep(b, links[1])] });
  };
  const cut = async (a: number, b: number): Promise<void> => {
    const c = conns.get(key(a, b));
    if (!c) return;
    conns.delete(key(a, b));
    c.links[0].close();
    c.links[1].close();
    await Promise.all(c.reps.map((r) => r.close()));
  };
  const closeAll = async (): Promise<void> => {
    for (const k of [...conns.keys()]) {
      const [a, b] = k.split('-').map(Number) as [number, number];
      await cut(a, b);
    }
  };
  open.push(closeAll);

  /** A local write on top of whatever the peer holds now (replication may write between read and write). */
  const write = async (
    p: number,
    id: string,
    token: string,
    make: (current: DocState | undefined) => { doc: DocState; replaced: string[] } | undefined,
  ): Promise<void> => {
    const store = peers[p]!.store;
    for (;;) {
      const current = (await store.get([id])).get(id);
      const next = make(current);
      if (!next) return;
      const conflicts = await store.bulkWrite([{ document: next.doc, expected: current ?? null }], { kind: 'local' });
      if (conflicts.length === 0) {
        writes.push({ id, token, replaced: next.replaced });
        return;
      }
    }
  };

  for (let a = 0; a < s.peers; a++) for (let b = a + 1; b < s.peers; b++) connect(a, b);
  for (const o of s.ops) {
    switch (o.op) {
      case 'put': {
        const field = FIELDS[o.field]!;
        const token = `w${++serial}`;
        await write(o.peer % s.peers, IDS[o.id]!, token, (cur) => {
          const live = cur && !cur._deleted;
          const body: DocState = live ? { ...cur } : { id: IDS[o.id]!, _deleted: false };
          delete body.d;
          const replaced = live ? tokensOf({ [field]: cur[field] } as DocState) : tokensOf(cur);
          return { doc: { ...body, [field]: token, updatedAt: ++clock, _deleted: false }, replaced };
        });
        break;
      }
      case 'del': {
        const token = `w${++serial}`;
        await write(o.peer % s.peers, IDS[o.id]!, token, (cur) =>
          cur && !cur._deleted
            ? { doc: { ...cur, d: token, updatedAt: ++clock, _deleted: true }, replaced: [] }
            : undefined,
        );
        break;
      }
      case 'cut':
        await cut(o.a % s.peers, o.b % s.peers);
        break;
      case 'heal':
        connect(o.a % s.peers, o.b % s.peers);
        break;
      case 'restart': {
        const p = o.peer % s.peers;
        const others = [...conns.keys()]
          .map((k) => k.split('-').map(Number) as [number, number])
          .filter(([a, b]) => a === p || b === p);
        for (const [a, b] of others) await cut(a, b);
        for (const [a, b] of others) connect(a, b);
        break;
      }
      case 'wait':
        await hops(o.turns);
        break;
    }
  }
  for (let a = 0; a < s.peers; a++) for (let b = a + 1; b < s.peers; b++) connect(a, b);
  const reps = (): PeerReplication[] => [...conns.values()].flatMap((c) => c.reps);
  const stores = peers.map((p) => p.store);
  try {
    await converged(reps(), stores, CONVERGE_MS);
  } catch (err) {
    const state = (r: PeerReplication): string =>
      JSON.stringify({
        role: r.role,
        idle: r.isIdle(),
        stats: r.stats,
        ...(r as unknown as { inspect(): object }).inspect(),
      });
    return `${(err as Error).message}: ${(await Promise.all(stores.map(digest))).join('\n')}\n${reps().map(state).join('\n')}`;
  }
  if (errors.length > 0) return `errors: ${errors.join('; ')}`;

  const final = new Map((await stores[0]!.changesSince(null, 1000)).documents.map((d) => [d.id as string, d]));
  const keptTokens = new Map<string, Set<string>>();
  for (const p of peers) {
    for (const [id, versions] of await p.kept.list()) {
      const set = keptTokens.get(id) ?? new Set<string>();
      for (const v of versions) for (const t of tokensOf(v.document)) set.add(t);
      keptTokens.set(id, set);
    }
  }
  const replaced = new Set(writes.flatMap((w) => w.replaced));
  for (const w of writes) {
    if (tokensOf(final.get(w.id)).includes(w.token)) continue;
    if (replaced.has(w.token)) continue;
    if (keptTokens.get(w.id)?.has(w.token)) continue;
    return `write ${w.token} to ${w.id} is lost: final ${JSON.stringify(final.get(w.id))}, kept ${JSON.stringify([...(keptTokens.get(w.id) ?? [])])}`;
  }
  await closeAll();
  open.pop();
  return undefined;
}

const peerIx = fc.nat({ max: 4 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant('put' as const),
      peer: peerIx,
      id: fc.nat({ max: 2 }),
      field: fc.nat({ max: 2 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('del' as const), peer: peerIx, id: fc.nat({ max: 2 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('cut' as const), a: peerIx, b: peerIx }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('heal' as const), a: peerIx, b: peerIx }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('restart' as const), peer: peerIx }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('wait' as const), turns: fc.nat({ max: 30 }) }) },
);
const scheduleArb: fc.Arbitrary<Schedule> = fc.record({
  peers: fc.integer({ min: 3, max: 5 }),
  seed: fc.nat(),
  ops: fc.array(opArb, { maxLength: 30 }),
});

const CONVERGE_MS = Number(process.env.PROPERTY_CONVERGE_MS ?? 8_000);
/** Strategies where the master's value wins a clash: converge only where roles are ordered (see `peerTokens`). */
const ROLE_ORDERED = new Set(['master', 'merge']);
const RUNS = Number(process.env.PROPERTY_RUNS ?? 12);

describe.each(Object.keys(STRATEGIES))('strategy %s over 3-5 peers', (name) => {
  it('converges to identical stores and loses no write', async () => {
    await fc.assert(
      fc.asyncProperty(scheduleArb, async (s) => {
        const why = await runSchedule(s, STRATEGIES[name]!, ROLE_ORDERED.has(name));
        expect(why, JSON.stringify(s)).toBeUndefined();
      }),
      // A fixed seed in CI (reproducible); PROPERTY_SEED=random (or a number) and PROPERTY_RUNS=n explore further.
      {
        numRuns: RUNS,
        ...(process.env.PROPERTY_SEED === 'random' ? {} : { seed: Number(process.env.PROPERTY_SEED ?? 12) }),
      },
    );
  }, 240_000);
});

// Shrunk failures fast-check found, kept as regular tests.
describe('regressions from shrunk schedules', () => {
  const cases: Array<[string, string, Schedule]> = [
    // Three peers whose roles formed a cycle passed one clashing value round forever with `master` and `merge`:
    // now run (and documented) with ordered roles; lww and handlers converge whatever the roles.
    [
      'merge',
      'concurrent edits of one field on three peers',
      {
        peers: 3,
        seed: 1772280158,
        ops: [
          { op: 'put', peer: 2, id: 0, field: 0 },
          { op: 'put', peer: 1, id: 1, field: 0 },
          { op: 'put', peer: 4, id: 0, field: 0 },
        ],
      },
    ],
    [
      'lww',
      'two writes on one peer against one on another',
      {
        peers: 3,
        seed: 179759807,
        ops: [
          { op: 'wait', turns: 11 },
          { op: 'put', peer: 0, id: 0, field: 0 },
          { op: 'put', peer: 0, id: 0, field: 0 },
          { op: 'put', peer: 1, id: 0, field: 0 },
        ],
      },
    ],
    [
      'merge',
      'put, delete and re-create on one peer',
      {
        peers: 3,
        seed: 0,
        ops: [
          { op: 'put', peer: 0, id: 2, field: 0 },
          { op: 'del', peer: 0, id: 2 },
          { op: 'put', peer: 0, id: 2, field: 1 },
        ],
      },
    ],
  ];
  it.each(cases)('%s: %s', async (name, _what, s) => {
    expect(await runSchedule(s, STRATEGIES[name]!, ROLE_ORDERED.has(name))).toBeUndefined();
  });
  // A resolution whose write lost the race with a newer local write used to record the master's state as assumed
  // anyway: the newer write then replaced the master's state unseen, and w3 ended nowhere (RxDB does the same).
  it('master: a resolution that loses the race with a newer local write does not let it overwrite the master unseen', async () => {
    const s: Schedule = {
      peers: 3,
      seed: 0,
      ops: [
        { op: 'wait', turns: 11 },
        { op: 'put', peer: 4, id: 1, field: 0 },
        { op: 'put', peer: 1, id: 1, field: 0 },
        { op: 'put', peer: 0, id: 1, field: 0 },
        { op: 'put', peer: 2, id: 0, field: 0 },
      ],
    };
    expect(await runSchedule(s, STRATEGIES.master!, true)).toBeUndefined();
  });
  it.each(['lww', 'handler'])('%s converges over a cycle of roles', async (name) => {
    expect(await runSchedule(cases[0]![2], STRATEGIES[name]!)).toBeUndefined();
  });
});
