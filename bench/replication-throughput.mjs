#!/usr/bin/env node
// In-process throughput of the replication core (not part of `npm test` or `npm run bench`): an initial sync of N
// ~200-byte documents between two MemoryStores over an in-memory link pair. Both peers share one thread here, so
// the figure is the cost of both sides together; two processes over WebRTC overlap them.
//
//   npm run build && node bench/replication-throughput.mjs [--docs 100000] [--batch 1000] [--runs 3] [--mode pull|push|both]
//     [--store memory|json|ndjson]   (json/ndjson: both peers use file stores in a temp dir, flushed before timing ends)
//   node bench/replication-throughput.mjs --runs 1 --profile /tmp/sync.cpuprofile && node bench/profile-summary.mjs /tmp/sync.cpuprofile
// (--profile records only the sync itself, not the seeding, with the inspector's sampling profiler)
//
// pull: the seeded peer is master, the fresh one pulls. push: the seeded peer is fork and pushes to a fresh master.
// both: each side starts with N/2 documents of its own.
import { parseArgs } from 'node:util';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Session } from 'node:inspector/promises';
import { performance } from 'node:perf_hooks';
import { MemoryStore } from '../dist/store/memory-store.js';
import { createMemoryLinkPair } from '../dist/transport/memory-link.js';
import { DEFAULT_BATCH_SIZE, masterWins, replicate } from '../dist/replication/index.js';
import { openStore } from '../dist/store/open.js';
import { makeDoc } from './lib/docs.mjs';

const { values } = parseArgs({
  options: {
    docs: { type: 'string', default: '100000' },
    batch: { type: 'string', default: String(DEFAULT_BATCH_SIZE) },
    runs: { type: 'string', default: '3' },
    mode: { type: 'string', default: 'pull' },
    profile: { type: 'string' },
    store: { type: 'string', default: 'memory' },
  },
});
const N = Number(values.docs);
const batchSize = Number(values.batch);
const MASTER = 'aaaaaaaaaa'; // master of FORK (docs/PROTOCOL.md §2.3 test vector)
const FORK = 'bbbbbbbbbb';

async function seed(store, prefix, count) {
  for (let i = 1; i <= count; i += 5000) {
    const rows = [];
    for (let j = i; j < Math.min(i + 5000, count + 1); j++)
      rows.push({ document: { ...makeDoc(prefix, j), _deleted: false }, expected: null });
    await store.bulkWrite(rows, { kind: 'local' });
  }
}

function whenSynced(reps, expectedReceived) {
  return new Promise((resolve) => {
    const check = () => {
      const received = reps.reduce((n, r) => n + r.stats.received, 0);
      if (received >= expectedReceived && reps.every((r) => r.isIdle())) resolve();
    };
    for (const r of reps) r.onStateChange(check);
  });
}

async function makeStore(token, dir, name) {
  if (values.store === 'memory') return new MemoryStore({ storageToken: token });
  return openStore({ path: join(dir, `${name}.${values.store}`), storageToken: token, watch: false });
}

async function run() {
  const dir = mkdtempSync(join(tmpdir(), 'p2psync-bench-'));
  let a;
  let b;
  if (values.mode === 'pull') {
    a = await makeStore(MASTER, dir, 'a');
    b = await makeStore(FORK, dir, 'b');
    await seed(a, 'doc', N);
  } else if (values.mode === 'push') {
    a = await makeStore(FORK, dir, 'a');
    b = await makeStore(MASTER, dir, 'b');
    await seed(a, 'doc', N);
  } else {
    a = await makeStore(MASTER, dir, 'a');
    b = await makeStore(FORK, dir, 'b');
    await seed(a, 'a', N / 2);
    await seed(b, 'b', N / 2);
  }
  await a.flush();
  await b.flush();
  const [la, lb] = createMemoryLinkPair();
  let session;
  if (values.profile) {
    session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 100 });
    await session.post('Profiler.start');
  }
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const options = { topic: 'bench-topic', conflict: masterWins(), batchSize };
  const ra = replicate({ ...options, store: a, meta: a, link: la });
  const rb = replicate({ ...options, store: b, meta: b, link: lb });
  await whenSynced([ra, rb], N);
  await Promise.all([a.flush(), b.flush()]);
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  if (session) {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(values.profile, JSON.stringify(profile));
    session.disconnect();
  }
  const stats = { a: ra.stats, b: rb.stats };
  const counts = [(await a.all()).length, (await b.all()).length];
  if (counts[0] !== N || counts[1] !== N) throw new Error(`not converged: ${counts}`);
  await ra.close();
  await rb.close();
  la.close();
  lb.close();
  await a.close();
  await b.close();
  rmSync(dir, { recursive: true, force: true });
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000, stats };
}

const results = [];
for (let i = 0; i < Number(values.runs); i++) {
  const r = await run();
  results.push(r);
  console.log(
    `run ${i + 1}: ${N} docs, mode ${values.mode}, batch ${batchSize}: ${r.ms.toFixed(0)} ms, ${Math.round(N / (r.ms / 1000))} docs/s, ` +
      `cpu ${r.cpuMs.toFixed(0)} ms (${((r.cpuMs * 1000) / N).toFixed(2)} us/doc), sent a=${r.stats.a.sent} b=${r.stats.b.sent}`,
  );
}
const rates = results.map((r) => N / (r.ms / 1000)).sort((x, y) => x - y);
const cpus = results.map((r) => (r.cpuMs * 1000) / N).sort((x, y) => x - y);
const mid = (xs) => xs[Math.floor(xs.length / 2)];
// On a shared machine wall time swings with other load; CPU per document is the steadier figure.
console.log(
  `median: ${Math.round(mid(rates))} docs/s (best ${Math.round(rates.at(-1))}), CPU ${mid(cpus).toFixed(2)} us/doc (best ${cpus[0].toFixed(2)})`,
);
