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

  it('declines offers beyond the bound from a full-mesh peer (no answer, no link)', async () => {
    world = new MeshWorld();
    const max = 2;
    // Ids sort before the bounded peers' ids, so the full-mesh peer is the initiator towards all of them.
    const greedy = world.add(['aaaaaaaaaaaaaaaa'], {});
    const bounded = ['p', 'q', 'r', 's', 't'].map((c) => world.add([c.repeat(16)], { maxPeers: max }));
    // The greedy peer is a ring member too: its two ring neighbours keep their links to it, the others decline.
    await world.until('bounded peers settled on exactly their neighbours', () => settled(world, bounded, max));
    await world.until('some offer declined', () =>
      bounded.some((p) =>
        p.events.some((e) => e.event === 'signal-dropped' && e.reason === 'declined: at --max-peers'),
      ),
    );
    const keepGreedy = bounded
      .filter((p) => expected(world, p, max).includes(greedy.client.peerId!))
      .map((p) => p.client.peerId!);
    await world.until(
      'the greedy peer keeps only the links its neighbours accept',
      () => JSON.stringify(linked(greedy)) === JSON.stringify(keepGreedy.sort()),
    );
  });

  it('rejects a bound below 2', () => {
    const hub = new MemorySignalHub();
    expect(() => createMesh({ signal: hub.createClient([]), maxPeers: 1 })).toThrow(/at least 2/);
  });
});
