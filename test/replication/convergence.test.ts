// Deterministic reproductions of two convergence bugs found by interop soaks with RxDB:
// - a p2psync fork lost a newer master state that arrived while its push was in flight and was skipped for the
//   local change, when the push's answer carried an older master state;
// - a p2psync master sent an RxDB fork checkpoint-only echoes of its own writes, which cannot repair an older
//   stream event the RxDB fork applies late (it holds events back while it pushes).
import { afterEach, describe, expect, it } from 'vitest';
import type { DocState } from '../../src/core/types.js';
import { createMemoryLinkPair } from '../../src/transport/memory-link.js';
import {
  FORK_TOKEN,
  MASTER_TOKEN,
  RawPeer,
  allIdle,
  connect,
  converged,
  doc,
  put,
  side,
  store,
  until,
  type Pair,
  type Side,
} from './helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

type Request = { id: string; method: string; params: unknown[] };
const stream = (raw: RawPeer, checkpoint: { id: string; lwt: number }, ...documents: DocState[]): void =>
  raw.sendJson({ id: 'masterChangeStream$', result: { checkpoint, documents } });

/** A p2psync fork against a hand-driven master holding one document `x`. */
async function forkOfRawMaster(): Promise<{ a: Side; raw: RawPeer; master: { x: DocState; writes: Request[] } }> {
  const [linkA, linkB] = createMemoryLinkPair('raw', 'a');
  const raw = new RawPeer(linkB, MASTER_TOKEN);
  const master = { x: doc('x', { v: 'm1' }), writes: [] as Request[] };
  raw.autoAnswer = (r) => {
    if (r.method === 'masterChangesSince') {
      return r.params[0] === null
        ? { checkpoint: { id: 'x', lwt: 1 }, documents: [master.x] }
        : { checkpoint: r.params[0], documents: [] };
    }
    const rows = r.params[0] as Array<{ newDocumentState: DocState; assumedMasterState?: DocState }>;
    if (rows.length === 0) return []; // the in-sync marker
    master.writes.push(r);
    return undefined; // answered by the test
  };
  const a = side(store(FORK_TOKEN), linkA, { batchSize: 10 });
  cleanups.push(async () => {
    await a.rep.close();
    linkA.close();
  });
  await until(
    async () => (await a.store.get(['x'])).get('x')?.v === 'm1' && a.rep.isIdle(),
    [a.rep],
    [a.store],
    'the first pull',
  );
  return { a, raw, master };
}

/** Answers a masterWrite like a master holding `master.x`: compare-and-set against the assumed state. */
function answer(raw: RawPeer, master: { x: DocState }, r: Request): void {
  const [row] = r.params[0] as Array<{ newDocumentState: DocState; assumedMasterState?: DocState }>;
  const ok = row !== undefined && JSON.stringify(row.assumedMasterState) === JSON.stringify(master.x);
  if (ok) master.x = row.newDocumentState;
  raw.sendJson({ id: r.id, result: ok ? [] : [master.x] });
}

const current = async (s: Side): Promise<unknown> => (await s.store.get(['x'])).get('x')?.v;

