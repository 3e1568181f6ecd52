// The "Durability cost" section of docs/BENCHMARKS.md, from bench/results/durability.json (npm run bench:durability).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RESULTS_DIR } from './paths.mjs';
import { int, ms, secs } from './format.mjs';

/** Issue 10's target: with durability on, an initial sync of 100k documents at most 10 % slower. */
const TARGET_N = 100_000;
const TARGET_TIME_RATIO = 1.1;

const x = (r) => (typeof r === 'number' ? `${r.toFixed(2)}x` : '—');
const range = (xs) => {
  const v = xs.filter((a) => typeof a === 'number');
  return v.length ? `${Math.min(...v).toFixed(2)}-${Math.max(...v).toFixed(2)}` : '—';
};
const loads = (rows, pick) =>
  rows.flatMap((row) =>
    Object.values(pick(row))
      .flat()
      .map((r) => r.load),
  );

export function renderDurabilitySection() {
  const file = join(RESULTS_DIR, 'durability.json');
  if (!existsSync(file)) return undefined;
  const r = JSON.parse(readFileSync(file, 'utf8'));
  const [before, after] = r.variants;
  const sync = r.sync ?? [];
  const latency = r.latency ?? [];
  const all = [...loads(sync, (row) => row.runs), ...loads(latency, (row) => row.rounds)].filter(
    (v) => typeof v === 'number',
  );
  const out = ['## Durability cost (issue 10)', ''];
  out.push(
    `Measured by \`npm run bench:durability\` (bench/durability.mjs) on ${r.date.slice(0, 16).replace('T', ' ')} UTC, ${r.seconds ?? '?'} s; raw numbers in bench/results/durability.json.`,
    `**before** is ${before.sha} ("${before.subject}"), the last commit without durability: acknowledgements`,
    `from memory. **after** is ${after.sha}${after.uncommittedChanges ? ' (with uncommitted changes)' : ''}: the write-ahead journal with group commit, \`masterWrite\``,
    'answered once durable, pull checkpoints journaled after their pages. Each build runs with its own signaling server;',
    'the two alternate run by run (the order flips every round) so that load on the shared machine hits both alike.',
    `**Load average** (1 min): ${r.loadavg.start.join(' / ')} at the start, ${(r.loadavg.end ?? []).join(' / ') || '?'} at the end, ${all.length ? `${Math.min(...all)}-${Math.max(...all)}` : '?'} across the runs.`,
    '',
  );
  if (sync.length) {
    out.push(
      '### Initial sync',
      '',
      'docs/s from the median transfer time (first replication pair up → the fresh peer holds N), as in "Initial sync"',
      'above. **time ratio** = after / before of the median transfer times (1.10 = 10 % slower); **per-round** shows the',
      'range of the ratios of the runs paired in one round, which says how much of a difference is noise.',
      `Below ${int(TARGET_N + 1)} documents, ${r.config.runs} rounds in both directions; above, one run per side, pull only.`,
      '',
      '| documents | store | who moves the data | before docs/s | after docs/s | before s | after s | time ratio | per-round | runs ok |',
      '|---:|---|---|---:|---:|---:|---:|---:|---:|---|',
    );
    for (const row of sync) {
      const who = row.direction === 'pull' ? 'fresh side pulls (fresh = fork)' : 'seeded side pushes (fresh = master)';
      out.push(
        `| ${int(row.n)} | ${row.format.toUpperCase()} | ${who} | ${int(row.before.docsPerSec)} | ${int(row.after.docsPerSec)} | ${secs(row.before.transferMs)} | ${secs(row.after.transferMs)} | ${x(row.timeRatio)} | ${range(row.pairs)} | ${row.before.ok}/${row.runs.before.length}, ${row.after.ok}/${row.runs.after.length} |`,
      );
    }
    out.push('');
    const target = sync.filter((row) => row.n === TARGET_N && typeof row.timeRatio === 'number');
    if (target.length) {
      const missed = target.filter((row) => row.timeRatio > TARGET_TIME_RATIO);
      out.push(
        `Target at ${int(TARGET_N)} documents, at most 10 % slower (time ratio <= ${TARGET_TIME_RATIO.toFixed(2)}): ` +
          (missed.length === 0
            ? '**met** in every row.'
            : `**missed** in ${missed.map((row) => `${row.format.toUpperCase()} ${row.direction} (${x(row.timeRatio)})`).join(', ')}; met in ${target.length - missed.length} of ${target.length} rows. See "What durability costs" in docs/STORES.md.`),
        '',
      );
    }
    const failed = sync.flatMap((row) =>
      ['before', 'after'].flatMap((v) =>
        row.runs[v]
          .filter((run) => run.error)
          .map((run) => `${v} ${row.format} ${row.direction} n=${row.n}: ${run.error.split('\n')[0].slice(0, 200)}`),
      ),
    );
    if (failed.length) out.push('Failed runs:', '', ...failed.slice(0, 8).map((f) => `- ${f}`), '');
  }
  if (latency.length) {
    out.push(
      '### Live latency',
      '',
      `${int(latency[0].docs)} documents in sync, then sequential writes on A, each timed until it is in B's file (as in`,
      `"Live latency" above); ${r.config.latencyRounds} interleaved rows per side, the nearest-rank median of the rows' percentiles (of two: the lower).`,
      '',
      '| write, roles | before p50 ms | after p50 ms | p50 ratio | before p99 ms | after p99 ms | p99 ratio | rows ok |',
      '|---|---:|---:|---:|---:|---:|---:|---|',
    );
    for (const row of latency) {
      out.push(
        `| ${row.label} | ${ms(row.before.p50Ms)} | ${ms(row.after.p50Ms)} | ${x(row.p50Ratio)} | ${ms(row.before.p99Ms)} | ${ms(row.after.p99Ms)} | ${x(row.p99Ratio)} | ${row.before.ok}, ${row.after.ok} |`,
      );
    }
    out.push('');
  }
  const fsync = r.fsync ?? [];
  if (fsync.length) {
    const when = r.fsyncRun
      ? `${r.fsyncRun.date.slice(0, 16).replace('T', ' ')} UTC, load average ${r.fsyncRun.loadavg.start.join(' / ')} at the start`
      : 'the same run';
    out.push(
      '### Where the time goes: fsync',
      '',
      `One ${int(fsync[0].n)}-document run per store, direction and build, the fresh peer under \`strace -f -w -c\``,
      `(\`--fsync\`; ${when}): fsync + fdatasync calls over the peer's life (start, transfer, shutdown), the wall time`,
      'spent inside them summed over threads (libuv runs them on its pool, so they overlap the main thread), and that',
      "time as a share of the traced run's transfer time. strace and the load slow every run here: compare the columns.",
      '',
      '| store | who moves the data | before fsyncs | after fsyncs | before s in fsync | after s in fsync | before transfer s | after transfer s | before share | after share |',
      '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    );
    const pct = (v) => (typeof v === 'number' ? `${Math.round(v * 100)} %` : '—');
    const cell = (v, f) => (v?.error ? 'failed' : f(v));
    for (const row of fsync) {
      const who = row.direction === 'pull' ? 'fresh side pulls' : 'seeded side pushes';
      out.push(
        `| ${row.format.toUpperCase()} | ${who} | ${cell(row.before, (v) => int(v.fsyncCalls))} | ${cell(row.after, (v) => int(v.fsyncCalls))} | ` +
          `${cell(row.before, (v) => v.fsyncSeconds?.toFixed(2) ?? '—')} | ${cell(row.after, (v) => v.fsyncSeconds?.toFixed(2) ?? '—')} | ` +
          `${cell(row.before, (v) => secs(v.transferMs))} | ${cell(row.after, (v) => secs(v.transferMs))} | ${cell(row.before, (v) => pct(v.share))} | ${cell(row.after, (v) => pct(v.share))} |`,
      );
    }
    out.push('');
  }
  out.push(
    'Reproduce: `npm run bench:durability` (about 25 minutes on 2 cores; `-- --sizes 10000,100000` skips the million,',
    '`-- --before REV --after REV` compares any two commits, each built once into a temporary directory;',
    '`-- --only-fsync` adds the fsync table to the last run).',
    '',
  );
  return out.join('\n');
}
