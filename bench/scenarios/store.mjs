// Store benchmark (issue 3 item 11): open, full change-feed scan and a 10k-change burst at 10k and 100k documents,
// JSON and NDJSON, each case in its own child process (bench/store-case.mjs) so its peak RSS is its own.
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { runToEnd } from '../lib/proc.mjs';
import { median, round } from '../lib/stats.mjs';
import { benchPath } from '../lib/paths.mjs';

const CASE_SCRIPT = benchPath('store-case.mjs');

/** Runs every (format, size) case `ctx.runs` times and returns the scenario result. */
export async function runStore(ctx) {
  const cases = [];
  for (const n of ctx.sizes) {
    for (const format of ['json', 'ndjson']) {
      const runs = [];
      for (let r = 0; r < ctx.runs; r++) {
        const dir = mkdtempSync(join(ctx.tmp, `store-${format}-${n}-`));
        ctx.log(`store ${format} n=${n} run ${r + 1}/${ctx.runs}`);
        const res = await runToEnd(
          `store-case ${format} ${n}`,
          CASE_SCRIPT,
          ['--dir', dir, '--format', format, '--n', String(n)],
          {
            timeoutMs: 600_000,
          },
        );
        rmSync(dir, { recursive: true, force: true });
        const ev = res.events.find((e) => e.event === 'result' || e.event === 'unavailable');
        if (ev?.event === 'unavailable') return { skipped: `not available yet (${ev.reason})` };
        if (!ev) {
          runs.push({
            error: `exit ${res.code ?? res.signal}: ${res.stderr.trim().split('\n').slice(-3).join(' ').slice(0, 300)}`,
          });
          continue;
        }
        delete ev._t;
        delete ev.event;
        runs.push(ev);
      }
      cases.push(summarise(format, n, runs));
    }
  }
  return { cases };
}

const MEDIAN_FIELDS = [
  'openColdMs',
  'openWarmMs',
  'scanMs',
  'burstMs',
  'burstFlushMs',
  'closeMs',
  'peakRss',
  'burstFileWrites',
  'burstSidecarAppends',
];

function summarise(format, n, runs) {
  const ok = runs.filter((r) => !r.error);
  const med = {};
  for (const f of MEDIAN_FIELDS) med[f] = median(ok.map((r) => r[f]));
  return {
    format,
    n,
    fileBytes: ok[0]?.fileBytes,
    burst: ok[0]?.burst,
    runs,
    median: med,
    errors: runs.filter((r) => r.error).map((r) => r.error),
  };
}

/** Markdown for the store section. */
export function renderStore(result) {
  const lines = [];
  lines.push(
    '| format | docs | file MB | open (cold) ms | open (warm) ms | feed scan ms | scan docs/s | 10k burst ms | burst + flush ms | file rewrites | peak RSS MB |',
  );
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const c of result.cases) {
    const m = c.median;
    if (m.openColdMs === undefined) {
      lines.push(`| ${c.format} | ${c.n} | | failed: ${c.errors[0] ?? 'no result'} | | | | | | | |`);
      continue;
    }
    lines.push(
      `| ${c.format} | ${c.n.toLocaleString('en-US')} | ${round(c.fileBytes / 1e6, 1)} | ${fmt(m.openColdMs)} | ${fmt(m.openWarmMs)} | ${fmt(m.scanMs)} | ` +
        `${Math.round(c.n / (m.scanMs / 1000)).toLocaleString('en-US')} | ${fmt(m.burstMs)} | ${fmt(m.burstFlushMs)} | ${m.burstFileWrites} | ${round(m.peakRss / 2 ** 20)} |`,
    );
  }
  return lines.join('\n');
}

function fmt(ms) {
  return ms === undefined ? '' : ms < 10 ? String(round(ms, 1)) : String(Math.round(ms));
}
