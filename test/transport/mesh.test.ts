import { afterEach, describe, expect, it } from 'vitest';
import type { PeerLink } from '../../src/core/link.js';
import { createMesh, type MeshEvent } from '../../src/transport/mesh.js';
import { WebRTCRuntime } from '../../src/transport/wrtc.js';
import { LOOPBACK } from './helpers.js';
import { MeshWorld, type TestPeer } from './mesh-world.js';

const ids = (peer: TestPeer): string[] => MeshWorld.linkedTo(peer);
const others = (world: MeshWorld, peer: TestPeer): string[] =>
  world.peers
    .filter((p) => p !== peer && p.client.peerId)
    .map((p) => p.client.peerId!)
    .sort();
const ofType = <T extends MeshEvent['event']>(peer: TestPeer, event: T): Array<Extract<MeshEvent, { event: T }>> =>
  peer.events.filter((e): e is Extract<MeshEvent, { event: T }> => e.event === event);

/** Sends one frame from every peer over each of its links and waits until every one arrived. */
async function exchange(world: MeshWorld, tag: string): Promise<void> {
  for (const p of world.peers) for (const link of p.mesh.links()) link.send(`${tag}:${p.client.peerId}`);
  await world.until(`frames tagged ${tag} on every link`, () =>
    world.peers.every((p) =>
      p.mesh.links().every((l) => (p.received.get(l.remotePeerId) ?? []).some((f) => f.startsWith(`${tag}:`))),
    ),
  );
}

