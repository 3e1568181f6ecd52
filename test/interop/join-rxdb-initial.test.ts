/**
 * Interop: initial sync between `p2psync join` and a stock RxDB 17 peer (memory storage, `replicateWebRTC` with
 * the simple-peer handler), data seeded on one side only. Every combination of direction (RxDB -> p2psync,
 * p2psync -> RxDB), role (p2psync master or fork, forced by storage tokens, docs/PROTOCOL.md §2.3) and signaling server
 * (`p2psync signal`, RxDB's own). RxDB's batch size alternates between its default (20) and a larger one; the
 * seed sizes give a short last page at 20 and an exact multiple (last page full, then an empty one) at 100.
 */
import { describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeDoc, readDocs, sumEvents } from '../helpers/e2e.js';
import { masterOf, unexpectedRxdbErrors } from '../helpers/rxdb.js';
import {
  canonicalDocs,
  ROLE_FORK_TOKEN,
  ROLE_MASTER_TOKEN,
  startRxdbAndJoin,
  interopFixture,
  type SignalKind,
  waitRxdbMatches,
} from '../helpers/rxdb-join.js';

// Tokens that force the roles: MASTER is master of FORK whichever side computes it.
const MASTER = ROLE_MASTER_TOKEN;
const FORK = ROLE_FORK_TOKEN;
const CONNECT_MS = 20_000;

type Direction = 'rxdb-to-p2psync' | 'p2psync-to-rxdb';
type Role = 'master' | 'fork';

interface Case {
  direction: Direction;
  /** p2psync's role in the pair. */
  role: Role;
  server: SignalKind;
  /** RxDB's pull and push batch size; undefined keeps its default of 20. */
  rxBatch?: number;
  seed: number;
}

const cases: Case[] = [
  { direction: 'rxdb-to-p2psync', role: 'master', server: 'p2psync', seed: 250 },
  { direction: 'rxdb-to-p2psync', role: 'master', server: 'rxdb', rxBatch: 100, seed: 300 },
  { direction: 'rxdb-to-p2psync', role: 'fork', server: 'p2psync', rxBatch: 100, seed: 300 },
  { direction: 'rxdb-to-p2psync', role: 'fork', server: 'rxdb', seed: 250 },
  { direction: 'p2psync-to-rxdb', role: 'master', server: 'p2psync', seed: 250 },
  { direction: 'p2psync-to-rxdb', role: 'master', server: 'rxdb', rxBatch: 100, seed: 300 },
  { direction: 'p2psync-to-rxdb', role: 'fork', server: 'p2psync', rxBatch: 100, seed: 300 },
  { direction: 'p2psync-to-rxdb', role: 'fork', server: 'rxdb', seed: 250 },
];

describe('p2psync join <-> stock RxDB 17: initial sync', () => {
  const { tmp, peers, url: serverUrl, topic } = interopFixture('join-rxdb');

  it.each(cases)('$direction, p2psync as $role, via $server signaling, RxDB batch $rxBatch, $seed docs', async (c) => {
    const p2pToken = c.role === 'master' ? MASTER : FORK;
    const rxToken = c.role === 'master' ? FORK : MASTER;
    expect(masterOf(p2pToken, rxToken)).toBe(c.role === 'master' ? p2pToken : rxToken);

    const dir = await tmp.make('join-rxdb-');
    const file = join(dir, 'docs.json');
    const seeded =
      c.direction === 'p2psync-to-rxdb' ? Array.from({ length: c.seed }, (_, i) => makeDoc('P', i + 1)) : [];
    await writeFile(file, JSON.stringify(seeded, null, 2));

    const url = serverUrl(c.server);
    const t = topic();
    const { rx, p2p } = await startRxdbAndJoin(
      {
        signal: url,
        topic: t,
        token: rxToken,
        prefix: 'R',
        ...(c.direction === 'rxdb-to-p2psync' ? { seed: c.seed } : {}),
        ...(c.rxBatch !== undefined ? { batchSize: c.rxBatch } : {}),
      },
      { store: file, topic: t, signal: url, token: p2pToken },
      (p) => peers.push(p),
    );
    expect(rx.storageToken).toBe(rxToken);
    expect((await p2p.waitFor('joined')).storageToken).toBe(p2pToken);

    // Both sides agree on the roles the token rule predicts.
    const connected = await p2p.waitFor('peer-connected', CONNECT_MS);
    expect(connected).toMatchObject({ peerToken: rxToken, role: c.role });
    expect(await rx.waitFor('peer', CONNECT_MS)).toMatchObject({
      peerToken: p2pToken,
      role: c.role === 'master' ? 'fork' : 'master',
    });

    const docs = await waitRxdbMatches(rx, async () => (await readDocs(file)).values(), { count: c.seed });
    expect(docs).toHaveLength(c.seed);
    const prefix = c.direction === 'p2psync-to-rxdb' ? 'P-' : 'R-';
    expect(docs.every((d) => d.id.startsWith(prefix))).toBe(true);
    if (c.direction === 'p2psync-to-rxdb') {
      // The documents RxDB holds are exactly the ones seeded into the file, byte for byte after canonicalisation.
      expect(canonicalDocs(docs)).toBe(canonicalDocs(seeded));
    } else {
      // RxDB's seeded docs carry fields p2psync knows nothing about (updatedAt, padded body): kept unchanged.
      expect(docs[0]).toMatchObject({ id: 'R-00000001', title: 'Document number 1', n: 1 });
      expect(typeof docs[0]!.updatedAt).toBe('number');
    }

    // The counts p2psync reports match the direction: as fork it pulled (or pushed) every doc; as master the
    // RxDB fork drove the transfer, which p2psync does not report as its own pulled/pushed batches.
    await p2p.waitFor('synced', CONNECT_MS);
    if (c.role === 'fork') {
      const moved =
        c.direction === 'rxdb-to-p2psync' ? sumEvents(p2p.events, 'pulled') : sumEvents(p2p.events, 'pushed');
      expect(moved).toBe(c.seed);
    }
    expect(p2p.events.filter((e) => e.event === 'error')).toEqual([]);
    expect(unexpectedRxdbErrors(rx.events)).toEqual([]);
  });
});
