/**
 * Interop: a live `p2psync join` and a stock RxDB 17 peer, with p2psync as master (through `p2psync signal`) and
 * as fork (through RxDB's own signaling server). Creates, updates and deletes (tombstones, and re-creating deleted
 * ids) travel in both directions while both run. p2psync's side is edited with `p2psync put` / `p2psync rm` next to
 * the running join. (Concurrent conflicting edits: join-rxdb-conflicts.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { readDocs, waitUntil } from '../helpers/e2e.js';
import { CliProcess, runCli } from '../helpers/spawn.js';
import { unexpectedRxdbErrors, type PlainDoc, type RxdbPeer } from '../helpers/rxdb.js';
import { startConvergedPair, interopFixture, waitRxdbMatches, type SignalKind } from '../helpers/rxdb-join.js';

const RX_SEED = 40;
const P2P_SEED = 20;

async function p2psync(args: string[]): Promise<void> {
  const r = await runCli(args);
  if (r.code !== 0) throw new Error(`p2psync ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
}

const { tmp, peers, url, topic } = interopFixture('join-rxdb-live');

describe.each([
  { role: 'master' as const, server: 'p2psync' as SignalKind },
  { role: 'fork' as const, server: 'rxdb' as SignalKind },
])('p2psync join <-> stock RxDB 17 live, p2psync as $role via $server signaling', ({ role, server }) => {
  /** A connected, converged pair: RxDB seeded with R-…, the file with P-…. */
  async function startConverged(): Promise<{ rx: RxdbPeer; p2p: CliProcess; file: string }> {
    const file = join(await tmp.make('join-rxdb-live-'), 'docs.json');
    const pair = await startConvergedPair({
      signal: url(server),
      topic: topic(),
      role,
      file,
      rxSeed: RX_SEED,
      p2pSeed: P2P_SEED,
      track: (p) => peers.push(p),
    });
    return { ...pair, file };
  }

  it('creates, updates and deletes travel both ways while live, tombstones included', async () => {
    const { rx, p2p, file } = await startConverged();

    // RxDB -> p2psync: a create, an update of a document that came from p2psync, a delete of its own document.
    const rxCreated: PlainDoc = { id: 'R-new', title: 'created on RxDB', n: 1, nested: { a: [1, 'two', null] } };
    const rxUpdated: PlainDoc = { id: 'P-00000002', title: 'updated on RxDB', n: 2, updatedAt: 5 };
    await rx.put(rxCreated);
    await rx.put(rxUpdated);
    expect(await rx.remove('R-00000003')).toBe(true);
    await waitUntil(
      async () => {
        const d = await readDocs(file);
        return d.get('P-00000002')?.title === 'updated on RxDB' && d.has('R-new') && !d.has('R-00000003');
      },
      15_000,
      async () => `file holds ${(await readDocs(file)).size} docs`,
    );
    const afterRx = await readDocs(file);
    expect(afterRx.get('R-new')).toEqual(rxCreated);
    // An RxDB upsert replaces the whole body: fields the update left out are gone on p2psync's side too.
    expect(afterRx.get('P-00000002')).toEqual(rxUpdated);

    // p2psync -> RxDB, through the CLI next to the running join: a create, an update of an RxDB document,
    // a delete of a p2psync document, and re-creating the id RxDB deleted (an update of its tombstone).
    const p2pCreated = { id: 'P-new', title: 'created by p2psync put', list: [3, 2, 1] };
    const p2pUpdated = { id: 'R-00000004', title: 'updated by p2psync put', n: 4 };
    const revived = { id: 'R-00000003', title: 'revived by p2psync put' };
    await p2psync([
      'put',
      '--store',
      file,
      JSON.stringify(p2pCreated),
      JSON.stringify(p2pUpdated),
      JSON.stringify(revived),
    ]);
    await p2psync(['rm', '--store', file, 'P-00000005']);
    await rx.waitForChange('P-00000005', (e) => e.op === 'DELETE');
    await rx.waitForChange('R-00000003', (e) => e.op !== 'DELETE' && (e.doc as PlainDoc).title === revived.title);
    expect(await rx.get('P-new')).toEqual(p2pCreated);
    expect(await rx.get('R-00000004')).toEqual(p2pUpdated);
    expect(await rx.get('P-00000005')).toBeNull();

    // And RxDB re-creates the id p2psync deleted.
    const reborn: PlainDoc = { id: 'P-00000005', title: 'reborn on RxDB' };
    await rx.put(reborn);
    await waitUntil(async () => (await readDocs(file)).get('P-00000005')?.title === reborn.title, 15_000);

    // Both sides: every seeded doc, +2 creates, -2 deletes, +2 re-creations.
    const docs = await waitRxdbMatches(rx, async () => (await readDocs(file)).values(), {
      count: RX_SEED + P2P_SEED + 2,
    });
    expect(docs.find((d) => d.id === 'R-00000003')).toEqual(revived);
    expect(docs.find((d) => d.id === 'P-00000005')).toEqual(reborn);
    expect(p2p.events.filter((e) => e.event === 'error')).toEqual([]);
    expect(unexpectedRxdbErrors(rx.events)).toEqual([]);
  });
});
