// Initial sync (issue 5 items 1, 2 and 6): N documents from a seeded peer to a fresh one, as the raw bound,
// RxDB to RxDB, p2psync to p2psync and the two mixed pairs, in both directions (the fresh side pulls as fork, or
// the seeded side pushes as fork), with the peak RSS of every process.
import { mkdtempSync, rmSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Proc } from '../lib/proc.mjs';
import { benchPath } from '../lib/paths.mjs';
import { median } from '../lib/stats.mjs';
import { profileArgs, startSignal, tokenPair, topicName } from '../lib/peers.mjs';
import { startSide, countDocs } from '../lib/sides.mjs';
import { repeat } from '../lib/repeat.mjs';

const RAW_PEER = benchPath('raw/peer.mjs');
/** Batch size of the raw bound: the figure STACK.md measured (about 280k docs/s) used batches of 200. */
const RAW_BATCH = 200;

/** A generous limit for one transfer: a slow but working pair must finish, a hung one must not block the run. */
function transferTimeout(n) {
  return 60_000 + n * 2;
}

// ---------------------------------------------------------------------------------------------------------------
// The raw bound

async function rawOnce(ctx, n) {
  const dir = mkdtempSync(join(ctx.tmp, 'raw-'));
  const file = join(dir, 'recv.ndjson');
  const recv = new Proc('raw recv', RAW_PEER, ['--role', 'recv', '--count', String(n), '--file', file], {
    nodeArgs: profileArgs(ctx.profileDir, 'raw recv'),
  });
  const send = new Proc('raw send', RAW_PEER, ['--role', 'send', '--count', String(n), '--batch', String(RAW_BATCH)], {
    nodeArgs: profileArgs(ctx.profileDir, 'raw send'),
  });
  try {
    // Signaling is relayed by the runner: every `signal` event of one side goes to the other side's stdin.
    recv.onEvent((e) => e.event === 'signal' && send.send(e));
    send.onEvent((e) => e.event === 'signal' && recv.send(e));
    await Promise.all([recv.waitFor('ready'), send.waitFor('ready', 60_000)]);
    const start = await send.waitFor('start', 30_000);
    const done = await recv.waitFor('done', transferTimeout(n));
    const lines = countLines(file);
    return {
      transferMs: done._t - start._t,
      wallMs: done._t - send.startedAt,
      verified: lines === n,
      rss: { seeded: send.peakRss, fresh: recv.peakRss },
    };
  } finally {
    await Promise.all([send.stop(), recv.stop()]);
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runRaw(ctx) {
  const rows = [];
  for (const n of ctx.sizes) {
    const planned = n > HEAVY ? 1 : ctx.runs;
    const row = {
      pair: 'raw',
      label: 'raw bound (data channel + NDJSON append)',
      n,
      batch: RAW_BATCH,
      direction: 'push',
      planned,
      runs: [],
    };
    row.runs = await repeat(ctx, planned, `raw n=${n}`, () => rawOnce(ctx, n));
    rows.push(summariseRow(row));
  }
  return { rows };
}

function countLines(file) {
  const buf = readFileSync(file);
  let lines = 0;
  for (let i = buf.indexOf(10); i !== -1; i = buf.indexOf(10, i + 1)) lines++;
  return lines;
}

// ---------------------------------------------------------------------------------------------------------------
// Replicating pairs

/**
 * One transfer between a seeded side and a fresh side. `spec`: {seeded, fresh, direction, n}, where each side is
 * {kind: 'rxdb', batch} or {kind: 'p2psync', format, batch}; direction 'pull' makes the fresh side the fork (it
 * pulls), 'push' makes the seeded side the fork (it pushes). Roles are forced through the storage tokens.
 * `spec.wrapFresh` runs the fresh side under a command (see Proc).
 */
export async function pairOnce(ctx, spec, signal) {
  const { n } = spec;
  const dir = mkdtempSync(join(ctx.tmp, 'pair-'));
  const [seededToken, freshToken] = tokenPair(spec.direction === 'push' ? false : true);
  const topic = topicName('sync');
  const tag = `${spec.pair} ${spec.direction} ${n}`;
  const procs = [];
  try {
    const prepT = performance.now();
    const seeded = await startSide(ctx, spec.seeded, {
      dir,
      name: 'seeded',
      token: seededToken,
      topic,
      signal,
      seed: n,
      prefix: 'seed',
      tag,
    });
    procs.push(seeded);
    await seeded.ready(transferTimeout(n));
    const prepareMs = performance.now() - prepT;
    const fresh = await startSide(ctx, spec.fresh, {
      dir,
      name: 'fresh',
      token: freshToken,
      topic,
      signal,
      expect: n,
      tag,
      wrap: spec.wrapFresh,
    });
    procs.push(fresh);
    const reachedAt = await fresh.reached(n, transferTimeout(n));
    const [cs, cf] = await Promise.all([seeded.connected(5_000), fresh.connected(5_000)]);
    const connectedAt = Math.min(cs.t, cf.t);
    const result = {
      transferMs: reachedAt - connectedAt,
      wallMs: reachedAt - fresh.proc.startedAt,
      connectMs: connectedAt - fresh.proc.startedAt,
      prepareMs,
      roles: { seeded: cs.role, fresh: cf.role },
      rolesAsForced:
        spec.direction === 'pull'
          ? cf.role === 'fork' && cs.role === 'master'
          : cf.role === 'master' && cs.role === 'fork',
    };
    await Promise.all(procs.map((p) => p.stop()));
    result.rss = { seeded: seeded.peakRss, fresh: fresh.peakRss };
    // The memory target of issue 17 is relative to the store's size: the file of whichever side has one.
    result.storeBytes = statSync(seeded.store ?? fresh.store, { throwIfNoEntry: false })?.size;
    if (fresh.kind === 'p2psync') result.verified = countDocs(fresh.store) >= n;
    return result;
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The measurement plan. RxDB's memory storage answers every change-feed page with a query that scans the whole
 * collection (mingo, about 75 % of the seeded peer's CPU), so an RxDB → RxDB sync costs O(N^2 / batch): 100k
 * documents at batch 20 take minutes. To keep a default run near 10 minutes on 2 cores, only sizes up to
 * FULL_MATRIX_MAX get every pair, direction and batch; larger sizes get the p2psync rows, RxDB at batch 200 and the
 * mixed pairs in the pull direction, and each row is capped by the time budget of lib/repeat.mjs. `--full`
 * runs everything up to HEAVY. Above HEAVY (`--big`) only the raw bound and p2psync → p2psync pulls run, once: any
 * pair with an RxDB side would take hours at a million documents.
 */
const FULL_MATRIX_MAX = 10_000;
const HEAVY = 100_000;

/** How many times a spec runs at size n (0: not measured in this mode). */
export function plannedRuns(ctx, spec, n) {
  const pullOnly = spec.direction !== 'pull';
  const smallRxdbBatch = spec.pair === 'rxdb-rxdb' && spec.batch < 200;
  if (n > HEAVY) return pullOnly || spec.pair !== 'p2p-p2p' ? 0 : 1;
  if (ctx.full || n <= FULL_MATRIX_MAX) return ctx.runs;
  if (spec.pair === 'rxdb-rxdb') return pullOnly || smallRxdbBatch ? 0 : ctx.runs;
  if (spec.pair === 'rxdb-p2p' || spec.pair === 'p2p-rxdb') return pullOnly ? 0 : ctx.runs;
  return ctx.runs;
}

/** Runs each pair spec as planned for every size, sharing one signaling server per scenario. */
async function runPairs(ctx, specs, signalKind) {
  const signal = await startSignal(signalKind);
  const rows = [];
  try {
    for (const n of ctx.sizes) {
      for (const spec of specs) {
        const planned = plannedRuns(ctx, spec, n);
        if (planned === 0) continue;
        const label = `${spec.label} ${spec.direction} batch ${spec.batch ?? 'default'} n=${n}`;
        const runs = await repeat(ctx, planned, label, () => pairOnce(ctx, { ...spec, n }, signal));
        rows.push(summariseRow({ ...spec, n, signal: signalKind, planned, runs }));
      }
    }
  } finally {
    signal.proc.sampleRss();
    await signal.proc.stop();
  }
  return { rows, signal: { kind: signalKind, peakRss: signal.proc.peakRss } };
}

const BOTH = ['pull', 'push'];

export async function runRxdb(ctx) {
  const specs = [];
  for (const batch of [20, 200]) {
    for (const direction of BOTH) {
      specs.push({
        pair: 'rxdb-rxdb',
        label: `RxDB → RxDB`,
        direction,
        batch,
        seeded: { kind: 'rxdb', batch },
        fresh: { kind: 'rxdb', batch },
      });
    }
  }
  return runPairs(ctx, specs, 'rxdb');
}

export async function runP2p(ctx) {
  if (!ctx.avail.join) return { skipped: 'not available yet (`p2psync join` is not built)' };
  const specs = [];
  for (const format of ['json', 'ndjson']) {
    for (const direction of BOTH) {
      specs.push({
        pair: 'p2p-p2p',
        label: `p2psync → p2psync (${format.toUpperCase()})`,
        direction,
        format,
        seeded: { kind: 'p2psync', format, batch: ctx.p2pBatch },
        fresh: { kind: 'p2psync', format, batch: ctx.p2pBatch },
      });
    }
  }
  return runPairs(ctx, specs, ctx.avail.signal ? 'p2psync' : 'rxdb');
}

export async function runMixed(ctx) {
  if (!ctx.avail.join) return { skipped: 'not available yet (`p2psync join` is not built)' };
  const rx = { kind: 'rxdb', batch: ctx.rxdbBatch };
  const p2p = { kind: 'p2psync', format: 'ndjson', batch: ctx.p2pBatch };
  const specs = [];
  for (const direction of BOTH) {
    specs.push({
      pair: 'rxdb-p2p',
      label: 'RxDB → p2psync (NDJSON)',
      direction,
      batch: ctx.rxdbBatch,
      seeded: rx,
      fresh: p2p,
    });
    specs.push({
      pair: 'p2p-rxdb',
      label: 'p2psync (NDJSON) → RxDB',
      direction,
      batch: ctx.rxdbBatch,
      seeded: p2p,
      fresh: rx,
    });
  }
  // Mixed pairs run through RxDB's own signaling server: the setting a p2psync user meets in an RxDB app.
  return runPairs(ctx, specs, 'rxdb');
}

// ---------------------------------------------------------------------------------------------------------------
// Shared helpers

/** Adds medians (over successful runs) to a row. */
export function summariseRow(row) {
  const ok = row.runs.filter((r) => !r.error);
  const transferMs = median(ok.map((r) => r.transferMs));
  row.median = {
    transferMs,
    docsPerSec: transferMs ? Math.round(row.n / (transferMs / 1000)) : undefined,
    wallMs: median(ok.map((r) => r.wallMs)),
    connectMs: median(ok.map((r) => r.connectMs)),
    rssSeeded: median(ok.map((r) => r.rss?.seeded)),
    rssFresh: median(ok.map((r) => r.rss?.fresh)),
    storeBytes: median(ok.map((r) => r.storeBytes)),
  };
  row.ok = ok.length;
  row.errors = row.runs.filter((r) => r.error).map((r) => r.error);
  const roles = ok.map((r) => r.roles).filter(Boolean);
  if (roles.length) row.roles = roles[0];
  row.rolesAsForced = ok.every((r) => r.rolesAsForced !== false);
  row.verified = ok.every((r) => r.verified !== false);
  return row;
}
