import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { e2eFixture, putDocs, startPeer, startSignal, waitConverged, writeDocsFile } from '../helpers/e2e.js';
import { RedisServer } from './redis.js';

let redis: RedisServer;
const { temp } = e2eFixture();
beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(async () => {
  await redis?.dispose();
});

describe('join with several --signal nodes of one cluster', () => {
  it('moves to the next node when its node dies, keeps its open links (same ids, no re-link), and meets newcomers there', async () => {
    const n1 = await startSignal(['--redis', redis.url, '--redis-ttl', '2']);
    const n2 = await startSignal(['--redis', redis.url, '--redis-ttl', '2']);
    await Promise.all([n1.proc.waitFor('redis-up'), n2.proc.waitFor('redis-up')]);
    const dir = await temp.make();
    const [fa, fb, fc] = ['a', 'b', 'c'].map((x) => join(dir, `${x}.ndjson`));
    await Promise.all([fa, fb, fc].map((f, i) => writeDocsFile(f!, [{ id: `seed-${i}` }])));
    const signalBoth = ['--signal', n2.url]; // n1 first (startPeer passes it), n2 as the fallback
    const a = await startPeer({ store: fa!, signal: n1.url, extra: signalBoth });
    const b = await startPeer({ store: fb!, signal: n1.url, extra: signalBoth });
    await Promise.all([a.waitFor('peer-connected', 20_000), b.waitFor('peer-connected', 20_000)]);
    await waitConverged([fa!, fb!], 2);
    const idOf = (p: typeof a) => String(p.events.find((e) => e.event === 'signaling-connected')!.peerId);

    n1.proc.kill('SIGKILL');
    // Both move to n2 and rejoin the topic there, under the ids they had on n1.
    const moved = (e: { event: string; url?: unknown }) =>
      e.event === 'signaling-connected' && String(e.url).startsWith(n2.url);
    const [ma, mb] = await Promise.all([a.waitFor(moved, 20_000), b.waitFor(moved, 20_000)]);
    expect([ma.peerId, mb.peerId]).toEqual([idOf(a), idOf(b)]);
    // A newcomer that only knows n2 meets both: its member list on n2 holds a and b, and a and b hear of it
    // only after they rejoined there (so each has seen the other in a list from n2 by then).
    const c = await startPeer({ store: fc!, signal: n2.url });
    await c.waitFor('signaling-connected');
    const isC = (e: { event: string; [k: string]: unknown }) => e.peerId === idOf(c);
    await Promise.all([a.waitFor((e) => e.event === 'peer-connected' && isC(e), 30_000)]);
    await Promise.all([b.waitFor((e) => e.event === 'peer-connected' && isC(e), 30_000)]);
    await waitConverged([fa!, fb!, fc!], 3, 30_000);
    await putDocs(fa!, [{ id: 'after-failover' }]);
    await waitConverged([fa!, fb!, fc!], 4, 30_000);
    // The a-b link made through n1 is the same link: one peer-connected each way, and nothing disconnected.
    for (const [p, other] of [
      [a, b],
      [b, a],
    ] as const) {
      const connected = p.events.filter((e) => e.event === 'peer-connected').map((e) => e.peerId);
      expect(connected.filter((id) => id === idOf(other))).toHaveLength(1);
      expect(connected).toHaveLength(2); // the other one, and c
      expect(p.events.filter((e) => e.event === 'peer-disconnected')).toEqual([]);
    }
    expect(
      c.events
        .filter((e) => e.event === 'peer-connected')
        .map((e) => e.peerId)
        .sort(),
    ).toEqual([idOf(a), idOf(b)].sort());
  });
});
