import type { PeerLink } from '../../src/core/link.js';
import type { CasWrite, ChangeBatch, Checkpoint, DocState, WriteOrigin } from '../../src/core/types.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { createMemoryLinkPair } from '../../src/transport/memory-link.js';

/** A small seeded PRNG (mulberry32): a soak seed gives the same choices on every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Resolves after `n` turns of the event loop. */
export async function hops(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((r) => setImmediate(r));
}

/**
 * A link pair that delivers frames in order, like a data channel, but after a random number of event-loop turns
 * each (every turn delivers the next frame with probability 1/2): the requests, responses and stream events of the
 * two sides interleave differently for every seed.
 */
export function createJitterLinkPair(random: () => number, aId = 'peer-a', bId = 'peer-b'): [PeerLink, PeerLink] {
  return createMemoryLinkPair(aId, bId, {
    pace: (waiting) => {
      let n = 0;
      while (n < waiting.length && random() < 0.5) n++;
      return n;
    },
  });
}

/** A memory store whose reads and writes take a random number of event-loop turns, like a store doing I/O. */
export class JitterStore extends MemoryStore {
  constructor(
    token: string,
    private readonly random: () => number,
  ) {
    super({ storageToken: token });
  }

  override async bulkWrite(rows: readonly CasWrite[], origin: WriteOrigin): Promise<DocState[]> {
    await hops(Math.floor(this.random() * 3));
    return super.bulkWrite(rows, origin);
  }

  override async changesSince(checkpoint: Checkpoint | null, limit: number): Promise<ChangeBatch> {
    await hops(Math.floor(this.random() * 3));
    return super.changesSince(checkpoint, limit);
  }
}
