import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { get } from 'node:http';
import { Harness, type TestClient } from '../signaling/server-helpers.js';
import { CliProcess } from '../helpers/spawn.js';
import type { SignalServer, SignalServerOptions } from '../../src/signaling/server.js';
import { RedisServer } from './redis.js';

/** Short expiry so a dead node's members vanish within seconds. */
const TTL_MS = 1_500;

function http(url: string, path: string): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    get({ host: u.hostname, port: u.port, path }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

/** Polls /healthz until `pred` holds (the node's Redis state changes asynchronously). */
async function healthUntil(
  url: string,
  pred: (h: { status: number; json: Record<string, any> }) => boolean,
  timeoutMs = 15_000,
): Promise<Record<string, any>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await http(url, '/healthz');
    const h = { status: r.status, json: JSON.parse(r.body) as Record<string, any> };
    if (pred(h)) return h.json;
    if (Date.now() > deadline) throw new Error(`health never matched; last: ${r.status} ${r.body}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const sorted = (ids: string[]): string[] => [...ids].sort();
const joinedSet = (c: TestClient, ids: string[], timeoutMs?: number) =>
  c.waitFor(
    (m) => m.type === 'joined' && JSON.stringify(sorted(m.otherPeerIds as string[])) === JSON.stringify(sorted(ids)),
    timeoutMs,
  );

async function join(h: Harness, url: string, room: string): Promise<TestClient> {
  const c = await h.client(url);
  await c.init();
  c.send({ type: 'join', room });
  return c;
}

function signal(from: TestClient, to: TestClient, room: string, extra = 'x'): Record<string, unknown> {
  const frame = {
    type: 'signal',
    senderPeerId: from.peerId,
    receiverPeerId: to.peerId,
    room,
    data: { type: 'offer', sdp: 'v=0 ' + extra },
    connectionId: 'abcdefghij',
    extraField: [1, 2],
  };
  from.send(frame);
  return frame;
}

describe('p2psync signal --redis: rooms shared between nodes', () => {
  let redis: RedisServer;
  const h = new Harness();
  const node = (extra: SignalServerOptions = {}): Promise<SignalServer> =>
    h.server({ redis: { url: redis.url, memberTtlMs: TTL_MS, refreshMs: 300 }, ...extra });

  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterEach(async () => {
    await h.cleanup();
    await CliProcess.killAll();
  });
  afterAll(async () => {
    await redis?.dispose();
  });

  it('peers on two nodes see one member list and relay signals verbatim, both ways', async () => {
    const n1 = await node();
    const n2 = await node();
    await healthUntil(n1.url, (x) => x.json.redis?.status === 'ok');
    await healthUntil(n2.url, (x) => x.json.redis?.status === 'ok');
    const a = await join(h, n1.url, 'shared-room');
    await joinedSet(a, [a.peerId]);
    const b = await join(h, n2.url, 'shared-room');
    await joinedSet(b, [a.peerId, b.peerId]);
    await joinedSet(a, [a.peerId, b.peerId]);
    const c = await join(h, n2.url, 'other-room');
    await joinedSet(c, [c.peerId]);

    const sent = signal(a, b, 'shared-room');
    const got = await b.waitFor((m) => m.type === 'signal');
    expect(got).toEqual(sent);
    expect(b.rawFrames).toContain(JSON.stringify(sent));
    signal(b, a, 'shared-room', 'answer');
    expect((await a.waitFor((m) => m.type === 'signal')).senderPeerId).toBe(b.peerId);

    // c shares no room with a: its signal is dropped, as on one node. Barrier: a later frame from b arrives.
    signal(c, a, 'other-room', 'intruder');
    signal(b, a, 'shared-room', 'barrier');
    const next = await a.waitFor((m) => m.type === 'signal');
    expect((next.data as { sdp: string }).sdp).toBe('v=0 barrier');

    // b leaves: a hears it through Redis at once (not after the expiry).
    b.ws.close();
    await joinedSet(a, [a.peerId], 1_000);

    const health = await healthUntil(n1.url, (x) => x.status === 200);
    expect(health).toMatchObject({ status: 'ok', redis: { status: 'ok' } });
    const metrics = await http(n1.url, '/metrics');
    expect(metrics.body).toMatch(/^p2psync_signal_redis_up 1$/m);
    expect(metrics.body).toMatch(/^p2psync_signal_cluster_relayed_total\{direction="out"\} 1$/m);
    expect(metrics.body).toMatch(/^p2psync_signal_cluster_relayed_total\{direction="in"\} 2$/m);
  });

  it('enforces the room limit over the whole room, and the token per node', async () => {
    const token = 'cluster-token-0123456789';
    const n1 = await node({ token, limits: { maxPeersPerRoom: 2 } });
    const n2 = await node({ token, limits: { maxPeersPerRoom: 2 } });
    await healthUntil(n2.url, (x) => x.json.redis?.status === 'ok');
    await expect(h.client(n2.url)).rejects.toThrow(/401/);
    const a = await join(h, `${n1.url}?token=${token}`, 'limited-room');
    await joinedSet(a, [a.peerId]);
    const b = await join(h, `${n2.url}?token=${token}`, 'limited-room');
    await joinedSet(b, [a.peerId, b.peerId]);
    await joinedSet(a, [a.peerId, b.peerId]);
    const c = await join(h, `${n2.url}?token=${token}`, 'limited-room');
    expect((await c.closedWithin()).code).toBe(4006);
  });

  it('a node killed mid-session leaves no ghost after its expiry', async () => {
    const n1 = await node();
    const cli = new CliProcess([
      'signal',
      '--port',
      '0',
      '--json',
      '--redis',
      redis.url,
      '--redis-ttl',
      String(TTL_MS / 1000),
    ]);
    const listening = await cli.waitFor('listening');
    expect(listening.redis).toBe(redis.url);
    await cli.waitFor('redis-up');
    const a = await join(h, n1.url, 'ghost-room');
    const b = await join(h, String(listening.url), 'ghost-room');
    await joinedSet(a, [a.peerId, b.peerId]);
    const killedAt = Date.now();
    cli.kill('SIGKILL');
    // No goodbye: node 1 only learns from the expiry of the dead node's keys.
    await joinedSet(a, [a.peerId], TTL_MS + 5_000);
    expect(Date.now() - killedAt).toBeGreaterThan(TTL_MS / 2);
  });

  it('Redis down: unhealthy, local rooms keep working, no crash; Redis back: rooms shared again', async () => {
    const n1 = await node();
    const n2 = await node();
    await healthUntil(n1.url, (x) => x.json.redis?.status === 'ok');
    await healthUntil(n2.url, (x) => x.json.redis?.status === 'ok');
    const a = await join(h, n1.url, 'flaky-room');
    const b = await join(h, n2.url, 'flaky-room');
    await joinedSet(a, [a.peerId, b.peerId]);

    await redis.stop();
    const down = await healthUntil(n1.url, (x) => x.status === 503);
    expect(down).toMatchObject({ status: 'unhealthy', redis: { status: 'down' } });
    // Local rooms keep working on each node.
    const c = await join(h, n1.url, 'flaky-room');
    await c.waitFor((m) => m.type === 'joined' && (m.otherPeerIds as string[]).includes(a.peerId));
    signal(c, a, 'flaky-room', 'local');
    expect(((await a.waitFor((m) => m.type === 'signal')).data as { sdp: string }).sdp).toBe('v=0 local');
    // Past the expiry without Redis, the other node's members are no longer offered.
    await joinedSet(a, [a.peerId, c.peerId], TTL_MS + 5_000);

    await redis.restart();
    await healthUntil(n1.url, (x) => x.status === 200 && x.json.redis?.status === 'ok');
    await healthUntil(n2.url, (x) => x.status === 200 && x.json.redis?.status === 'ok');
    // Both nodes rewrite their memberships into the empty Redis and re-read the room.
    await joinedSet(a, [a.peerId, b.peerId, c.peerId]);
    await joinedSet(b, [a.peerId, b.peerId, c.peerId]);
    signal(b, c, 'flaky-room', 'across');
    expect(
      ((await c.waitFor((m) => m.type === 'signal' && m.senderPeerId === b.peerId)).data as { sdp: string }).sdp,
    ).toBe('v=0 across');
  });
});
