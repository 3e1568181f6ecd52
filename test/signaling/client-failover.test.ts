import { afterEach, describe, expect, it } from 'vitest';
import { createSignalingClient, type SignalingClient } from '../../src/signaling/client.js';
import { startSignalServer, type SignalServer } from '../../src/signaling/server.js';
import type { SyncEvent } from '../../src/core/events.js';

describe('signaling client failover between several URLs', () => {
  const servers: SignalServer[] = [];
  const clients: SignalingClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await Promise.all(servers.splice(0).map((s) => s.close({ timeoutMs: 500 })));
  });

  it('moves to the next URL when its server goes away, and rejoins the topic there', async () => {
    const [s1, s2] = [await startSignalServer({ port: 0 }), await startSignalServer({ port: 0 })];
    servers.push(s1, s2);
    const events: SyncEvent[] = [];
    const c = createSignalingClient({
      url: s1.url,
      fallbackUrls: [`${s2.url}?token=hidden-secret`],
      topic: 'failover-topic',
      emit: (e) => events.push(e),
      reconnect: { initialMs: 50 },
    });
    const other = createSignalingClient({ url: s2.url, topic: 'failover-topic' });
    clients.push(c, other);
    await c.waitConnected(5_000);
    expect(c.url).toBe(s1.url);
    await other.waitConnected(5_000);
    await s1.close({ timeoutMs: 200 });
    // The next connection is on s2, in the same topic as `other`.
    const seen = new Promise<void>((resolve) => c.onPeers((ids) => ids.includes(other.peerId!) && resolve()));
    await seen;
    expect(c.url).toBe(`${s2.url}?token=***`);
    const connected = events.filter((e) => e.event === 'signaling-connected').map((e) => (e as { url: string }).url);
    expect(connected).toEqual([s1.url, `${s2.url}?token=***`]);
    // The same peer id on both servers (a claim, docs/PROTOCOL.md §1.8), so peers keep their links to it.
    const ids = events.filter((e) => e.event === 'signaling-connected').map((e) => (e as { peerId: string }).peerId);
    expect(ids).toHaveLength(2);
    expect(ids[1]).toBe(ids[0]);
    expect(other.peers).toContain(ids[0]);
    expect(JSON.stringify(events)).not.toContain('hidden-secret');
  });

  it('skips a dead first URL at start', async () => {
    const s2 = await startSignalServer({ port: 0 });
    servers.push(s2);
    const c = createSignalingClient({
      url: 'ws://127.0.0.1:1/',
      fallbackUrls: [s2.url],
      topic: 'failover-topic',
      reconnect: { initialMs: 50 },
    });
    clients.push(c);
    await c.waitConnected(5_000);
    expect(c.url).toBe(s2.url);
  });

  it('validates every URL up front', () => {
    expect(() =>
      createSignalingClient({ url: 'ws://127.0.0.1:1/', fallbackUrls: ['http://x/'], topic: 'failover-topic' }),
    ).toThrow(/ws:\/\/ or wss:\/\//);
  });
});
