// Fan-out (issue 5 item 5): one seeded peer and three fresh ones join the same topic at once and form a full mesh
// (6 pairs); the clock runs from spawning the three fresh peers until the last of them holds all N documents.
// Roles follow from random storage tokens, as in real use; the table reports how many pairs each peer forked.
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startSignal, randomToken, topicName } from '../lib/peers.mjs';
import { startSide } from '../lib/sides.mjs';
import { median, max } from '../lib/stats.mjs';
import { secs, mb, int } from '../lib/format.mjs';
import { repeat } from '../lib/repeat.mjs';

const FRESH_PEERS = 3;

export async function runFanout(ctx) {
  const kinds = [
    {
      kind: 'p2psync',
      label: 'p2psync mesh (NDJSON)',
      side: { kind: 'p2psync', format: 'ndjson', batch: ctx.p2pBatch },
    },
    { kind: 'rxdb', label: `RxDB mesh (batch ${ctx.rxdbBatch})`, side: { kind: 'rxdb', batch: ctx.rxdbBatch } },
  ];
  const rows = [];
  for (const k of kinds) {
    for (const n of ctx.fanoutSizes) {
      if (k.kind === 'p2psync' && !ctx.avail.join) {
        rows.push({ label: k.label, kind: k.kind, n, skipped: 'not available yet (`p2psync join` is not built)' });
        continue;
      }
      const signal = await startSignal(k.kind === 'p2psync' && ctx.avail.signal ? 'p2psync' : 'rxdb');
      let runs;
      try {
        runs = await repeat(ctx, ctx.runs, `fan-out ${k.label} n=${n}`, () => meshOnce(ctx, k.side, n, signal));
      } finally {
        await signal.proc.stop();
      }
      const ok = runs.filter((x) => !x.error);
      rows.push({
        label: k.label,
        kind: k.kind,
        n,
        allMs: median(ok.map((x) => x.allMs)),
        firstMs: median(ok.map((x) => x.firstMs)),
        maxRss: median(ok.map((x) => x.maxRss)),
        forks: ok[0]?.forks,
        ok: ok.length,
        planned: ctx.runs,
        runs,
        errors: runs.filter((x) => x.error).map((x) => x.error),
      });
    }
  }
  return { rows };
}

async function meshOnce(ctx, side, n, signal) {
  const dir = mkdtempSync(join(ctx.tmp, 'mesh-'));
  const topic = topicName('mesh');
  const peers = [];
  try {
    const seeded = await startSide(ctx, side, {
      dir,
      name: 'seeded',
      token: randomToken(),
      topic,
      signal,
      seed: n,
      prefix: 'seed',
    });
    peers.push(seeded);
    await seeded.ready(120_000);
    const fresh = [];
    for (let i = 0; i < FRESH_PEERS; i++) {
      fresh.push(
        await startSide(ctx, side, { dir, name: `fresh${i + 1}`, token: randomToken(), topic, signal, expect: n }),
      );
    }
    peers.push(...fresh);
    const t0 = Math.min(...fresh.map((p) => p.proc.startedAt));
    const reached = await Promise.all(fresh.map((p) => p.reached(n, 60_000 + n * 4)));
    const forks = peers.map(
      (p) =>
        p.proc.events.filter((e) => (e.event === 'peer' || e.event === 'peer-connected') && e.role === 'fork').length,
    );
    await Promise.all(peers.map((p) => p.stop()));
    return {
      allMs: Math.max(...reached) - t0,
      firstMs: Math.min(...reached) - t0,
      maxRss: max(peers.map((p) => p.peakRss)),
      rss: peers.map((p) => p.peakRss),
      forks,
    };
  } finally {
    await Promise.all(peers.map((p) => p.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}

export function renderFanout(s) {
  const lines = [
    `One seeded peer and ${FRESH_PEERS} fresh peers started together on one topic (a full mesh of ${((FRESH_PEERS + 1) * FRESH_PEERS) / 2} pairs).`,
    '**all** is from spawning the fresh peers until the last one holds N documents (start-up and connects included);',
    '**first** until the first one does. **forks per peer** (seeded first) is from the first run.',
    '',
    '| mesh | documents | all s | first s | docs/s into the mesh | x RxDB | forks per peer | max peak RSS MB | runs ok |',
    '|---|---:|---:|---:|---:|---:|---|---:|---:|',
  ];
  for (const r of s.rows) {
    if (r.skipped) {
      lines.push(`| ${r.label} | ${int(r.n)} | _${r.skipped}_ | | | | | | |`);
      continue;
    }
    const base = s.rows.find((x) => x.kind === 'rxdb' && x.n === r.n && x.allMs)?.allMs;
    const ratio = r.kind === 'p2psync' && base && r.allMs ? `${(base / r.allMs).toFixed(1)}x` : '';
    const rate = r.allMs ? int((r.n * FRESH_PEERS) / (r.allMs / 1000)) : '';
    const err = r.errors?.length ? ` (${r.errors[0].split('\n')[0].slice(0, 160)})` : '';
    lines.push(
      `| ${r.label} | ${int(r.n)} | ${secs(r.allMs)} | ${secs(r.firstMs)} | ${rate} | ${ratio} | ${r.forks?.join(' / ') ?? ''} | ${mb(r.maxRss)} | ${r.ok}/${r.planned ?? r.runs.length}${err} |`,
    );
  }
  return lines.join('\n');
}
