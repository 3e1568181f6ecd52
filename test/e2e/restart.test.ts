import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  FORK_TOKEN,
  MASTER_TOKEN,
  makeDoc,
  putDocs,
  readDocs,
  startPeer,
  sumEvents,
  waitAfter,
  waitConverged,
  waitUntil,
  writeDocsFile,
  e2eFixture,
} from '../helpers/e2e.js';
import { CliProcess } from '../helpers/spawn.js';

const { temp, signals } = e2eFixture();

const CONNECT_MS = 20_000;

/** Documents sent or received per the `pulled`/`pushed` events of `proc` after its first `from` events. */
function traffic(proc: CliProcess, from = 0): { pulled: number; pushed: number } {
  const events = proc.events.slice(from);
  return { pulled: sumEvents(events, 'pulled'), pushed: sumEvents(events, 'pushed') };
}

/** Waits until `proc` reports `synced` after its first `from` events. */
function syncedAfter(proc: CliProcess, from: number): Promise<unknown> {
  return waitAfter(proc, from, 'synced', () => true, CONNECT_MS);
}

describe('restarts are incremental', () => {
  it('a restarted peer re-sends zero documents without changes, and only the changed ones otherwise', async () => {
    const dir = await temp.make();
    const fileA = join(dir, 'a.json');
    const fileB = join(dir, 'b.ndjson');
    await writeDocsFile(
      fileA,
      Array.from({ length: 30 }, (_, i) => makeDoc('a', i)),
    );
    await writeDocsFile(
      fileB,
      Array.from({ length: 30 }, (_, i) => makeDoc('b', i)),
    );
    const sig = await signals.start();
    const a = await startPeer({ store: fileA, signal: sig.url, token: MASTER_TOKEN });
    let b = await startPeer({ store: fileB, signal: sig.url, token: FORK_TOKEN });
    await Promise.all([syncedAfter(a, 0), syncedAfter(b, 0)]);
    await waitConverged([fileA, fileB], 60);
    // The first sync moved the seeds (the fork reports both directions).
    expect(traffic(b)).toEqual({ pulled: 30, pushed: 30 });

    // 1. Restart the fork with no changes anywhere: nothing travels either way.
    expect(await b.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    let mark = a.events.length;
    b = await startPeer({ store: fileB, signal: sig.url });
    expect(b.events.find((e) => e.event === 'joined')!.storageToken).toBe(FORK_TOKEN);
    await Promise.all([syncedAfter(a, mark), syncedAfter(b, 0)]);
    expect(traffic(b)).toEqual({ pulled: 0, pushed: 0 });
    expect(traffic(a, mark)).toEqual({ pulled: 0, pushed: 0 });

    // 2. Restart the master with no changes: the running fork re-sends nothing either.
    const markB = b.events.length;
    expect(await a.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    const a2 = await startPeer({ store: fileA, signal: sig.url });
    const reconnected = await waitAfter(b, markB, 'peer-connected', () => true, CONNECT_MS);
    await Promise.all([syncedAfter(a2, 0), syncedAfter(b, b.events.indexOf(reconnected))]);
    expect(traffic(b, markB)).toEqual({ pulled: 0, pushed: 0 });
    expect(traffic(a2)).toEqual({ pulled: 0, pushed: 0 });

    // 3. One change on each side while the fork is down: exactly one document travels each way.
    expect(await b.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    await putDocs(fileA, [{ ...makeDoc('b', 7), changedOn: 'a' }]);
    await putDocs(fileB, [{ ...makeDoc('a', 3), changedOn: 'b' }]); // no owner now: the CLI opens the store itself
    mark = a2.events.length;
    b = await startPeer({ store: fileB, signal: sig.url });
    await Promise.all([syncedAfter(a2, mark), syncedAfter(b, 0)]);
    const docs = await waitConverged([fileA, fileB], 60);
    expect(docs.get('b-00000007')).toMatchObject({ changedOn: 'a' });
    expect(docs.get('a-00000003')).toMatchObject({ changedOn: 'b' });
    expect(traffic(b)).toEqual({ pulled: 1, pushed: 1 });
    expect(traffic(a2, mark)).toEqual({ pulled: 0, pushed: 0 });
  });

  it('a peer killed with SIGKILL in the middle of a 20k-document initial pull converges after a restart', async () => {
    const N = 20_000;
    const dir = await temp.make();
    const fileA = join(dir, 'a.ndjson');
    const fileB = join(dir, 'b.json');
    await writeDocsFile(
      fileA,
      Array.from({ length: N }, (_, i) => makeDoc('big', i)),
    );
    const sig = await signals.start();
    const a = await startPeer({ store: fileA, signal: sig.url, token: MASTER_TOKEN });
    let b = await startPeer({ store: fileB, signal: sig.url, token: FORK_TOKEN });
    // Kill once the first pages reached the file (so the sidecar holds some replication state), long before the end.
    await waitUntil(
      async () => (await readDocs(fileB)).size > 0,
      CONNECT_MS,
      () => b.stderr,
    );
    b.kill('SIGKILL');
    expect(await b.exited).toEqual({ code: null, signal: 'SIGKILL' });
    const pulledBeforeKill = sumEvents(b.events, 'pulled');
    expect(pulledBeforeKill).toBeLessThan(N);

    // Whatever the moment of the kill, the file is valid (empty or a prefix of the pull) and holds only real docs.
    const partial = await readDocs(fileB);
    expect(partial.size).toBeLessThan(N);
    for (const [id, doc] of partial) expect(doc).toEqual(makeDoc('big', Number(id.slice(4))));

    const mark = a.events.length;
    b = await startPeer({ store: fileB, signal: sig.url });
    expect(b.events.find((e) => e.event === 'joined')!.storageToken).toBe(FORK_TOKEN);
    await Promise.all([syncedAfter(a, mark), syncedAfter(b, 0)]);
    const docs = await waitConverged([fileA, fileB], N, 60_000);
    expect(docs.get('big-00012345')).toEqual(makeDoc('big', 12345));
    expect(JSON.parse(await readFile(fileB, 'utf8'))).toHaveLength(N);
    expect(b.events.filter((e) => e.event === 'error')).toEqual([]);
  }, 90_000);
});
