import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  makeDoc,
  putDocs,
  readDocs,
  rmDocs,
  startPeer,
  waitConverged,
  writeDocsFile,
  e2eFixture,
} from '../helpers/e2e.js';
import { CliProcess, type CliEvent } from '../helpers/spawn.js';

const { temp, signals } = e2eFixture();

const CONNECT_MS = 20_000;

/** Distinct storage tokens of the peers `proc` finished a handshake with. */
function peerTokens(proc: CliProcess): Set<string> {
  return new Set(proc.events.filter((e) => e.event === 'peer-connected').map((e) => e.peerToken as string));
}

/** Waits until `proc` has finished handshakes with `n` distinct peers. */
function waitPeerCount(proc: CliProcess, n: number): Promise<CliEvent> {
  return proc.waitFor(() => peerTokens(proc).size >= n, CONNECT_MS);
}

function tokenOf(proc: CliProcess): string {
  const joined = proc.events.find((e) => e.event === 'joined');
  return joined!.storageToken as string;
}

describe('several p2psync peers', () => {
  it('three peers in one topic form a full mesh and converge', async () => {
    const dir = await temp.make();
    const files = [join(dir, 'a.json'), join(dir, 'b.ndjson'), join(dir, 'c.json')];
    await Promise.all(
      files.map((f, i) =>
        writeDocsFile(
          f,
          [0, 1, 2, 3].map((n) => makeDoc(`p${i}`, n)),
        ),
      ),
    );
    const sig = await signals.start();
    const peers = await Promise.all(files.map((store) => startPeer({ store, signal: sig.url })));
    await Promise.all(peers.map((p) => waitPeerCount(p, 2)));
    // Full mesh: every peer has a direct link to both others.
    const tokens = peers.map(tokenOf);
    peers.forEach((p, i) => expect(peerTokens(p)).toEqual(new Set(tokens.filter((_, j) => j !== i))));

    await waitConverged(files, 12);
    // A live change on each peer reaches the two others.
    await Promise.all(
      files.map((f, i) =>
        putDocs(f, [
          { id: `p${i}-live`, by: i },
          { ...makeDoc(`p${(i + 1) % 3}`, 0), editedBy: i },
        ]),
      ),
    );
    await rmDocs(files[0]!, ['p2-00000003']);
    const final = await waitConverged(files, 14);
    expect(final.get('p1-live')).toEqual({ id: 'p1-live', by: 1 });
    expect(final.get('p1-00000000')).toMatchObject({ editedBy: 0 });
    expect(final.has('p2-00000003')).toBe(false);
  });

  it('a late joiner with an empty file gets everything, deletes included', async () => {
    const dir = await temp.make();
    const [fileA, fileB, fileC] = [join(dir, 'a.json'), join(dir, 'b.ndjson'), join(dir, 'c.ndjson')];
    await writeDocsFile(
      fileA,
      [0, 1, 2, 3, 4].map((n) => makeDoc('a', n)),
    );
    await writeDocsFile(
      fileB,
      [0, 1, 2, 3, 4].map((n) => makeDoc('b', n)),
    );
    const sig = await signals.start();
    const [a, b] = await Promise.all([
      startPeer({ store: fileA, signal: sig.url }),
      startPeer({ store: fileB, signal: sig.url }),
    ]);
    await Promise.all([waitPeerCount(a, 1), waitPeerCount(b, 1)]);
    await waitConverged([fileA, fileB], 10);
    await rmDocs(fileA, ['a-00000001', 'b-00000002']);
    await putDocs(fileB, [{ id: 'b-00000000', updated: true }]);
    const expected = await waitConverged([fileA, fileB], 8);
    expect(expected.get('b-00000000')).toEqual({ id: 'b-00000000', updated: true });

    const c = await startPeer({ store: fileC, signal: sig.url });
    await waitPeerCount(c, 2);
    const got = await waitConverged([fileA, fileB, fileC], 8);
    expect([...got.keys()].sort()).toEqual([...expected.keys()].sort());
    expect(got.has('a-00000001')).toBe(false);
    expect(got.has('b-00000002')).toBe(false);
  });

  it('a chain A-B-C converges through B when A and C never connect', async () => {
    const dir = await temp.make();
    const [fileA, fileB, fileC] = [join(dir, 'a.json'), join(dir, 'b.json'), join(dir, 'c.ndjson')];
    await writeDocsFile(
      fileA,
      [0, 1, 2].map((n) => makeDoc('a', n)),
    );
    await writeDocsFile(
      fileB,
      [0, 1, 2].map((n) => makeDoc('b', n)),
    );
    await writeDocsFile(
      fileC,
      [0, 1, 2].map((n) => makeDoc('c', n)),
    );
    const sig = await signals.start();
    const [a, b, c] = await Promise.all([
      startPeer({ store: fileA, signal: sig.url, topic: 'chain-left' }),
      startPeer({ store: fileB, signal: sig.url, topic: ['chain-left', 'chain-right'] }),
      startPeer({ store: fileC, signal: sig.url, topic: 'chain-right' }),
    ]);
    expect(b.events.find((e) => e.event === 'joined')!.topics).toEqual(['chain-left', 'chain-right']);
    await Promise.all([waitPeerCount(a, 1), waitPeerCount(b, 2), waitPeerCount(c, 1)]);

    await waitConverged([fileA, fileB, fileC], 9);
    // Changes from A reach C, and changes from C reach A, only ever through B.
    await putDocs(fileA, [
      { id: 'from-a', hop: 'a' },
      { ...makeDoc('c', 0), touchedBy: 'a' },
    ]);
    await waitConverged([fileA, fileB, fileC], 10);
    await putDocs(fileC, [{ id: 'from-c', hop: 'c' }]);
    await rmDocs(fileC, ['a-00000002']);
    const final = await waitConverged([fileA, fileB, fileC], 10);
    expect(final.get('from-c')).toEqual({ id: 'from-c', hop: 'c' });
    expect(final.get('c-00000000')).toMatchObject({ touchedBy: 'a' });
    expect((await readDocs(fileA)).has('a-00000002')).toBe(false);

    const [tokenA, tokenB, tokenC] = [a, b, c].map(tokenOf);
    expect(peerTokens(a)).toEqual(new Set([tokenB]));
    expect(peerTokens(c)).toEqual(new Set([tokenB]));
    expect(peerTokens(b)).toEqual(new Set([tokenA, tokenC]));
    const topicOf = (t: string): unknown =>
      b.events.find((e) => e.event === 'peer-connected' && e.peerToken === t)!.topic;
    expect([topicOf(tokenA!), topicOf(tokenC!)]).toEqual(['chain-left', 'chain-right']);
  });
});
