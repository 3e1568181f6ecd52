import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  TempDirs,
  makeDoc,
  putDocs,
  startPeer,
  startSignal,
  waitAfter,
  waitConverged,
  writeDocsFile,
} from '../helpers/e2e.js';
import { CliProcess } from '../helpers/spawn.js';

const temp = new TempDirs();
afterEach(async () => {
  await CliProcess.killAll();
  await temp.cleanup();
});

const CONNECT_MS = 20_000;

describe('the signaling server dies and comes back', () => {
  it('established links keep replicating while it is down, and peers reconnect once it is back', async () => {
    const dir = await temp.make();
    const [fileA, fileB, fileC] = [join(dir, 'a.json'), join(dir, 'b.ndjson'), join(dir, 'c.json')];
    await writeDocsFile(
      fileA,
      [0, 1, 2].map((n) => makeDoc('a', n)),
    );
    await writeDocsFile(
      fileB,
      [0, 1, 2].map((n) => makeDoc('b', n)),
    );
    const sig = await startSignal();
    const [a, b] = await Promise.all([
      startPeer({ store: fileA, signal: sig.url }),
      startPeer({ store: fileB, signal: sig.url }),
    ]);
    await Promise.all([a.waitFor('peer-connected', CONNECT_MS), b.waitFor('peer-connected', CONNECT_MS)]);
    await waitConverged([fileA, fileB], 6);

    const [markA, markB] = [a.events.length, b.events.length];
    sig.proc.kill('SIGKILL');
    expect(await sig.proc.exited).toEqual({ code: null, signal: 'SIGKILL' });
    await Promise.all([waitAfter(a, markA, 'signaling-disconnected'), waitAfter(b, markB, 'signaling-disconnected')]);

    // Signaling is down: the data link still carries changes, both ways.
    await putDocs(fileA, [{ id: 'while-down-a', n: 1 }]);
    await putDocs(fileB, [
      { id: 'while-down-b', n: 2 },
      { ...makeDoc('a', 0), edited: 'b' },
    ]);
    const during = await waitConverged([fileA, fileB], 8);
    expect(during.get('a-00000000')).toMatchObject({ edited: 'b' });
    expect(a.events.slice(markA).some((e) => e.event === 'signaling-connected')).toBe(false);
    expect(a.events.slice(markA).some((e) => e.event === 'peer-disconnected')).toBe(false);

    // The server comes back on the same port: both peers reconnect by themselves.
    const sig2 = await startSignal([], sig.port);
    expect(sig2.port).toBe(sig.port);
    await Promise.all([
      waitAfter(a, markA, 'signaling-connected', () => true, CONNECT_MS),
      waitAfter(b, markB, 'signaling-connected', () => true, CONNECT_MS),
    ]);

    // A peer joining afterwards finds both and gets everything; its own documents reach them.
    await writeDocsFile(fileC, [{ id: 'from-c', n: 3 }]);
    const c = await startPeer({ store: fileC, signal: sig2.url });
    await c.waitFor(
      () => new Set(c.events.filter((e) => e.event === 'peer-connected').map((e) => e.peerToken)).size === 2,
      CONNECT_MS,
    );
    const final = await waitConverged([fileA, fileB, fileC], 9);
    expect(final.get('while-down-b')).toEqual({ id: 'while-down-b', n: 2 });
    expect(final.get('from-c')).toEqual({ id: 'from-c', n: 3 });
    for (const p of [a, b, c]) expect(p.events.filter((e) => e.event === 'error')).toEqual([]);
  });
});
