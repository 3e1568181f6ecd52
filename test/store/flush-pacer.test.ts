import { describe, expect, it } from 'vitest';
import { FlushPacer } from '../../src/store/file-writer.js';

/** Runs a rewrite from `at` that takes `ms` (all of it on the CPU unless `cpuMs` says less); returns its end. */
function rewrite(p: FlushPacer, at: number, ms: number, cpuMs = ms): number {
  p.started(at);
  p.ended(at + ms, cpuMs);
  return at + ms;
}

describe('FlushPacer', () => {
  it('writes a change at once after a quiet spell, and after each live change of a small file', () => {
    const p = new FlushPacer();
    expect(p.delay(1_000)).toBe(0);
    // 200 changes 50 ms apart, each rewrite taking 8 ms (16 % of the time): every one written at once.
    let t = 1_000;
    for (let i = 0; i < 200; i++) {
      expect(p.delay(t)).toBe(0);
      rewrite(p, t, 8);
      t += 50;
    }
  });

  it('writes a change that comes soon after another at once when the changes are rare on average', () => {
    const p = new FlushPacer();
    let t = 1_000;
    // Pairs of changes 15 ms apart, a pair every 200 ms; each rewrite takes 10 ms (10 % of the time).
    for (let i = 0; i < 100; i++) {
      expect(p.delay(t)).toBe(0);
      const end = rewrite(p, t, 10);
      expect(p.delay(end + 5)).toBe(0);
      rewrite(p, end + 5, 10);
      t += 200;
    }
  });

  it('keeps a sync that commits all the time to a fifth of the time rewriting, after a short burst', () => {
    const p = new FlushPacer();
    let t = 0;
    let writing = 0;
    const start = t;
    // A 100 ms rewrite, a commit right after each: the first ones run on the burst credit, then the pacing holds.
    for (let i = 0; i < 100; i++) {
      t += p.delay(t);
      t = rewrite(p, t, 100);
      writing += 100;
    }
    const share = writing / (t - start);
    expect(share).toBeGreaterThan(0.19);
    expect(share).toBeLessThan(0.22);
  });

  it('counts what a rewrite cost in CPU time, not the time it waited for a core on a busy machine', () => {
    const p = new FlushPacer();
    let t = 0;
    // Rewrites of 40 ms, 3 ms of it on the CPU, each followed by a change 10 ms later: all written at once.
    for (let i = 0; i < 200; i++) {
      expect(p.delay(t)).toBe(0);
      t = rewrite(p, t, 40, 3) + 10;
    }
    // The same rewrites all on the CPU run the credit out.
    for (let i = 0; i < 20; i++) t = rewrite(p, t, 40) + 10;
    expect(p.delay(t)).toBeGreaterThan(0);
  });

  it('writes lone live changes at once when they follow each other as fast as their rewrites', () => {
    const live = new FlushPacer();
    const stream = new FlushPacer();
    let t = 0;
    // A change 7 ms after each rewrite of 8 ms (5 ms of it on the CPU), as a 10k-document file's peer sees them.
    for (let i = 0; i < 500; i++) {
      expect(live.delay(t, true)).toBe(0);
      t = rewrite(live, t, 8, 5) + 7;
    }
    // Asked as a stream, the same changes run the budget of a fifth out.
    t = 0;
    let delayed = 0;
    for (let i = 0; i < 500; i++) {
      const d = stream.delay(t);
      if (d > 0) delayed++;
      t = rewrite(stream, t + d, 8, 5) + 7;
    }
    expect(delayed).toBeGreaterThan(100);
  });

  it('keeps live changes of a big file to half of the time rewriting', () => {
    const p = new FlushPacer();
    let t = 0;
    let writing = 0;
    // Rewrites of 300 ms, a live change right after each.
    for (let i = 0; i < 100; i++) {
      t += p.delay(t, true);
      t = rewrite(p, t, 300);
      writing += 300;
    }
    const share = writing / t;
    expect(share).toBeGreaterThan(0.49);
    expect(share).toBeLessThan(0.53);
  });

  it('waits at most 2 s however long the last rewrite took, and owes no more than that', () => {
    const p = new FlushPacer();
    const end = rewrite(p, 0, 60_000);
    expect(p.delay(end)).toBe(2_000);
    expect(p.delay(end + 2_000)).toBe(0);
  });
});
