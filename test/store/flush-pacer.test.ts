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

  it('waits at most 2 s however long the last rewrite took, and owes no more than that', () => {
    const p = new FlushPacer();
    const end = rewrite(p, 0, 60_000);
    expect(p.delay(end)).toBe(2_000);
    expect(p.delay(end + 2_000)).toBe(0);
  });
});