describe('a fork never loses a master state it skipped for a local change', () => {
  it('checks again when the answer to its push is older than a stream event that came first', async () => {
    const { a, raw, master } = await forkOfRawMaster();
    await put(a.store, doc('x', { v: 'f1' }));
    await raw.waitFor(() => master.writes.length === 1, 'the push');
    const push = master.writes[0]!;
    expect(push.params[0]).toEqual([
      { newDocumentState: doc('x', { v: 'f1' }), assumedMasterState: doc('x', { v: 'm1' }) },
    ]);
    // The master changed x twice while the push was on its way and streamed both changes; it had compared the
    // push against m2, so its answer carries m2 although m3 was already streamed (docs/PROTOCOL.md §2.5-2.6 allow this).
    master.x = doc('x', { v: 'm2' });
    stream(raw, { id: 'x', lwt: 2 }, master.x);
    stream(raw, { id: 'x', lwt: 3 }, doc('x', { v: 'm3' }));
    raw.sendJson({ id: push.id, result: [master.x] });
    master.x = doc('x', { v: 'm3' });
    // The fork resolves (the master wins: m2), then must still learn m3: by pushing its state once more.
    await raw.waitFor(() => master.writes.length === 2, 'a second push of x');
    expect(master.writes[1]!.params[0]).toEqual([
      { newDocumentState: doc('x', { v: 'm2' }), assumedMasterState: doc('x', { v: 'm2' }) },
    ]);
    answer(raw, master, master.writes[1]!);
    await until(async () => (await current(a)) === 'm3' && a.rep.isIdle(), [a.rep], [a.store], 'x at m3 on the fork');
    // Taking the newer master state of an unchanged document is no conflict.
    expect(a.events.filter((e) => e.event === 'conflict')).toHaveLength(1);

    // Still in step: the next change on the master is applied as usual.
    master.x = doc('x', { v: 'm4' });
    stream(raw, { id: 'x', lwt: 4 }, master.x);
    await until(async () => (await current(a)) === 'm4' && a.rep.isIdle(), [a.rep], [a.store], 'x at m4 on the fork');
    expect(master.writes).toHaveLength(2);
  });

  it('keeps a newer master state the downstream applied while that check was in flight', async () => {
    const { a, raw, master } = await forkOfRawMaster();
    await put(a.store, doc('x', { v: 'f1' }));
    await raw.waitFor(() => master.writes.length === 1, 'the push');
    master.x = doc('x', { v: 'm2' });
    stream(raw, { id: 'x', lwt: 2 }, master.x);
    raw.sendJson({ id: master.writes[0]!.id, result: [master.x] });
    await raw.waitFor(() => master.writes.length === 2, 'the check');
    // The check finds m2 unchanged (a no-op write); then the master changes x and streams it before it answers.
    master.x = doc('x', { v: 'm3' });
    stream(raw, { id: 'x', lwt: 3 }, master.x);
    await until(async () => (await current(a)) === 'm3', [a.rep], [a.store], 'x at m3 on the fork');
    raw.sendJson({ id: master.writes[1]!.id, result: [] });
    // The late "written" must not make m3 look like a local change: the next event still applies.
    master.x = doc('x', { v: 'm4' });
    stream(raw, { id: 'x', lwt: 4 }, master.x);
    await until(async () => (await current(a)) === 'm4' && a.rep.isIdle(), [a.rep], [a.store], 'x at m4 on the fork');
    expect(master.writes).toHaveLength(2);
  });

  it('does not check again when nothing was skipped', async () => {
    const { a, raw, master } = await forkOfRawMaster();
    await put(a.store, doc('x', { v: 'f1' }));
    await raw.waitFor(() => master.writes.length === 1, 'the push');
    answer(raw, master, master.writes[0]!);
    await allIdle([a.rep]);
    master.x = doc('x', { v: 'm2' });
    stream(raw, { id: 'x', lwt: 2 }, master.x);
    await until(async () => (await current(a)) === 'm2' && a.rep.isIdle(), [a.rep], [a.store], 'x at m2 on the fork');
    expect(master.writes).toHaveLength(1);
  });
});

describe("a master echoes a fork's own writes", () => {
  async function echoTo(hello: unknown[] | undefined): Promise<unknown[]> {
    const [linkA, linkB] = createMemoryLinkPair('raw', 'a');
    const raw = new RawPeer(linkB, FORK_TOKEN);
    const a = side(store(MASTER_TOKEN), linkA, { batchSize: 10 });
    cleanups.push(async () => {
      await a.rep.close();
      linkA.close();
    });
    if (hello) await raw.request('token', hello);
    await a.rep.ready;
    await raw.waitFor(() => raw.stream.includes('RESYNC'), 'RESYNC');
    const written = await raw.request('masterWrite', [[{ newDocumentState: { id: 'f1', v: 1 } }]]);
    expect(written.result).toEqual([]);
    await raw.waitFor(() => raw.stream.length === 2, 'the echo');
    const echo = raw.stream[1] as { checkpoint: unknown; documents: unknown[] };
    expect(echo.checkpoint).toEqual({ id: 'f1', lwt: expect.any(Number) });
    return echo.documents;
  }

  it('with its documents to a fork that did not announce p2psync (RxDB)', async () => {
    expect(await echoTo(undefined)).toEqual([{ id: 'f1', v: 1, _deleted: false }]);
    expect(await echoTo([])).toEqual([{ id: 'f1', v: 1, _deleted: false }]);
    expect(await echoTo([{ p2psync: 'yes' }])).toEqual([{ id: 'f1', v: 1, _deleted: false }]);
  });

  it('without them to a p2psync fork, which announces itself in its token request', async () => {
    expect(await echoTo([{ p2psync: 1 }])).toEqual([]);
    // Two p2psync peers: what the fork pushes never travels back.
    const pair: Pair = connect(store(MASTER_TOKEN), store(FORK_TOKEN));
    cleanups.push(() => pair.close());
    await converged([pair.a.rep, pair.b.rep], [pair.a.store, pair.b.store]);
    const before = pair.a.rep.stats.sent;
    await put(pair.b.store, doc('f1', { v: 1 }), doc('f2', { v: 2 }));
    await converged([pair.a.rep, pair.b.rep], [pair.a.store, pair.b.store]);
    expect(pair.b.rep.stats.pushed).toBe(2);
    expect(pair.a.rep.stats.sent - before).toBe(0);
  });
});
