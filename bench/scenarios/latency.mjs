// Live latency (issue 5 item 3): with N documents (10k) already in sync between A and B, write one new document
// on A and stop the clock when it is in B. p2psync: the document is appended to A's NDJSON file (or A's JSON file
// is replaced atomically, as an app using lowdb would), and B's file is watched. RxDB: the document is put into A
// through the fixture's stdin and B reports it in a `change` event. Writes are sequential: the next one starts
// once the previous one arrived, so every figure is the latency of an otherwise idle pair.
import { appendFileSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { makeDoc, makeDocs } from '../lib/docs.mjs';
import { FileWaiter } from '../lib/file-waiter.mjs';
import { startSignal, tokenPair, topicName } from '../lib/peers.mjs';
import { startSide } from '../lib/sides.mjs';
import { percentile } from '../lib/stats.mjs';
import { mb, ms } from '../lib/format.mjs';

/** One write that never arrives must not hang the run; a few lost writes end the row. */
const WRITE_TIMEOUT_MS = 10_000;
const MAX_LOST = 3;
/** A slow pair stops early (after at least MIN_WRITES) so the whole benchmark stays within its time budget. */
const WRITES_BUDGET_MS = 20_000;
const MIN_WRITES = 20;

function specs(ctx) {
  const rx = { kind: 'rxdb', batch: ctx.rxdbBatch };
  return [
    { kind: 'p2psync', label: 'p2psync → p2psync (NDJSON append)', format: 'ndjson', direction: 'pull' },
    { kind: 'p2psync', label: 'p2psync → p2psync (NDJSON append)', format: 'ndjson', direction: 'push' },
    { kind: 'p2psync', label: 'p2psync → p2psync (JSON file replaced)', format: 'json', direction: 'pull' },
    { kind: 'rxdb', label: `RxDB → RxDB (insert, batch ${ctx.rxdbBatch})`, direction: 'pull', side: rx },
    { kind: 'rxdb', label: `RxDB → RxDB (insert, batch ${ctx.rxdbBatch})`, direction: 'push', side: rx },
  ];
}

export async function runLatency(ctx) {
  const rows = [];
  const signals = {};
  try {
    for (const spec of specs(ctx)) {
      if (spec.kind === 'p2psync' && !ctx.avail.join) {
        rows.push({ ...spec, skipped: 'not available yet (`p2psync join` is not built)' });
        continue;
      }
      const signalKind = spec.kind === 'p2psync' && ctx.avail.signal ? 'p2psync' : 'rxdb';
      signals[signalKind] ??= await startSignal(signalKind);
      ctx.log(`latency ${spec.label} ${spec.direction}: ${ctx.latencyWrites} writes with ${ctx.latencyDocs} documents`);
      try {
        rows.push(await latencyRow(ctx, spec, signals[signalKind]));
      } catch (err) {
        rows.push({ ...spec, error: String(err?.message ?? err).slice(0, 600) });
      }
    }
  } finally {
    await Promise.all(Object.values(signals).map((s) => s.proc.stop()));
  }
  return { rows, docs: ctx.latencyDocs, writes: ctx.latencyWrites, budgetMs: WRITES_BUDGET_MS };
}

export async function latencyRow(ctx, spec, signal) {
  const n = ctx.latencyDocs;
  const dir = mkdtempSync(join(ctx.tmp, 'latency-'));
  // 'pull': A (the writer) is master and streams its change to the fork B; 'push': A is the fork and pushes.
  const [tokenA, tokenB] = tokenPair(spec.direction === 'pull');
  const topic = topicName('live');
  const side = spec.side ?? { kind: 'p2psync', format: spec.format, batch: ctx.p2pBatch };
  const procs = [];
  let waiter;
  try {
    const a = await startSide(ctx, side, { dir, name: 'a', token: tokenA, topic, signal, seed: n, prefix: 'seed' });
    procs.push(a);
    await a.ready();
    const b = await startSide(ctx, side, {
      dir,
      name: 'b',
      token: tokenB,
      topic,
      signal,
      expect: n,
      changes: spec.kind === 'rxdb',
    });
    procs.push(b);
    await b.reached(n, 120_000);
    const [ca, cb] = await Promise.all([a.connected(5_000), b.connected(5_000)]);

    const write = spec.kind === 'rxdb' ? rxdbWriter(a, b) : fileWriter(a.store, spec.format, n);
    if (spec.kind !== 'rxdb') waiter = new FileWaiter(b.store);
    const latencies = [];
    let lost = 0;
    const began = performance.now();
    const overBudget = () => latencies.length >= MIN_WRITES && performance.now() - began > WRITES_BUDGET_MS;
    for (let i = 1; i <= ctx.latencyWrites && lost < MAX_LOST && !overBudget(); i++) {
      const doc = makeDoc('live', i, Date.now());
      const arrived =
        spec.kind === 'rxdb'
          ? b.proc.waitFor((e) => e.event === 'change' && e.id === doc.id, WRITE_TIMEOUT_MS)
          : waiter.waitForId(doc.id, WRITE_TIMEOUT_MS);
      const t0 = write(doc);
      try {
        const t1 = await arrived;
        latencies.push((typeof t1 === 'number' ? t1 : t1._t) - t0);
      } catch {
        lost++;
      }
    }
    await Promise.all(procs.map((p) => p.stop()));
    return {
      ...spec,
      side: undefined,
      docs: n,
      writes: latencies.length,
      planned: ctx.latencyWrites,
      lost,
      p50Ms: percentile(latencies, 50),
      p90Ms: percentile(latencies, 90),
      p99Ms: percentile(latencies, 99),
      maxMs: percentile(latencies, 100),
      meanMs: latencies.length ? latencies.reduce((s, x) => s + x, 0) / latencies.length : undefined,
      roles: { a: ca.role, b: cb.role },
      rss: { a: a.peakRss, b: b.peakRss },
    };
  } finally {
    waiter?.close();
    await Promise.all(procs.map((p) => p.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** RxDB: put through stdin; the clock starts when the command is written. */
function rxdbWriter(a) {
  return (doc) => {
    const t0 = performance.now();
    a.proc.send({ op: 'put', doc });
    return t0;
  };
}

/**
 * p2psync: NDJSON gets one appended line; JSON gets the whole file replaced by write-then-rename (what lowdb and
 * `jq ... > tmp && mv tmp file` do). The clock starts when the write has returned.
 */
function fileWriter(path, format, seeded) {
  if (format === 'ndjson') {
    return (doc) => {
      appendFileSync(path, JSON.stringify(doc) + '\n');
      return performance.now();
    };
  }
  const docs = makeDocs('seed', seeded);
  return (doc) => {
    docs.push(doc);
    const tmp = `${path}.bench-tmp`;
    writeFileSync(tmp, JSON.stringify(docs, null, 2));
    renameSync(tmp, path);
    return performance.now();
  };
}

export function renderLatency(s) {
  const lines = [
    `${s.docs?.toLocaleString('en-US')} documents in sync, then ${s.writes} sequential writes on A; each one is timed until it is in B`,
    '(p2psync: seen in B\'s file; RxDB: B\'s `change` event). "A is master": A streams the change to its fork B;',
    '"A is fork": A pushes it to the master B.',
    '',
    '| pair | roles | writes | p50 ms | p90 ms | p99 ms | max ms | p50 / RxDB p50 | peak RSS A / B MB |',
    '|---|---|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const r of s.rows) {
    const roles = r.direction === 'pull' ? 'A is master' : 'A is fork';
    if (r.skipped || r.error) {
      lines.push(
        `| ${r.label} | ${roles} | ${r.skipped ? `_${r.skipped}_` : `failed: ${r.error.split('\n')[0].slice(0, 200)}`} | | | | | | |`,
      );
      continue;
    }
    const base = s.rows.find((x) => x.kind === 'rxdb' && x.direction === r.direction && x.p50Ms !== undefined)?.p50Ms;
    const ratio = r.kind === 'p2psync' && base ? `${(r.p50Ms / base).toFixed(2)}x` : '';
    const lost = [
      r.lost ? `${r.lost} lost` : '',
      r.writes + r.lost < r.planned ? `stopped after ${s.budgetMs / 1000} s` : '',
    ]
      .filter(Boolean)
      .join(', ');
    lines.push(
      `| ${r.label} | ${roles} | ${r.writes}${lost ? ` (${lost})` : ''} | ${ms(r.p50Ms)} | ${ms(r.p90Ms)} | ${ms(r.p99Ms)} | ${ms(r.maxMs)} | ${ratio} | ${mb(r.rss?.a)} / ${mb(r.rss?.b)} |`,
    );
  }
  return lines.join('\n');
}
