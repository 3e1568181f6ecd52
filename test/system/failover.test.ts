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
  it('moves to the next node when its node dies, keeps replicating through the switch, and meets newcomers there', async () => {
    const n1 = await startSignal(['--redis', redis.url, '--redis-ttl', '2']);
    const n2 = await startSignal(['--redis', redis.url, '--redis-ttl', '2']);
    await Promise.all([n1.proc.waitFor('redis-up'), n2.proc.waitFor('redis-up')]);
    const dir = await temp.make();
    const [fa, fb, fc] = ['a', 'b', 'c'].map((x) => join(dir, `${x}.ndjson`));
    await Promise.all([fa, fb, fc].map((f, i) => writeDocsFile(f!, [{ id: `seed-${i}` }])));
    const signalBoth = ['--signal', n2.url]; // n1 first (startPeer passes it), n2 as the fallback
    const a = await startPeer({ store: fa!, signal: n1.url, extra: signalBoth });
    const b = await startPeer({ store: fb!, signal: n1.url, extra: signalBoth });
    await a.waitFor('peer-connected', 20_000);
    await waitConverged([fa!, fb!], 2);

    n1.proc.kill('SIGKILL');
    // Both move to n2 and rejoin the topic there.
    const moved = (e: { event: string; url?: unknown }) =>
      e.event === 'signaling-connected' && String(e.url).startsWith(n2.url);
    await Promise.all([a.waitFor(moved, 20_000), b.waitFor(moved, 20_000)]);
    // A newcomer that only knows n2 meets both.
    const c = await startPeer({ store: fc!, signal: n2.url });
    await waitConverged([fa!, fb!, fc!], 3, 30_000);
    await putDocs(fa!, [{ id: 'after-failover' }]);
    await waitConverged([fa!, fb!, fc!], 4, 30_000);
    // Replication never stopped: the a-b link made through n1 stays up until both peers, now with new ids on n2,
    // have a second link, and the session then closes the older one (one link per replica). Nothing else ends.
    const tokenOf = new Map(a.events.filter((e) => e.event === 'peer-connected').map((e) => [e.peerId, e.peerToken]));
    for (const d of a.events.filter((e) => e.event === 'peer-disconnected')) {
      const token = tokenOf.get(d.peerId);
      expect([...tokenOf].filter(([id, t]) => t === token && id !== d.peerId).length).toBeGreaterThan(0);
    }
    expect(c.events.some((e) => e.event === 'peer-connected')).toBe(true);
  });
});
