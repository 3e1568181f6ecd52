// Conflict-heavy run (issue 12): two peers hold the same N documents, both edit every one of them while apart, then
// reconnect. Every document is a conflict the fork resolves: `master` (RxDB's default), `merge` (three-way per field;
// here every document also has one field changed on both sides, so every merge keeps a losing version) and a
// `--conflict-handler` module (an async RxDB-shaped handler). Losing versions go to a real kept-versions journal on
// disk, so the cost of keeping them durably is in the numbers. In-process over an in-memory link: this measures the
// conflict machinery, not WebRTC (the sync scenarios do that).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import { median, round } from '../lib/stats.mjs';
import { ROOT } from '../lib/paths.mjs';

const HANDLER = `export default {
  isEqual: (a, b) => JSON.stringify(a) === JSON.stringify(b),
  resolve: async ({ newDocumentState: mine, realMasterState: theirs }) => ({ ...theirs, ...mine, n: Math.max(mine.n, theirs.n) }),
};
`;

async function load() {
  const dist = (p) => import(pathToFileURL(join(ROOT, 'dist', p)).href);
  const [{ MemoryStore }, { createMemoryLinkPair }, { replicate }, conflicts, { masterWins }, rule] = await Promise.all(
    [
      dist('store/memory-store.js'),
      dist('transport/memory-link.js'),
      dist('replication/peer-replication.js'),
      dist('conflicts/index.js'),
      dist('replication/conflict.js'),
      dist('replication/master-rule.js'),
    ],
  );
  return { MemoryStore, createMemoryLinkPair, replicate, conflicts, masterWins, rule };
}

function connect(m, a, b, strategy, keepers) {
  const [la, lb] = m.createMemoryLinkPair('peer-a', 'peer-b');
  const opts = (store, link, keeper) => ({
    store,
    meta: store,
    link,
    topic: 'bench-conflicts',
    conflict: strategy,
    batchSize: 1000,
    ...(keeper ? { keeper } : {}),
  });
  return { reps: [m.replicate(opts(a, la, keepers?.[0])), m.replicate(opts(b, lb, keepers?.[1]))], links: [la, lb] };
}

function idle(reps) {
  return new Promise((resolve) => {
    const check = () => {
      if (reps.every((r) => r.isIdle())) resolve();
    };
    for (const r of reps) r.onStateChange(check);
    check();
  });
}

async function close(pair) {
  await Promise.all(pair.reps.map((r) => r.close()));
  for (const l of pair.links) l.close();
}

async function edit(store, n, make) {
  const ids = Array.from({ length: n }, (_, i) => `doc-${String(i).padStart(6, '0')}`);
  const current = await store.get(ids);
  await store.bulkWrite(
    ids.map((id) => ({ document: make(current.get(id)), expected: current.get(id) })),
    { kind: 'local' },
  );
}

/** One run: returns ms from reconnect until both sides are idle with equal content, and the conflicts resolved. */
async function once(m, n, strategyName, dir, handlerFile) {
  // Tokens that make `a` the master of `b`.
  const [ta, tb] = m.rule.isMaster('aaaaaaaaaa', 'bbbbbbbbbb')
    ? ['aaaaaaaaaa', 'bbbbbbbbbb']
    : ['bbbbbbbbbb', 'aaaaaaaaaa'];
  const a = new m.MemoryStore({ storageToken: ta });
  const b = new m.MemoryStore({ storageToken: tb });
  await a.bulkWrite(
    Array.from({ length: n }, (_, i) => ({
      document: {
        id: `doc-${String(i).padStart(6, '0')}`,
        n: i,
        x: 0,
        y: 0,
        z: 0,
        title: `document ${i}`,
        _deleted: false,
      },
      expected: null,
    })),
    { kind: 'local' },
  );
  const master = m.masterWins();
  const first = connect(m, a, b, master);
  await idle(first.reps);
  while ((await b.all()).length < n) await idle(first.reps);
  await close(first);
  // Apart: the master side changes x and y, the fork y and z: y conflicts in every document.
  await edit(a, n, (d) => ({ ...d, x: 1, y: 'master' }));
  await edit(b, n, (d) => ({ ...d, y: 'fork', z: 1 }));
  const strategy =
    strategyName === 'handler'
      ? await m.conflicts.loadConflictHandler(handlerFile, 'id')
      : strategyName === 'merge'
        ? m.conflicts.mergeStrategy()
        : master;
  const keptFile = join(dir, `${strategyName}-${performance.now()}.conflicts`);
  const keeper = await m.conflicts.FileKeptVersions.open(keptFile, { limit: 10 });
  const t0 = performance.now();
  const pair = connect(m, a, b, strategy, [undefined, keeper]);
  const fork = pair.reps[1];
  for (;;) {
    await idle(pair.reps);
    if (fork.stats.conflicts >= n) {
      const [da, db] = await Promise.all([a.all(), b.all()]);
      if (JSON.stringify(da) === JSON.stringify(db)) break;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  const ms = performance.now() - t0;
  const kept = [...(await keeper.list()).values()].reduce((s, v) => s + v.length, 0);
  await close(pair);
  await keeper.close();
  return { ms, conflicts: fork.stats.conflicts, kept };
}

export async function runConflicts(ctx) {
  const m = await load();
  if (!m.conflicts.mergeStrategy) return { skipped: 'not available yet' };
  const dir = mkdtempSync(join(ctx.tmp, 'conflicts-'));
  const handlerFile = join(dir, 'handler.mjs');
  writeFileSync(handlerFile, HANDLER);
  const n = ctx.conflictDocs ?? 10_000;
  const rows = [];
  try {
    const runs = { master: [], merge: [], handler: [] };
    // Interleaved, so load on the shared machine hits every strategy alike.
    for (let r = 0; r < ctx.runs; r++) {
      for (const s of Object.keys(runs)) {
        ctx.log(`conflicts ${s} n=${n} run ${r + 1}/${ctx.runs}`);
        runs[s].push(await once(m, n, s, dir, handlerFile));
      }
    }
    const base = median(runs.master.map((x) => x.ms));
    for (const [s, xs] of Object.entries(runs)) {
      const ms = median(xs.map((x) => x.ms));
      rows.push({
        strategy: s,
        n,
        ms: round(ms),
        docsPerSec: round((n / ms) * 1000),
        vsMaster: round(ms / base, 2),
        conflicts: xs[0].conflicts,
        kept: xs[0].kept,
        runs: xs.map((x) => round(x.ms)),
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { rows };
}

export function renderConflicts(result) {
  const lines = [
    '| strategy | docs in conflict | resolved in ms (median) | docs/s | vs master | versions kept | runs (ms) |',
    '|---|---:|---:|---:|---:|---:|---|',
  ];
  for (const r of result.rows)
    lines.push(
      `| ${r.strategy} | ${r.n} | ${r.ms} | ${r.docsPerSec} | ${r.vsMaster}x | ${r.kept} | ${r.runs.join(', ')} |`,
    );
  return lines.join('\n');
}
