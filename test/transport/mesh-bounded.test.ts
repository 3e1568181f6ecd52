import { afterEach, describe, expect, it } from 'vitest';
import { chooseNeighbours } from '../../src/transport/neighbours.js';
import { createMesh } from '../../src/transport/mesh.js';
import { MemorySignalHub } from '../../src/transport/memory-signal.js';
import { MeshWorld, type TestPeer } from './mesh-world.js';

const linked = (p: TestPeer): string[] => MeshWorld.linkedTo(p);
const expected = (world: MeshWorld, p: TestPeer, max: number): string[] =>
  p.client.peerId === undefined
    ? ['(not connected)']
    : [
        ...chooseNeighbours(
          p.client.peerId,
          world.peers.flatMap((q) => q.client.peerId ?? []),
          max,
        ),
      ].sort();
const settled = (world: MeshWorld, peers: TestPeer[], max: number): boolean =>
  peers.every((p) => JSON.stringify(linked(p)) === JSON.stringify(expected(world, p, max)));

describe('mesh with --max-peers', () => {
  let world: MeshWorld;
  afterEach(async () => {
    await world?.dispose();
  });

  it('links each peer to exactly its neighbours, and re-forms the ring when one leaves', async () => {
    world = new MeshWorld();
    const max = 2;
    for (let i = 0; i < 6; i++) world.add([], { maxPeers: max });
    await world.until('every peer linked to its ring neighbours', () =>
      world.peers.every((p) => JSON.stringify(linked(p)) === JSON.stringify(expected(world, p, max))),
    );

    const leaver = world.peers[2]!;
    leaver.client.disconnect();
    await leaver.mesh.close();
    world.peers.splice(2, 1);
    await world.until('the ring closed over the gap, links beyond the bound dropped', () =>
      world.peers.every((p) => JSON.stringify(linked(p)) === JSON.stringify(expected(world, p, max))),
    );
    for (const p of world.peers) expect(linked(p).length).toBeLessThanOrEqual(max);
  });

  it('declines offers beyond the bound at once; the full-mesh offerer backs off, doubling, one attempt per back-off', async () => {
    world = new MeshWorld();
    const max = 2;
    // Ids sort before the bounded peers' ids, so the full-mesh peer is the initiator towards all of them.
    const greedy = world.add(['aaaaaaaaaaaaaaaa'], { backoff: { initialMs: 50, maxMs: 400 } });
    const bounded = ['p', 'q', 'r', 's', 't'].map((c) => world.add([c.repeat(16)], { maxPeers: max }));
    await world.until('bounded peers settled on exactly their neighbours', () => settled(world, bounded, max));
    const keepGreedy = bounded
      .filter((p) => expected(world, p, max).includes(greedy.client.peerId!))
      .map((p) => p.client.peerId!);
    await world.until(
      'the greedy peer keeps only the links its neighbours accept',
      () => JSON.stringify(linked(greedy)) === JSON.stringify(keepGreedy.sort()),
    );
    // A remote that declines: the greedy peer's attempts to it end with the decline, not a connect timeout.
    const decliner = bounded.find((p) => !keepGreedy.includes(p.client.peerId!))!;
    const id = decliner.client.peerId!;
    const declinedAttempts = () =>
      greedy.events.filter((e) => e.event === 'failed' && e.remotePeerId === id && /declined/.test(e.reason)).length;
    await world.until('four declines from one remote', () => declinedAttempts() >= 4);
    const mine = greedy.events.filter((e) => 'remotePeerId' in e && e.remotePeerId === id);
    expect(mine.filter((e) => e.event === 'failed' && !/declined/.test(e.reason))).toEqual([]);
    expect(
      decliner.events.filter((e) => e.event === 'declined' && e.remotePeerId === greedy.client.peerId),
    ).not.toEqual([]);
    // No storm: after each decline exactly one retry, its delay doubling up to the cap, and one attempt per retry.
    const attempts = mine.filter((e) => e.event === 'attempt').length;
    const retries = mine.flatMap((e) => (e.event === 'retry' ? [e.delayMs] : []));
    expect(attempts).toBeLessThanOrEqual(retries.length + 1);
    const afterDeclines = retries.slice(-3);
    for (let i = 1; i < afterDeclines.length; i++)
      expect(afterDeclines[i]).toBe(Math.min(afterDeclines[i - 1]! * 2, 400));
  });

  it('holds the bound under concurrent joins: never more open links than --max-peers, at any event', async () => {
    world = new MeshWorld();
    const max = 3;
    const over: string[] = [];
    const peers: TestPeer[] = [];
    const check = (): void => {
      for (const p of peers) {
        const n = p.mesh.links().length;
        if (n > max) over.push(`${p.client.peerId}: ${n}`);
      }
    };
    // Four peers fill their bound as a full mesh; then four more join at once, and every old peer's ideal set moves
    // while it holds three links. Every event of every mesh re-checks every peer.
    for (let i = 0; i < 4; i++) {
      const p = world.add([], { maxPeers: max });
      p.mesh.events$.subscribe(check);
      peers.push(p);
    }
    await world.until('the first four fully meshed', () => peers.every((p) => linked(p).length === 3));
    for (let i = 0; i < 4; i++) {
      const p = world.add([], { maxPeers: max });
      p.mesh.events$.subscribe(check);
      peers.push(p);
    }
    await world.until('every peer linked to its ring neighbours', () =>
      peers.every((p) => {
        const view = chooseNeighbours(p.client.peerId ?? '', world.hub.memberIds(), 2);
        return [...view].every((r) => linked(p).includes(r));
      }),
    );
    check();
    expect(over).toEqual([]);
    for (const p of peers) expect(linked(p).length).toBeLessThanOrEqual(max);
  });

  it('rejects a bound below 2', () => {
    const hub = new MemorySignalHub();
    expect(() => createMesh({ signal: hub.createClient([]), maxPeers: 1 })).toThrow(/at least 2/);
  });
});
