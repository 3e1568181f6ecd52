// Restart with no changes (issue 5 item 4): A and B hold the same N documents; one of them is stopped gracefully
// and started again on the same store. Nothing changed, so nothing should travel: the documents re-sent are
// counted from the `pulled` / `pushed` events of both processes, and the restarted peer is timed until `synced`.
// First the fork is restarted, then the master. RxDB has no row here: its memory storage does not survive a restart.
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { P2pPeer, startSignal, tokenPair, topicName } from '../lib/peers.mjs';
import { startSide } from '../lib/sides.mjs';
import { median } from '../lib/stats.mjs';
import { secs, mb } from '../lib/format.mjs';
import { repeat } from '../lib/repeat.mjs';

/**
 * After the restarted peer reports `synced`, late transfers (a RESYNC answered after the event) would still count
 * as re-sent documents: keep counting for this long before closing the window.
 */
const SETTLE_MS = 1_500;

export async function runRestart(ctx) {
  if (!ctx.avail.join) return { skipped: 'not available yet (`p2psync join` is not built)' };
  const signal = await startSignal(ctx.avail.signal ? 'p2psync' : 'rxdb');
  const rows = [];
  try {
    for (const format of ['ndjson', 'json']) {
      const runs = await repeat(ctx, ctx.runs, `restart ${format} with ${ctx.latencyDocs} documents`, () =>
        restartOnce(ctx, format, signal),
      );
      for (const which of ['fork', 'master']) {
        const ok = runs.filter((x) => !x.error).map((x) => x[which]);
        rows.push({
          label: `p2psync ↔ p2psync (${format.toUpperCase()})`,
          format,
          restarted: which,
          docs: ctx.latencyDocs,
          resent: ok.length ? Math.max(...ok.map((x) => x.resent)) : undefined,
          syncedMs: median(ok.map((x) => x.syncedMs)),
          connectMs: median(ok.map((x) => x.connectMs)),
          rss: median(ok.map((x) => x.rss)),
          ok: ok.length,
          runs: ctx.runs,
          errors: runs.filter((x) => x.error).map((x) => x.error),
        });
      }
    }
  } finally {
    await signal.proc.stop();
  }
  return { rows };
}

async function restartOnce(ctx, format, signal) {
  const n = ctx.latencyDocs;
  const dir = mkdtempSync(join(ctx.tmp, 'restart-'));
  const [tokenA, tokenB] = tokenPair(true); // A is master, B is fork
  const topic = topicName('restart');
  const side = { kind: 'p2psync', format, batch: ctx.p2pBatch };
  const live = new Set();
  const start = (p) => (live.add(p), p);
  try {
    const a = start(
      await startSide(ctx, side, { dir, name: 'a', token: tokenA, topic, signal, seed: n, prefix: 'seed' }),
    );
    await a.ready();
    let b = start(await startSide(ctx, side, { dir, name: 'b', token: tokenB, topic, signal }));
    await b.reached(n, 120_000);

    // Restart the fork (B): it must resume from its saved checkpoints.
    await b.stop();
    live.delete(b);
    const fork = await measureRestart(() => start(restarted(b, signal, topic, ctx)), a, n);
    b = fork.peer;

    // Restart the master (A): the fork's checkpoint must still be valid against A's reopened store.
    await a.stop();
    live.delete(a);
    const master = await measureRestart(() => start(restarted(a, signal, topic, ctx)), b, n);
    return { fork: fork.result, master: master.result };
  } finally {
    await Promise.all([...live].map((p) => p.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A new process on the same store as `old` (the storage token comes from the sidecar). */
function restarted(old, signal, topic, ctx) {
  return new P2pPeer({
    label: `${old.proc.label} (restarted)`,
    signal: signal.url,
    topic,
    store: old.store,
    batch: ctx.p2pBatch,
    profileDir: ctx.profileDir,
  });
}

async function measureRestart(spawnPeer, other, n) {
  const mark = performance.now();
  const peer = spawnPeer();
  const syncedAt = await peer.reached(n, 60_000);
  const conn = await peer.connected(5_000);
  // A fixed window, not a synchronisation: anything re-sent within it counts against the restart.
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const mine = peer.movedSince(mark);
  const theirs = other.movedSince(mark);
  peer.proc.sampleRss();
  return {
    peer,
    result: {
      resent: mine.pulled + mine.pushed + theirs.pulled + theirs.pushed,
      moved: { restarted: mine, other: theirs },
      syncedMs: syncedAt - peer.proc.startedAt,
      connectMs: conn.t - peer.proc.startedAt,
      rss: peer.peakRss,
    },
  };
}

export function renderRestart(s) {
  const lines = [
    'A (master) and B (fork) hold the same documents; one is stopped (SIGTERM) and started again on the same store.',
    '**re-sent** adds up the `count` of every `pulled` and `pushed` event of both processes from the restart until',
    `${SETTLE_MS / 1000} s after the restarted peer's \`synced\` (worst run); **synced** is from spawn to \`synced\`.`,
    '',
    '| pair | restarted | documents | re-sent | connect s | synced s | peak RSS MB | runs ok |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of s.rows) {
    const err = r.errors?.length ? ` (${r.errors[0].split('\n')[0].slice(0, 160)})` : '';
    lines.push(
      `| ${r.label} | ${r.restarted} | ${r.docs.toLocaleString('en-US')} | ${r.resent ?? ''} | ${secs(r.connectMs)} | ${secs(r.syncedMs)} | ${mb(r.rss)} | ${r.ok}/${r.runs}${err} |`,
    );
  }
  return lines.join('\n');
}
