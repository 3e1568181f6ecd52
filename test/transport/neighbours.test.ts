import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { chooseNeighbours, ringOffsets, ringOrder } from '../../src/transport/neighbours.js';

const peerId = fc.stringMatching(/^[a-z]{16}$/);

/** The overlay every member computes from the same member list: adjacency sets. */
function overlay(members: string[], maxPeers: number): Map<string, Set<string>> {
  return new Map(members.map((m) => [m, chooseNeighbours(m, members, maxPeers)]));
}

function connected(graph: Map<string, Set<string>>): boolean {
  const first = graph.keys().next();
  if (first.done) return true;
  const seen = new Set([first.value]);
  const todo = [first.value];
  while (todo.length > 0)
    for (const next of graph.get(todo.pop()!)!) if (!seen.has(next)) (seen.add(next), todo.push(next));
  return seen.size === graph.size;
}

/** Checks the three promises: symmetric, within the bound, connected. */
function checkOverlay(members: string[], maxPeers: number): void {
  const g = overlay(members, maxPeers);
  for (const [a, ns] of g) {
    expect(ns.has(a)).toBe(false);
    expect(ns.size).toBeLessThanOrEqual(maxPeers);
    for (const b of ns) expect(g.get(b)!.has(a)).toBe(true);
  }
  expect(connected(g)).toBe(true);
}

describe('neighbour choice for --max-peers', () => {
  it('is a full mesh while the room fits the bound', () => {
    expect(chooseNeighbours('a', ['a', 'b', 'c', 'd'], 3)).toEqual(new Set(['b', 'c', 'd']));
    expect(chooseNeighbours('a', [], 3)).toEqual(new Set());
  });

  it('uses the ring, chords and the diameter within the bound', () => {
    expect(ringOffsets(12, 2)).toEqual([1]);
    expect(ringOffsets(12, 3)).toEqual([1, 6]); // ring + diameter: 3 links
    expect(ringOffsets(13, 3)).toEqual([1]); // odd n: a diameter would cost 2
    expect(ringOffsets(50, 4)).toEqual([1, 5]);
    expect(ringOffsets(50, 5)).toEqual([1, 5, 25]);
  });

  it('rejects a bound below 2', () => {
    expect(() => chooseNeighbours('a', ['b', 'c', 'd'], 1)).toThrow(RangeError);
  });

  it('symmetric, bounded and connected for any member set and bound', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(peerId, { minLength: 0, maxLength: 80 }),
        fc.integer({ min: 2, max: 9 }),
        (members, maxPeers) => {
          checkOverlay(members, maxPeers);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('stays connected through random join orders and departures, and does not depend on the order', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(peerId, { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 2, max: 6 }),
        fc.array(fc.boolean(), { minLength: 40, maxLength: 40 }),
        (joinOrder, maxPeers, leaves) => {
          const room: string[] = [];
          joinOrder.forEach((id, step) => {
            room.push(id);
            // Now and then a member departs.
            if (leaves[step] && room.length > 2) room.splice(step % room.length, 1);
            checkOverlay(room, maxPeers);
            const own = room[0]!;
            const reversed = [...room].reverse();
            expect(chooseNeighbours(own, reversed, maxPeers)).toEqual(chooseNeighbours(own, room, maxPeers));
          });
        },
      ),
      { numRuns: 200 },
    );
  });

  it('orders the ring by hash, not by id or join order', () => {
    const ids = ['aaaaaaaaaaaaaaaa', 'bbbbbbbbbbbbbbbb', 'cccccccccccccccc', 'dddddddddddddddd'];
    expect(ringOrder(ids)).toEqual(ringOrder([...ids].reverse()));
    expect(new Set(ringOrder([...ids, ids[0]!]))).toEqual(new Set(ids));
  });
});
