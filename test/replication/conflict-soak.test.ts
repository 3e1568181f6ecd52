// Soak: both sides of a p2psync pair update and delete the same ids at once while frames and store operations take
// random numbers of event-loop turns, so pushes, their conflicts and stream events interleave differently for every
// seed. Whatever the interleaving, the pair must end with identical content made of versions someone wrote.
// SOAK_SEEDS=n SOAK_FIRST=k run seeds k..k+n-1 (default 1..30); a failing seed reproduces on its own.
import { afterEach, describe, expect, it } from 'vitest';
import type { Store } from '../../src/core/store.js';
import type { DocState } from '../../src/core/types.js';
import { lastWriteWins, masterWins, type ConflictStrategy } from '../../src/replication/conflict.js';
import { FORK_TOKEN, MASTER_TOKEN, connect, converged, digest, doc, put, type Pair } from './helpers.js';
import { JitterStore, createJitterLinkPair, hops, prng } from './jitter.js';

const SEEDS = Number(process.env.SOAK_SEEDS ?? 30);
const FIRST = Number(process.env.SOAK_FIRST ?? 1);
const IDS = Array.from({ length: 6 }, (_, i) => `k${i}`);
const ROUNDS = 25;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** A local write of whatever the current states are (a replication write may land between read and write). */
async function overwrite(s: Store, docs: DocState[]): Promise<void> {
  for (let rows = docs; rows.length > 0;) {
    const current = await s.get(rows.map((d) => d.id as string));
    const conflicts = await s.bulkWrite(
      rows.map((d) => ({ document: d, expected: current.get(d.id as string) ?? null })),
      { kind: 'local' },
    );
    const again = new Set(conflicts.map((c) => c.id));
    rows = rows.filter((d) => again.has(d.id));
  }
}

/** One side's writes: rounds of updates (and the odd delete) of a random subset of the ids, at random moments. */
async function writer(
  s: Store,
  name: string,
  random: () => number,
  clock: { t: number },
  written: Map<string, Set<string>>,
): Promise<void> {
  for (let round = 0; round < ROUNDS; round++) {
    const ids = IDS.filter(() => random() < 0.4);
    if (ids.length > 0) {
      const docs = ids.map((id) => {
        const v = `${name}-${round}`;
        written.get(id)!.add(v);
        return doc(id, { v, updatedAt: ++clock.t }, random() < 0.1);
      });
      await overwrite(s, docs);
    }
    await hops(Math.floor(random() * 4));
  }
}

/** Runs one seed; returns why it failed, or undefined. */
async function soak(seed: number, role: 'master' | 'fork', conflict: ConflictStrategy): Promise<string | undefined> {
  const random = prng(seed);
  const sa = new JitterStore(role === 'master' ? MASTER_TOKEN : FORK_TOKEN, random);
  const sb = new JitterStore(role === 'master' ? FORK_TOKEN : MASTER_TOKEN, random);
  await put(sa, ...IDS.map((id) => doc(id, { v: 'seed', updatedAt: 0 })));
  const p: Pair = connect(sa, sb, { conflict, batchSize: 4 }, { conflict, batchSize: 4 }, createJitterLinkPair(random));
  cleanups.push(() => p.close());
  await converged([p.a.rep, p.b.rep], [sa, sb]);
  expect(p.a.rep.role).toBe(role);

  const written = new Map(IDS.map((id) => [id, new Set(['seed'])]));
  const clock = { t: 0 };
  await Promise.all([writer(sa, 'a', random, clock, written), writer(sb, 'b', random, clock, written)]);
  try {
    await converged([p.a.rep, p.b.rep], [sa, sb], 5_000);
  } catch (err) {
    const state = (r: Pair['a']['rep']): string =>
      JSON.stringify({ idle: r.isIdle(), ...(r as unknown as { inspect(): object }).inspect() });
    const why = `seed ${seed}: ${(err as Error).message}\nA ${await digest(sa)} ${state(p.a.rep)}\nB ${await digest(sb)} ${state(p.b.rep)}`;
    await p.close();
    cleanups.pop();
    return why;
  }
  for (const d of (await sa.changesSince(null, 1000)).documents) {
    expect(written.get(d.id as string)?.has(d.v as string), `seed ${seed}: ${JSON.stringify(d)}`).toBe(true);
  }
  expect([...p.a.events, ...p.b.events].filter((e) => e.event === 'error')).toEqual([]);
  await p.close();
  cleanups.pop();
  return undefined;
}

describe.each([
  { role: 'master' as const, strategy: 'master', make: masterWins },
  { role: 'fork' as const, strategy: 'master', make: masterWins },
  { role: 'master' as const, strategy: 'lww', make: () => lastWriteWins() },
  { role: 'fork' as const, strategy: 'lww', make: () => lastWriteWins() },
])('concurrent conflicting writes on both sides (A as $role, $strategy)', ({ role, make }) => {
  it(`converge for ${SEEDS} random interleavings`, async () => {
    const failures: string[] = [];
    for (let seed = FIRST; seed < FIRST + SEEDS; seed++) {
      const why = await soak(seed, role, make());
      if (why) failures.push(why);
    }
    expect(failures, `${failures.length} of ${SEEDS} seeds diverged`).toEqual([]);
  }, 120_000);
});
