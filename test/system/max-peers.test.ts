import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { e2eFixture, makeDoc, putDocs, startPeer, waitConverged, writeDocsFile } from '../helpers/e2e.js';
import type { CliProcess } from '../helpers/spawn.js';

const { temp, signals } = e2eFixture();

/** Most links one peer had open at once, from its own peer-connected / peer-disconnected events. */
function maxConcurrentLinks(proc: CliProcess): number {
  const open = new Set<string>();
  let max = 0;
  for (const e of proc.events) {
    if (e.event === 'peer-connected') open.add(`${String(e.topic)}/${String(e.peerId)}`);
    if (e.event === 'peer-disconnected') open.delete(`${String(e.topic)}/${String(e.peerId)}`);
    max = Math.max(max, open.size);
  }
  return max;
}

describe('join --max-peers: a bounded overlay converges', () => {
  it('12 peers at --max-peers 3 converge, none above 3 links, changes hop through neighbours', async () => {
    const n = 12;
    const dir = await temp.make();
    const files = Array.from({ length: n }, (_, i) => join(dir, `p${i}.ndjson`));
    await Promise.all(files.map((f, i) => writeDocsFile(f, [makeDoc(`p${i}`, 0)])));
    const sig = await signals.start();
    const peers: CliProcess[] = [];
    // One after the other: every join reshapes the ring a little.
    for (const store of files) peers.push(await startPeer({ store, signal: sig.url, extra: ['--max-peers', '3'] }));
    await waitConverged(files, n, 90_000);

    // A live write on one peer reaches all eleven others, most of them not linked to it directly.
    await putDocs(files[5]!, [{ id: 'live-write', from: 5 }]);
    const final = await waitConverged(files, n + 1, 60_000);
    expect(final.get('live-write')).toEqual({ id: 'live-write', from: 5 });

    for (const p of peers) expect(maxConcurrentLinks(p)).toBeLessThanOrEqual(3);
    const writerLinks = new Set(peers[5]!.events.filter((e) => e.event === 'peer-connected').map((e) => e.peerToken));
    expect(writerLinks.size).toBeLessThan(n - 1);
  });
});
