import { afterEach, describe, expect, it } from 'vitest';
import type { PeerLink } from '../../src/core/link.js';

/** A connected pair of links to test, and how to tear it down. */
export interface LinkPair {
  a: PeerLink;
  b: PeerLink;
  /** Resolves once `count` frames sent towards `side` reached it, whether or not a handler is registered. */
  arrived(side: 'a' | 'b', count: number): Promise<void>;
  dispose(): Promise<void>;
}

/** Resolves with the next `count` frames of `link` (registers its frame handler). */
export function collect(link: PeerLink, count: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const frames: string[] = [];
    if (count === 0) resolve(frames);
    link.onFrame((f) => {
      frames.push(f);
      if (frames.length === count) resolve(frames);
    });
    link.onClose((reason) => {
      if (frames.length < count) reject(new Error(`closed after ${frames.length}/${count} frames: ${reason?.message}`));
    });
  });
}

function closed(link: PeerLink): Promise<Error | undefined> {
  return new Promise((resolve) => link.onClose((reason) => resolve(reason)));
}

/**
 * The PeerLink contract (src/core/link.ts), run against every implementation, as automerge-repo runs
 * `runStorageAdapterTests` against every storage adapter.
 */
export function runLinkContract(name: string, setup: () => Promise<LinkPair>): void {
  describe(`PeerLink contract: ${name}`, () => {
    let pair: LinkPair | undefined;
    const open = async (): Promise<LinkPair> => (pair = await setup());
    afterEach(async () => {
      await pair?.dispose();
      pair = undefined;
    });

    it('starts open, knows the remote id and a usable max message size', async () => {
      const { a, b } = await open();
      expect(a.open).toBe(true);
      expect(b.open).toBe(true);
      expect(a.remotePeerId).not.toBe(b.remotePeerId);
      for (const link of [a, b]) {
        expect(link.maxMessageSize).toBeGreaterThanOrEqual(65_536);
        expect(link.maxMessageSize).toBeLessThanOrEqual(262_144);
      }
    });

    it('delivers many frames in order, both ways, including 200 KB frames', async () => {
      const { a, b } = await open();
      const big = (i: number): string => `${i}:`.padEnd(200_000, String.fromCharCode(97 + (i % 26)));
      const frames: string[] = [];
      for (let i = 0; i < 2000; i++) frames.push(i % 250 === 0 ? big(i) : JSON.stringify({ i, text: 'é€😀' }));
      const atB = collect(b, frames.length);
      const atA = collect(a, frames.length);
      for (const f of frames) a.send(f);
      for (const f of frames) b.send(f);
      expect(await atB).toEqual(frames);
      expect(await atA).toEqual(frames);
    });

    it('queues frames that arrive before onFrame is registered', async () => {
      const { a, b } = await open();
      a.send('one');
      a.send('two');
      a.send('three');
      await pair!.arrived('b', 3);
      expect(await collect(b, 3)).toEqual(['one', 'two', 'three']);
    });

    it('closing one side fires onClose once on both sides, and close is idempotent', async () => {
      const { a, b } = await open();
      let aClosed = 0;
      a.onClose(() => aClosed++);
      const bClosed = closed(b);
      a.close();
      a.close();
      expect(a.open).toBe(false);
      await bClosed;
      expect(b.open).toBe(false);
      b.close();
      expect(aClosed).toBe(1);
    });

    it('a close from the other side closes this side too', async () => {
      const { a, b } = await open();
      const aClosed = closed(a);
      b.close();
      await aClosed;
      expect(a.open).toBe(false);
    });

    it('send after close is a no-op and bufferedAmount is 0', async () => {
      const { a, b } = await open();
      const received: string[] = [];
      b.onFrame((f) => received.push(f));
      const bClosed = closed(b);
      a.close();
      expect(() => a.send('late')).not.toThrow();
      await bClosed;
      expect(() => b.send('late')).not.toThrow();
      expect(a.bufferedAmount()).toBe(0);
      expect(b.bufferedAmount()).toBe(0);
      expect(received).toEqual([]);
    });

    it('reports a send backlog in bufferedAmount and calls onDrain when it falls', async () => {
      const { a, b } = await open();
      const frame = 'x'.repeat(200_000);
      const count = 40;
      const all = collect(b, count);
      let drains = 0;
      const drained = new Promise<void>((resolve) => a.onDrain(() => (drains++, resolve())));
      for (let i = 0; i < count; i++) a.send(frame);
      const backlog = a.bufferedAmount();
      expect(backlog).toBeGreaterThan(0);
      await drained;
      expect(drains).toBeGreaterThan(0);
      expect(a.bufferedAmount()).toBeLessThan(backlog);
      expect((await all).length).toBe(count);
    });

    it('the functions onFrame, onClose and onDrain return detach their handlers', async () => {
      const { a, b } = await open();
      const detached: string[] = [];
      b.onFrame(() => detached.push('frame'))();
      a.onDrain(() => detached.push('drain'))();
      b.onClose(() => detached.push('close'))();
      // the frames arrive with no handler set, so they wait for the next one
      a.send('one');
      await pair!.arrived('b', 1);
      expect(await collect(b, 1)).toEqual(['one']);
      const drained = new Promise<void>((resolve) => a.onDrain(resolve));
      for (let i = 0; i < 20; i++) a.send('x'.repeat(200_000));
      await drained;
      const bClosed = closed(b);
      a.close();
      await bClosed;
      expect(detached).toEqual([]);
    });
  });
}
