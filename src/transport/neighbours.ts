/*
 * Neighbour choice for `join --max-peers N`: which members of a room a peer links to when a full mesh is too
 * big. Pure functions of the member list, so every peer that sees the same `joined` list computes the same
 * overlay, whatever order the members joined in.
 *
 * The overlay is a ring plus chords over the members sorted by a hash of their peer ids:
 * - offset 1 (the ring) links each member to its successor and predecessor, so the overlay is connected for
 *   any member set (a cycle through everyone) and one departure only reconnects its two neighbours;
 * - more offsets (chords) spread geometrically over the ring, about n^(j/m), cut the number of hops a change
 *   needs from n/2 to about m * n^(1/m) / 2;
 * - an odd bound adds the "diameter" chord (offset n/2) when the member count is even: it is its own reverse,
 *   so it costs each member exactly one link.
 * Every offset k links a member to the ones k ahead and k behind, so the relation is symmetric (A chooses B
 * exactly when B chooses A) and each member has at most 2 links per offset: never more than the bound.
 */
import { createHash } from 'node:crypto';

/** The smallest useful bound: a ring needs two links per member. */
export const MIN_MAX_PEERS = 2;

/** Position of a peer on the ring: the first 48 bits of SHA-256 of its id (ids are server-assigned). */
export function ringPosition(peerId: string): number {
  return createHash('sha256').update(peerId, 'utf8').digest().readUIntBE(0, 6);
}

/** The members sorted by ring position (ties, which SHA-256 makes theoretical, by id). */
export function ringOrder(peerIds: Iterable<string>): string[] {
  const unique = [...new Set(peerIds)].map((id) => [ringPosition(id), id] as const);
  unique.sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return unique.map(([, id]) => id);
}

/** Ring offsets used for `n` members under `maxPeers`, each in 1..floor(n/2), ascending, distinct. */
export function ringOffsets(n: number, maxPeers: number): number[] {
  if (n < 2) return [];
  const half = Math.floor(n / 2);
  const m = Math.max(1, Math.floor(maxPeers / 2));
  const offsets = new Set<number>();
  // Offsets below n/2: each costs two links. An offset of exactly n/2 (even n) costs one.
  for (let j = 0; j < m; j++) {
    const k = Math.min(Math.round(Math.pow(n / 2, j / m)), half);
    if (k >= 1 && !(n % 2 === 0 && k === half)) offsets.add(k);
  }
  // Fill gaps left by rounding collisions with the smallest unused offsets (more hops saved than none).
  for (let k = 2; offsets.size < m && k < n / 2; k++) offsets.add(k);
  const links = [...offsets].length * 2;
  if (n % 2 === 0 && links + 1 <= maxPeers) offsets.add(half);
  return [...offsets].sort((a, b) => a - b);
}

/**
 * The members `own` links to, out of `members` (which may include `own`). With at most `maxPeers` others,
 * everyone (full mesh). Throws for a bound below MIN_MAX_PEERS.
 */
export function chooseNeighbours(own: string, members: Iterable<string>, maxPeers: number): Set<string> {
  if (!Number.isSafeInteger(maxPeers) || maxPeers < MIN_MAX_PEERS)
    throw new RangeError(`maxPeers must be a whole number >= ${MIN_MAX_PEERS}`);
  const ring = ringOrder([own, ...members]);
  const n = ring.length;
  if (n - 1 <= maxPeers) return new Set(ring.filter((id) => id !== own));
  const i = ring.indexOf(own);
  const out = new Set<string>();
  for (const k of ringOffsets(n, maxPeers)) {
    out.add(ring[(i + k) % n]!);
    out.add(ring[(i - k + n) % n]!);
  }
  return out;
}
