// Replication between two encrypted stores with different keys: concurrent conflicting writes on both sides, with
// store operations and frames taking random numbers of event-loop turns. Both sides must converge in plaintext while
// each inner store holds only its own ciphertext.
import { afterEach, describe, expect, it } from 'vitest';
import type { PeerStateStore, Store } from '../../src/core/store.js';
import { DocCipher } from '../../src/crypt/doc-cipher.js';
import { EncryptedStore } from '../../src/crypt/encrypted-store.js';
import { newDataKey, ValueCipher } from '../../src/crypt/value.js';
import { masterWins } from '../../src/replication/conflict.js';
import { FORK_TOKEN, MASTER_TOKEN, connect, converged, digest, doc, type Pair } from '../replication/helpers.js';
import { JitterStore, createJitterLinkPair, hops, prng } from '../replication/jitter.js';

const SEEDS = 30;
const IDS = ['k0', 'k1', 'k2', 'k3'];

const pairs: Pair[] = [];
afterEach(async () => {
  for (const p of pairs.splice(0)) await p.close();
});

function encrypted(inner: Store & PeerStateStore): EncryptedStore {
  const key = newDataKey();
  return new EncryptedStore(inner, new DocCipher('id', ['v'], new ValueCipher([key], key)));
}

/** Rounds of writes of random ids, each retried on conflict against what is there now. */
async function write(s: Store, name: string, random: () => number): Promise<void> {
  for (let round = 0; round < 15; round++) {
    for (const id of IDS.filter(() => random() < 0.5)) {
      for (;;) {
        const cur = (await s.get([id])).get(id) ?? null;
        const conflicts = await s.bulkWrite(
          [{ document: doc(id, { v: `${name}-${round}` }, random() < 0.1), expected: cur }],
          { kind: 'local' },
        );
        if (conflicts.length === 0) break;
      }
    }
    await hops(Math.floor(random() * 4));
  }
}

describe('replication between encrypted stores with different keys', () => {
  it(`converges in plaintext for ${SEEDS} random interleavings; each store holds only ciphertext`, async () => {
    for (let seed = 1; seed <= SEEDS; seed++) {
      const random = prng(seed);
      const innerA = new JitterStore(seed % 2 ? MASTER_TOKEN : FORK_TOKEN, random);
      const innerB = new JitterStore(seed % 2 ? FORK_TOKEN : MASTER_TOKEN, random);
      const a = encrypted(innerA);
      const b = encrypted(innerB);
      for (const id of IDS)
        await a.bulkWrite([{ document: doc(id, { v: 'seed' }), expected: null }], { kind: 'local' });
      const p = connect(
        a,
        b,
        { conflict: masterWins(), batchSize: 2 },
        { conflict: masterWins(), batchSize: 2 },
        createJitterLinkPair(random),
      );
      pairs.push(p);
      await Promise.all([write(a, 'a', random), write(b, 'b', random)]);
      await converged([p.a.rep, p.b.rep], [a, b], 10_000);
      expect(await digest(a), `seed ${seed}`).toBe(await digest(b));
      for (const inner of [innerA, innerB]) {
        for (const d of (await inner.changesSince(null, 100)).documents)
          expect(d.v, `seed ${seed}`).toMatch(/^p2psync:v1:/);
      }
      // Different keys: the same plaintext is different ciphertext on each side.
      const [ca, cb] = [(await innerA.get(['k0'])).get('k0')!, (await innerB.get(['k0'])).get('k0')!];
      expect(ca.v).not.toBe(cb.v);
      expect([...p.a.events, ...p.b.events].filter((e) => e.event === 'error')).toEqual([]);
      await p.close();
      pairs.pop();
    }
  }, 120_000);
});