describe('WebRTC full mesh on a memory signaling hub', () => {
  let world: MeshWorld;
  afterEach(async () => {
    await world?.dispose();
  });

  it('connects every pair of four peers exactly once, with one initiator per pair', async () => {
    world = new MeshWorld();
    const peers = [world.add(), world.add(), world.add(), world.add()];
    await world.until('a full mesh of 4', () => peers.every((p) => ids(p).length === 3));
    for (const p of peers) expect(ids(p)).toEqual(others(world, p));
    await exchange(world, 'hello');
    for (const p of peers) {
      expect(p.announced.map((l) => l.remotePeerId).sort()).toEqual(others(world, p));
      const own = p.client.peerId!;
      // the initiator rule: offers only go to larger ids
      for (const e of ofType(p, 'connected')) expect(e.initiator).toBe(e.remotePeerId > own);
    }
  });

  it('closes the links of a peer that leaves and connects a peer that (re)joins', async () => {
    world = new MeshWorld();
    const [a, b, c] = [world.add(), world.add(), world.add()];
    await world.until('a full mesh of 3', () => [a, b, c].every((p) => ids(p).length === 2));
    const leaver = c.client.peerId!;
    c.client.disconnect();
    await c.mesh.close();
    world.peers.splice(world.peers.indexOf(c), 1);
    await world.until('links to the leaver closed', () => [a, b].every((p) => !ids(p).includes(leaver)));
    expect(ids(a)).toEqual([b.client.peerId]);
    expect(c.mesh.links()).toEqual([]);
    const d = world.add();
    await world.until('the rejoined peer connected', () => [a, b, d].every((p) => ids(p).length === 2));
    expect(ids(d)).toEqual(others(world, d));
    await exchange(world, 'again');
  });

  it('starts from the room the signal channel already knows', async () => {
    world = new MeshWorld();
    const a = world.add(['aaaaaaaaaaaa']);
    const lateClient = world.hub.createClient(['bbbbbbbbbbbb']);
    lateClient.onPeers(() => world.notify());
    lateClient.connect();
    await world.until('b to see a', () => lateClient.peers.length === 1);
    const lateMesh = createMesh({ signal: lateClient, ice: LOOPBACK });
    try {
      // b is the responder: a offers as soon as it sees b, b's mesh must answer although created late
      await world.until('a linked to b', () => ids(a).length === 1);
      expect(ids(a)).toEqual(['bbbbbbbbbbbb']);
    } finally {
      lateClient.disconnect();
      await lateMesh.close();
    }
  });

  it('shows its first attempt to an events$ subscriber attached after createMesh, and completes events$ on close', async () => {
    world = new MeshWorld();
    world.add(['bbbbbbbbbbbb']);
    const lateClient = world.hub.createClient(['aaaaaaaaaaaa']);
    lateClient.onPeers(() => world.notify());
    lateClient.connect();
    await world.until('a to see b', () => lateClient.peers.length === 1);
    // a is the initiator: its first offer starts from the room the channel knows when the mesh is created
    const lateMesh = createMesh({ signal: lateClient, ice: LOOPBACK });
    const seen: Array<MeshEvent['event']> = [];
    let completed = false;
    lateMesh.events$.subscribe({ next: (e) => void seen.push(e.event), complete: () => (completed = true) });
    const detached: PeerLink[] = [];
    lateMesh.onLink((link) => detached.push(link))();
    const linked: PeerLink[] = [];
    lateMesh.onLink((link) => (linked.push(link), world.notify()));
    try {
      await world.until('a linked to b', () => linked.length === 1);
      expect(seen[0]).toBe('attempt');
      expect(seen).toContain('connected');
      expect(detached).toEqual([]);
      expect(completed).toBe(false);
    } finally {
      lateClient.disconnect();
      await lateMesh.close();
    }
    expect(completed).toBe(true);
  });

  it('keeps connected links through a signaling outage and converges after it, replacing restarted pairs', async () => {
    world = new MeshWorld();
    const p1 = world.add(['bbbb']);
    const p2 = world.add(['dddd', 'cccc']);
    const p3 = world.add(['ffff']);
    await world.until('a full mesh of 3', () => [p1, p2, p3].every((p) => ids(p).length === 2));
    p2.client.disconnect();
    await world.until('the others to see p2 leave', () => p1.client.peers.length === 1 && p3.client.peers.length === 1);
    // links survive while p2 has no signaling, and still carry frames
    expect(ids(p1)).toEqual(['dddd', 'ffff']);
    expect(ids(p2)).toEqual(['bbbb', 'ffff']);
    expect(ids(p3)).toEqual(['bbbb', 'dddd']);
    await exchange(world, 'outage');
    // p2 comes back as "cccc": bbbb < cccc, so p1 offers to it and p2 replaces its old link to p1;
    // cccc < ffff, so p2 is the initiator towards p3 and keeps the link it has (p3 keeps it as "dddd").
    p2.client.connect();
    await world.until(
      'the mesh to settle after the outage',
      () => ids(p1).join() === 'cccc,ffff' && ids(p2).join() === 'bbbb,ffff' && ids(p3).join() === 'bbbb,dddd',
    );
    await exchange(world, 'after');
    expect(ofType(p2, 'disconnected')).toEqual([
      expect.objectContaining({ remotePeerId: 'bbbb', reason: 'replaced by a new offer' }),
    ]);
    expect(ofType(p3, 'disconnected')).toEqual([]);
  });

  it('queues candidates that reach the responder before the offer', async () => {
    world = new MeshWorld();
    // Make the first offer arrive after at least one candidate of its attempt: simple-peer over the polyfill
    // emits them in either order, so hold the offer back if no candidate has gone out yet.
    type Relayed = { from: string; to: string; data: unknown; connectionId: string | undefined };
    let held: Relayed | undefined;
    let offerId: string | undefined;
    let released = false;
    const candidatesSent = new Set<string | undefined>();
    world.hub.filter = (m) => {
      const type = (m.data as { type?: string }).type;
      if (type === 'candidate') {
        candidatesSent.add(m.connectionId);
        if (held && !released && held.connectionId === m.connectionId) {
          released = true;
          const offer = held;
          // relayed from a microtask, i.e. after this candidate's delivery was queued
          queueMicrotask(() => world.hub.relay(offer.from, offer.to, offer.data, offer.connectionId));
        }
      } else if (type === 'offer' && !released && !held) {
        offerId = m.connectionId;
        if (candidatesSent.has(m.connectionId)) released = true;
        else {
          held = m;
          return 'drop';
        }
      }
      return 'deliver';
    };
    const a = world.add(['aaaa']);
    const b = world.add(['bbbb']);
    await world.until('a and b linked', () => ids(a).length === 1 && ids(b).length === 1);
    expect(released).toBe(true);
    const early = ofType(b, 'early-candidates');
    expect(early.length).toBe(1);
    expect(early[0]!.count).toBeGreaterThanOrEqual(1);
    expect(early[0]!.connectionId).toBe(offerId);
    expect(ofType(b, 'signal-dropped')).toEqual([]);
    expect(ofType(a, 'failed')).toEqual([]);
  });

  it('retries a failed attempt (first answer lost) with a fresh connectionId, backoff reset on connect', async () => {
    world = new MeshWorld();
    let answersDropped = 0;
    world.hub.filter = (m) => {
      if ((m.data as { type?: string }).type === 'answer' && answersDropped === 0) {
        answersDropped++;
        return 'drop';
      }
      return 'deliver';
    };
    const a = world.add(['aaaa'], { connectTimeoutMs: 1500 });
    const b = world.add(['bbbb'], { connectTimeoutMs: 1500 });
    await world.until('a and b linked after a retry', () => ids(a).length === 1 && ids(b).length === 1);
    expect(answersDropped).toBe(1);
    const attempts = ofType(a, 'attempt');
    expect(attempts.length).toBe(2);
    expect(attempts.every((e) => e.initiator && /^[a-z]{10}$/.test(e.connectionId ?? ''))).toBe(true);
    expect(attempts[0]!.connectionId).not.toBe(attempts[1]!.connectionId);
    expect(ofType(a, 'failed')[0]!.reason).toMatch(/timeout/);
    expect(ofType(a, 'retry').map((e) => e.delayMs)).toEqual([500]);
    expect(ofType(a, 'connected')[0]!.connectionId).toBe(attempts[1]!.connectionId);
    expect(ofType(b, 'attempt').every((e) => !e.initiator)).toBe(true);
    // the responder never retries; the initiator reconnects a dropped link, after the reset first delay
    b.mesh.links()[0]!.close();
    await world.until(
      'the initiator reconnected',
      () => ofType(a, 'connected').length === 2 && ids(a).length === 1 && ids(b).length === 1,
    );
    expect(ofType(a, 'retry').map((e) => e.delayMs)).toEqual([500, 500]);
    expect(ofType(b, 'retry')).toEqual([]);
  });

  it('drops an unconnected attempt when its remote leaves the room, without retrying', async () => {
    world = new MeshWorld();
    world.hub.filter = (m) => ((m.data as { type?: string }).type === 'answer' ? 'drop' : 'deliver');
    const a = world.add(['aaaa']);
    const b = world.add(['bbbb']);
    await world.until('a to offer to b', () => ofType(a, 'attempt').length === 1);
    b.client.disconnect();
    await world.until('the attempt to end', () => ofType(a, 'failed').length === 1);
    expect(ofType(a, 'failed')[0]!.reason).toMatch(/left the room/);
    expect(ofType(a, 'retry')).toEqual([]);
    expect(a.mesh.links()).toEqual([]);
  });

  it('forgets pending attempts when its own peer id changes, even without a disconnected status', async () => {
    world = new MeshWorld();
    let dropAnswers = true;
    world.hub.filter = (m) => (dropAnswers && (m.data as { type?: string }).type === 'answer' ? 'drop' : 'deliver');
    const a = world.add(['aaaa', 'aaab']);
    const b = world.add(['bbbb']);
    await world.until('a to offer to b', () => ofType(a, 'attempt').length === 1);
    dropAnswers = false;
    // a reconnect so quick that the channel is on its new id before any status reaches the mesh
    a.client.disconnect();
    a.client.connect();
    await world.until('a and b linked under the new id', () => ids(a).length === 1 && ids(b).length === 1);
    expect(ofType(a, 'failed')[0]!.reason).toBe('signaling lost');
    expect(ids(b)).toEqual(['aaab']);
  });

  it('ignores hostile or malformed signals', async () => {
    world = new MeshWorld();
    const a = world.add(['aaaa']);
    const b = world.add(['bbbb']);
    await world.until('a and b linked', () => ids(a).length === 1 && ids(b).length === 1);
    const raw = world.hub.createClient(['0000']); // smallest id: a and b are its responders
    raw.connect();
    const garbage = [
      null,
      'offer',
      { type: 'offer' },
      { type: 'answer', sdp: 'v=0' },
      { type: 'candidate' },
      { type: 'renegotiate', renegotiate: true },
    ];
    for (const data of garbage) {
      raw.sendSignal('aaaa', data, 'zzzzzzzzzz');
    }
    raw.sendSignal('aaaa', { type: 'answer', sdp: 'v=0' }, 'x'.repeat(1000));
    await world.until('the garbage to be dropped', () => ofType(a, 'signal-dropped').length === 7);
    // a well-formed offer with a bogus SDP makes one failed responder attempt, nothing more
    raw.sendSignal('aaaa', { type: 'offer', sdp: 'v=0\r\nthis is not sdp\r\n' }, 'yyyyyyyyyy');
    await world.until('the bogus offer to fail', () => ofType(a, 'failed').some((e) => e.remotePeerId === '0000'));
    expect(ofType(a, 'retry')).toEqual([]);
    expect(ids(a)).toEqual(['bbbb']);
    raw.disconnect();
    await exchange(world, 'still-fine');
  });

  it('close() destroys every link, resolves, is idempotent, and releases the runtime', async () => {
    world = new MeshWorld();
    const runtime = new WebRTCRuntime({ cleanupWhenIdle: false });
    const a = world.add([], { runtime });
    const b = world.add([], { runtime });
    expect(runtime.activeUsers).toBe(2);
    await world.until('a and b linked', () => ids(a).length === 1 && ids(b).length === 1);
    const bLink = b.mesh.links()[0]!;
    const closing = a.mesh.close();
    expect(a.mesh.close()).toBe(closing);
    await closing;
    expect(a.mesh.links()).toEqual([]);
    expect(runtime.activeUsers).toBe(1);
    await world.until('the remote side to close', () => !bLink.open);
    await b.mesh.close();
    expect(runtime.activeUsers).toBe(0);
  });
});
