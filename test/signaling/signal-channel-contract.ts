import { afterEach, describe, expect, it } from 'vitest';
import type { SignalChannel, SignalMessage } from '../../src/core/signal.js';

/** Two channels in one topic, connected (own ids assigned), and how to dispose of them. */
export interface SignalChannelPair {
  a: SignalChannel;
  b: SignalChannel;
  close(): Promise<void>;
}

/** Resolves once `check()` holds, re-checking on every event of the channels' handlers (passed in by the test). */
function waitFor<T>(
  subscribe: (fire: () => void) => () => void,
  check: () => T | undefined,
  what: string,
  timeoutMs = 10_000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const done = (): boolean => {
      const value = check();
      if (value === undefined) return false;
      clearTimeout(timer);
      off();
      resolve(value);
      return true;
    };
    const timer = setTimeout(() => {
      off();
      reject(new Error(`signal contract: timed out waiting for ${what}`));
    }, timeoutMs);
    const off = subscribe(() => void done());
    done();
  });
}

/**
 * The SignalChannel contract (src/core/signal.ts), run against every implementation: the WebSocket client on a real
 * server, the in-memory hub and the embedded default. `setup` returns two channels that will connect by themselves.
 */
export function runSignalChannelContract(name: string, setup: () => Promise<SignalChannelPair>): void {
  describe(`SignalChannel contract: ${name}`, () => {
    const pairs: SignalChannelPair[] = [];
    afterEach(async () => {
      await Promise.all(pairs.splice(0).map((p) => p.close()));
    });

    async function connected(): Promise<SignalChannelPair & { idA: string; idB: string }> {
      const pair = await setup();
      pairs.push(pair);
      const both = (fire: () => void) => {
        const offs = [pair.a.onPeers(fire), pair.b.onPeers(fire), pair.a.onStatus(fire), pair.b.onStatus(fire)];
        return () => offs.forEach((off) => off());
      };
      const ids = await waitFor(
        both,
        () => {
          const { a, b } = pair;
          return a.peerId && b.peerId && a.peers.includes(b.peerId) && b.peers.includes(a.peerId)
            ? { idA: a.peerId, idB: b.peerId }
            : undefined;
        },
        'both channels to see each other',
      );
      return { ...pair, ...ids };
    }

    it('assigns each side an id and lists the other (never itself) as a peer', async () => {
      const { a, b, idA, idB } = await connected();
      expect(idA).not.toBe(idB);
      expect(a.peers).toEqual([idB]);
      expect(b.peers).toEqual([idA]);
    });

    it('delivers a signal with its connectionId to the addressee only, asynchronously, and never throws', async () => {
      const { a, b, idA, idB } = await connected();
      const atA: SignalMessage[] = [];
      const atB: SignalMessage[] = [];
      a.onSignal((m) => atA.push(m));
      b.onSignal((m) => atB.push(m));
      a.sendSignal(idB, { type: 'offer', sdp: 'v=0' }, 'conn-one');
      expect(atB).toEqual([]); // not from inside sendSignal
      const got = await waitFor(
        (fire) => b.onSignal(fire),
        () => atB[0],
        'the signal',
      );
      expect(got).toEqual({ from: idA, data: { type: 'offer', sdp: 'v=0' }, connectionId: 'conn-one' });
      // The answer travels back; A got nothing of its own signal before (the answer is the barrier).
      b.sendSignal(idA, { type: 'answer', sdp: 'v=0' }, 'conn-one');
      await waitFor(
        (fire) => a.onSignal(fire),
        () => atA[0],
        'the answer',
      );
      expect(atA).toEqual([{ from: idB, data: { type: 'answer', sdp: 'v=0' }, connectionId: 'conn-one' }]);
      expect(() => a.sendSignal('nobody-here', { x: 1 }, 'c')).not.toThrow();
    });

    it('stops calling a handler once it is removed', async () => {
      const { a, b, idA, idB } = await connected();
      const removed: SignalMessage[] = [];
      const kept: SignalMessage[] = [];
      const off = b.onSignal((m) => removed.push(m));
      b.onSignal((m) => kept.push(m));
      off();
      a.sendSignal(idB, { n: 1 }, 'c1');
      await waitFor(
        (fire) => b.onSignal(fire),
        () => kept[0],
        'the signal at the kept handler',
      );
      expect(removed).toEqual([]);
      expect(kept[0]!.from).toBe(idA);
    });
  });
}
