import { afterEach, describe, expect, it } from 'vitest';
import type { DocState } from '../../src/core/types.js';
import type { MemoryLink } from '../../src/transport/memory-link.js';
import {
  FORK_TOKEN,
  MASTER_TOKEN,
  connect,
  converged,
  createHeldLinkPair,
  doc,
  seed,
  store,
  until,
  type Pair,
} from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

const limits = { highWaterBytes: 32 * 1024, streamDropBytes: 64 * 1024, pushWindow: 4 };
const payload = 'p'.repeat(1000);

function held(
  sa = store(MASTER_TOKEN),
  sb = store(FORK_TOKEN),
  batchSize = 50,
): Pair & { heldA: MemoryLink; heldB: MemoryLink } {
  const [heldA, heldB] = createHeldLinkPair();
  const p = connect(sa, sb, { limits, batchSize }, { limits, batchSize }, [heldA, heldB]);
  cleanups.push(() => p.close());
  return { ...p, heldA, heldB };
}

async function writeMany(s: Pair['a']['store'], batches: number, perBatch: number, prefix: string): Promise<void> {
  for (let b = 0; b < batches; b++) {
    const docs: DocState[] = [];
    for (let i = 0; i < perBatch; i++) docs.push(doc(`${prefix}-${b}-${i}`, { payload }));
    await s.bulkWrite(
      docs.map((d) => ({ document: d, expected: null })),
      { kind: 'local' },
    );
  }
}

describe('flow control', () => {
  it('bounds what a master queues for a fork that does not read, then resyncs it', async () => {
    const p = held();
    await seed(p.a.store, 10, 's');
    await converged([p.a.rep, p.b.rep], [p.a.store, p.b.store]);
    p.heldA.hold();
    p.heldA.resetMax();
    // 6 MB of changes while nothing reaches the fork
    await writeMany(p.a.store, 300, 20, 'm');
    expect(p.heldA.maxBuffered).toBeLessThanOrEqual(limits.streamDropBytes + 25 * 1024);
    expect(p.a.rep.isIdle()).toBe(false);
    p.heldA.release();
    await converged([p.a.rep, p.b.rep], [p.a.store, p.b.store], 15_000);
    expect((await p.b.store.all()).length).toBe(6010);
  });

  it('bounds what a fork sends to a master that does not answer: a window of requests', async () => {
    const p = held();
    await converged([p.a.rep, p.b.rep], [p.a.store, p.b.store]);
    p.heldA.hold(); // the master's answers never arrive
    p.heldB.resetMax();
    await writeMany(p.b.store, 100, 50, 'f'); // 5 MB to push
    // the fork sends a window of 4 batches of at most 50 rows, then waits for answers
    const inspect = (): { inFlight: number; pressure: number } =>
      (p.b.rep as unknown as { inspect(): { inFlight: number; pressure: number } }).inspect();
    await until(
      () => inspect().inFlight === 4 && p.heldB.bufferedAmount() === 0,
      [p.a.rep, p.b.rep],
      [p.a.store, p.b.store],
      'the first window',
    );
    expect(p.a.rep.stats.received).toBeLessThanOrEqual(4 * 50);
    expect(inspect().inFlight).toBe(4);
    expect(p.heldB.maxBuffered).toBeLessThanOrEqual(4 * 50 * 1100 + 4096);
    expect(p.heldA.bufferedAmount()).toBeLessThan(16 * 1024); // four small answers and four empty echoes
    p.heldA.release();
    await converged([p.a.rep, p.b.rep], [p.a.store, p.b.store], 15_000);
    expect((await p.a.store.all()).length).toBe(5000);
  });

  it('lets a fast fork keep up while a slow one is held back', async () => {
    const sa = store(MASTER_TOKEN);
    const fast = held(sa, store(FORK_TOKEN));
    const slow = held(sa, store('cccccccccc'));
    expect((await slow.a.rep.ready, slow.a.rep.role)).toBe('master');
    await converged([fast.a.rep, fast.b.rep, slow.a.rep, slow.b.rep], [sa, fast.b.store, slow.b.store]);
    slow.heldA.hold();
    slow.heldA.resetMax();
    await writeMany(sa, 200, 20, 'x');
    await converged([fast.a.rep, fast.b.rep], [sa, fast.b.store], 15_000);
    expect((await fast.b.store.all()).length).toBe(4000);
    expect(slow.heldA.maxBuffered).toBeLessThanOrEqual(limits.streamDropBytes + 25 * 1024);
    slow.heldA.release();
    await converged([slow.a.rep, slow.b.rep], [sa, slow.b.store], 15_000);
  });
});
