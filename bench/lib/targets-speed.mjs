// Issue 17's speed targets, checked against one bench run's results (the sync rows and the latency scenario).
import { int, ms } from './format.mjs';

/** Initial sync of a fresh peer, as a fraction of the raw bound of the same size, at these sizes. */
const OF_RAW = 0.75;
const SIZES = [100_000, 1_000_000];
/** A change in one peer's file visible in the other's, with 10k documents in sync. */
const LIVE_P50_MS = 15;
const LIVE_P99_MS = 50;

/**
 * Table rows (`| target | measured | status |`) for issue 17's speed targets. `rows` are the initial-sync rows of
 * every sync scenario; `check(ok)` renders a status.
 */
export function speedTargetRows(rows, latency, check) {
  const out = [];
  const parts = [];
  let ok = true;
  let any = false;
  for (const n of SIZES) {
    const raw = rows.find((r) => r.pair === 'raw' && r.n === n)?.median.docsPerSec;
    for (const format of ['json', 'ndjson']) {
      const r = rows.find(
        (x) =>
          x.pair === 'p2p-p2p' && x.n === n && x.format === format && x.direction === 'pull' && x.median.docsPerSec,
      );
      if (!r || !raw) continue;
      const share = r.median.docsPerSec / raw;
      any = true;
      ok &&= share >= OF_RAW;
      parts.push(`${format.toUpperCase()} ${int(n)}: ${Math.round(share * 100)} %`);
    }
  }
  out.push(
    `| initial sync of a fresh peer >= ${Math.round(OF_RAW * 100)} % of the raw bound, 100k and 1M, JSON and NDJSON (issue 17) | ${parts.join('; ')} | ${check(any ? ok : undefined)} |`,
  );
  const live = (latency?.rows ?? []).filter((r) => r.kind === 'p2psync' && r.p50Ms !== undefined);
  const text = live
    .map(
      (r) => `${r.label}, ${r.direction === 'pull' ? 'A is master' : 'A is fork'}: ${ms(r.p50Ms)} / ${ms(r.p99Ms)} ms`,
    )
    .join('; ');
  const liveOk = live.length ? live.every((r) => r.p50Ms < LIVE_P50_MS && r.p99Ms < LIVE_P99_MS) : undefined;
  out.push(
    `| live latency at ${int(latency?.docs ?? 10_000)} docs, p50 < ${LIVE_P50_MS} ms and p99 < ${LIVE_P99_MS} ms, every p2psync row (issue 17) | p50 / p99: ${text} | ${check(liveOk)} |`,
  );
  return out;
}
