#!/usr/bin/env node
// `npm run bench:durability`: what durability (issue 10: the write-ahead journal, group commit, `masterWrite`
// answered once durable) costs. Builds the last commit before durability (or any --before REV) in a directory of its
// own, then measures it and this checkout side by side, interleaved run by run, on the same machine and in the same
// minutes: initial sync at 10k / 100k / 1M documents (JSON and NDJSON, both directions below 1M) and live latency.
// Writes bench/results/durability.json; docs/BENCHMARKS.md shows it ("Durability cost"), re-rendered at the end.
import { parseArgs } from 'node:util';
import { execFileSync, execSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { machineInfo } from './lib/machine.mjs';
import { ROOT, RESULTS_DIR } from './lib/paths.mjs';
import { startSignal } from './lib/peers.mjs';
import { stopAll, killChildrenOnExit } from './lib/proc.mjs';
import { attempt } from './lib/repeat.mjs';
import { median, round } from './lib/stats.mjs';
import { pairOnce } from './scenarios/sync.mjs';
import { latencyRow } from './scenarios/latency.mjs';

const HELP = `Usage: node bench/durability.mjs [options]      (npm run bench:durability -- [options])

Options:
  --before REV        the build without durability (default: the parent of the commit that added
                      src/store/write-ahead.ts); built once into $TMPDIR/p2psync-build-<sha> (git archive + npm ci)
  --after REV         the build with it (default: this checkout as it is, built by npm run build)
  --sizes LIST        document counts (default 10000,100000,1000000); above 100k: the pull direction, once per side
  --runs N            interleaved runs per side and row below 1M (default 3)
  --latency-rounds N  interleaved live-latency rows per side (default 2; 0 skips latency)
  --latency-writes N  writes per latency row (default 200)
  --latency-docs N    documents in sync during the latency rows (default 10000)
  --only-sync         skip latency;  --only-latency  skip the initial sync
  --fsync             add the fsync share: one 100k run per store, direction and side with the fresh peer under
                      strace -f -w -c (needs strace); --only-fsync runs that part alone, keeping the rest of the file
  --no-write          print the results only
  -h, --help
`;

/** Above this size a row runs once per side, in the pull direction only (a 1M run takes minutes on 2 cores). */
const HEAVY = 100_000;
/** Documents of the fsync runs (`--fsync`): the size of issue 10's target. */
const FSYNC_N = 100_000;

function options(argv) {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      before: { type: 'string' },
      after: { type: 'string' },
      sizes: { type: 'string', default: '10000,100000,1000000' },
      runs: { type: 'string', default: '3' },
      'latency-rounds': { type: 'string', default: '2' },
      'latency-writes': { type: 'string', default: '200' },
      'latency-docs': { type: 'string', default: '10000' },
      'only-sync': { type: 'boolean', default: false },
      'only-latency': { type: 'boolean', default: false },
      fsync: { type: 'boolean', default: false },
      'only-fsync': { type: 'boolean', default: false },
      'no-write': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  const num = (name) => {
    const x = Number(v[name]);
    if (!Number.isInteger(x) || x < 0) throw new Error(`--${name} must be a whole number`);
    return x;
  };
  const sizes = v.sizes.split(',').map(Number);
  if (sizes.some((n) => !Number.isInteger(n) || n < 1)) throw new Error('--sizes must list whole numbers');
  return {
    help: v.help,
    before: v.before,
    after: v.after,
    sizes,
    runs: Math.max(1, num('runs')),
    latencyRounds: v['only-sync'] || v['only-fsync'] ? 0 : num('latency-rounds'),
    latencyWrites: num('latency-writes'),
    latencyDocs: num('latency-docs'),
    sync: !v['only-latency'] && !v['only-fsync'],
    fsync: v.fsync || v['only-fsync'],
    write: !v['no-write'],
  };
}

function git(args) {
  return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
}

/** The last commit before durability: the parent of the commit that added the write-ahead journal. */
function lastCommitBeforeDurability() {
  const added = git(['log', '--diff-filter=A', '--format=%H', '--', 'src/store/write-ahead.ts']).split('\n').pop();
  if (!added) throw new Error('no commit adds src/store/write-ahead.ts here: pass --before REV');
  return git(['rev-parse', `${added}^`]);
}

function describe(rev) {
  return { sha: git(['rev-parse', '--short', rev]), subject: git(['log', '-1', '--format=%s', rev]) };
}

/**
 * A build of `rev` in a directory of its own (kept in $TMPDIR and reused: `npm ci` takes a minute or two). Built
 * from `git archive`, so the repository's worktree list stays untouched; a half-built directory is redone.
 */
function buildOf(rev, log) {
  const sha = git(['rev-parse', rev]);
  const dir = join(tmpdir(), `p2psync-build-${sha.slice(0, 12)}`);
  const ready = join(dir, '.bench-ready');
  if (existsSync(ready)) return dir;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  log(`building ${sha.slice(0, 7)} in ${dir} (git archive, npm ci, npm run build)`);
  execSync(`git archive --format=tar ${sha} | tar -x -C ${JSON.stringify(dir)}`, { cwd: ROOT, stdio: 'inherit' });
  // npm ci runs `prepare`, which builds dist/.
  execSync('npm ci --no-audit --no-fund --prefer-offline', { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  if (!existsSync(join(dir, 'dist/store/open.js'))) throw new Error(`the build of ${sha} has no dist/store/open.js`);
  writeFileSync(ready, `${sha}\n`);
  return dir;
}

const load1 = () => Math.round(loadavg()[0] * 10) / 10;

/** Runs `fn(variant)` for both variants, in alternating order from round to round (drift hits both sides alike). */
async function interleaved(variants, r, fn) {
  const order = r % 2 === 0 ? variants : [...variants].reverse();
  const out = {};
  for (const v of order) out[v.name] = await fn(v);
  return out;
}

function ratio(after, before) {
  return typeof after === 'number' && typeof before === 'number' && before > 0 ? round(after / before, 3) : undefined;
}

/** Pushes one row per size, store and direction into `rows` (saved after each row: an interrupted run keeps them). */
async function measureSync(ctx, variants, signals, rows) {
  for (const n of ctx.sizes) {
    const heavy = n > HEAVY;
    for (const format of ['ndjson', 'json']) {
      for (const direction of heavy ? ['pull'] : ['pull', 'push']) {
        const row = { n, format, direction, runs: { before: [], after: [] }, pairs: [] };
        for (let r = 0; r < (heavy ? 1 : ctx.runs); r++) {
          const got = await interleaved(variants, r, async (v) => {
            ctx.log(`sync ${format} ${direction} n=${n} ${v.name} (round ${r + 1}, load ${load1()})`);
            const side = { kind: 'p2psync', format, root: v.root };
            const res = await attempt(() =>
              pairOnce(ctx, { pair: 'p2p-p2p', n, direction, seeded: side, fresh: side }, signals[v.name]),
            );
            const run = res.error
              ? { error: res.error }
              : { transferMs: round(res.transferMs, 1), wallMs: round(res.wallMs, 1), verified: res.verified };
            run.load = load1();
            row.runs[v.name].push(run);
            return run;
          });
          row.pairs.push(ratio(got.after.transferMs, got.before.transferMs));
        }
        for (const name of ['before', 'after']) {
          const ok = row.runs[name].filter((x) => !x.error && x.verified !== false);
          const t = median(ok.map((x) => x.transferMs));
          row[name] = { transferMs: t, docsPerSec: t ? Math.round(n / (t / 1000)) : undefined, ok: ok.length };
        }
        // after / before of the median transfer times: 1.10 is "10 % slower".
        row.timeRatio = ratio(row.after.transferMs, row.before.transferMs);
        ctx.log(
          `sync ${format} ${direction} n=${n}: before ${row.before.docsPerSec} docs/s, after ${row.after.docsPerSec} docs/s, time ratio ${row.timeRatio}`,
        );
        rows.push(row);
        ctx.save();
      }
    }
  }
}

/**
 * Where the time goes: one 100k run per store, direction and side with the fresh peer under `strace -f -w -c` (wall
 * time inside fsync / fdatasync, summed over threads: libuv runs them on its pool). strace slows the traced
 * process a little, so the share is of the traced run's own transfer time.
 */
async function measureFsync(ctx, variants, signals, rows) {
  const n = FSYNC_N;
  for (const format of ['ndjson', 'json']) {
    for (const direction of ['pull', 'push']) {
      const row = { n, format, direction };
      await interleaved(variants, 0, async (v) => {
        ctx.log(`fsync share ${format} ${direction} n=${n} ${v.name} (load ${load1()})`);
        const out = join(ctx.tmp, `strace-${v.name}-${format}-${direction}.txt`);
        const wrap = ['strace', '-f', '-w', '-c', '--seccomp-bpf', '-e', 'trace=fsync,fdatasync', '-o', out];
        const side = { kind: 'p2psync', format, root: v.root };
        const res = await attempt(() =>
          pairOnce(ctx, { pair: 'p2p-p2p', n, direction, seeded: side, fresh: side, wrapFresh: wrap }, signals[v.name]),
        );
        row[v.name] = res.error
          ? { error: res.error }
          : { transferMs: round(res.transferMs, 1), ...fsyncSummary(out), load: load1() };
      });
      for (const v of ['before', 'after']) {
        const r = row[v];
        if (r.transferMs && r.fsyncSeconds !== undefined) r.share = round((r.fsyncSeconds * 1000) / r.transferMs, 3);
      }
      ctx.log(`fsync share ${format} ${direction}: ${JSON.stringify(row)}`);
      rows.push(row);
      ctx.save();
    }
  }
}

/** Calls and wall seconds of fsync + fdatasync from an `strace -c` summary (undefined fields if it is missing). */
function fsyncSummary(file) {
  let text;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return {};
  }
  let calls = 0;
  let seconds = 0;
  for (const line of text.split('\n')) {
    const m = /^\s*[\d.]+\s+([\d.]+)\s+\d+\s+(\d+)\s+(?:\d+\s+)?(fsync|fdatasync)\s*$/.exec(line);
    if (m) {
      seconds += Number(m[1]);
      calls += Number(m[2]);
    }
  }
  return { fsyncCalls: calls, fsyncSeconds: round(seconds, 3) };
}

const LATENCY_SPECS = [
  { format: 'ndjson', direction: 'pull', label: 'NDJSON append, A is master' },
  { format: 'ndjson', direction: 'push', label: 'NDJSON append, A is fork' },
  { format: 'json', direction: 'pull', label: 'JSON file replaced, A is master' },
];

async function measureLatency(ctx, variants, signals, rows) {
  for (const spec of LATENCY_SPECS) {
    const row = { ...spec, docs: ctx.latencyDocs, rounds: { before: [], after: [] } };
    for (let r = 0; r < ctx.latencyRounds; r++) {
      await interleaved(variants, r, async (v) => {
        ctx.log(`latency ${spec.label} ${v.name} (round ${r + 1}, load ${load1()})`);
        const res = await attempt(() =>
          latencyRow(
            ctx,
            { kind: 'p2psync', ...spec, side: { kind: 'p2psync', format: spec.format, root: v.root } },
            signals[v.name],
          ),
        );
        const one = res.error
          ? { error: res.error }
          : { writes: res.writes, lost: res.lost, p50Ms: round(res.p50Ms, 1), p99Ms: round(res.p99Ms, 1) };
        one.load = load1();
        row.rounds[v.name].push(one);
      });
    }
    for (const name of ['before', 'after']) {
      const ok = row.rounds[name].filter((x) => !x.error);
      row[name] = { p50Ms: median(ok.map((x) => x.p50Ms)), p99Ms: median(ok.map((x) => x.p99Ms)), ok: ok.length };
    }
    row.p50Ratio = ratio(row.after.p50Ms, row.before.p50Ms);
    row.p99Ratio = ratio(row.after.p99Ms, row.before.p99Ms);
    ctx.log(
      `latency ${spec.label}: p50 ${row.before.p50Ms} → ${row.after.p50Ms} ms, p99 ${row.before.p99Ms} → ${row.after.p99Ms} ms`,
    );
    rows.push(row);
    ctx.save();
  }
}

export async function main(argv) {
  const opts = options(argv);
  if (opts.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const started = performance.now();
  const log = (msg) =>
    process.stderr.write(`[durability ${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`);
  const beforeRev = opts.before ?? lastCommitBeforeDurability();
  const variants = [
    { name: 'before', ...describe(beforeRev), root: buildOf(beforeRev, log) },
    opts.after
      ? { name: 'after', ...describe(opts.after), root: buildOf(opts.after, log) }
      : { name: 'after', ...describe('HEAD'), root: ROOT, checkout: true },
  ];
  const machine = machineInfo();
  const results = {
    date: machine.date,
    machine,
    variants: variants.map(({ root, ...v }) => ({
      ...v,
      uncommittedChanges: v.checkout ? machine.uncommittedChanges : false,
    })),
    config: {
      sizes: opts.sizes,
      runs: opts.runs,
      latencyRounds: opts.latencyRounds,
      latencyWrites: opts.latencyWrites,
      latencyDocs: opts.latencyDocs,
    },
    loadavg: { start: loadavg().map((x) => round(x, 2)) },
  };
  const file = join(RESULTS_DIR, 'durability.json');
  const fsyncOnly = !opts.sync && opts.latencyRounds === 0;
  if (fsyncOnly && existsSync(file)) {
    // The fsync part alone adds to the last full run (same builds), with its own date and load.
    const previous = JSON.parse(readFileSync(file, 'utf8'));
    const same = previous.variants?.map((v) => v.sha).join() === results.variants.map((v) => v.sha).join();
    if (!same) throw new Error(`${file} compares other builds; run the whole benchmark`);
    results.fsyncRun = { date: results.date, loadavg: results.loadavg };
    for (const k of ['date', 'machine', 'config', 'loadavg', 'seconds', 'sync', 'latency'])
      if (previous[k] !== undefined) results[k] = previous[k];
  }
  const tmp = mkdtempSync(join(tmpdir(), 'p2psync-bench-durability-'));
  const ctx = {
    ...opts,
    tmp,
    log,
    save: () => {
      if (!opts.write) return;
      mkdirSync(RESULTS_DIR, { recursive: true });
      writeFileSync(file, JSON.stringify(results, null, 2) + '\n');
    },
  };
  // Each build talks to a signaling server of its own build: the signaling protocol may differ between them.
  const signals = {};
  try {
    for (const v of variants) signals[v.name] = await startSignal('p2psync', v.root);
    if (opts.sync) await measureSync(ctx, variants, signals, (results.sync = []));
    if (opts.latencyRounds > 0) await measureLatency(ctx, variants, signals, (results.latency = []));
    if (opts.fsync) await measureFsync(ctx, variants, signals, (results.fsync = []));
  } finally {
    await stopAll();
    rmSync(tmp, { recursive: true, force: true });
  }
  const end = loadavg().map((x) => round(x, 2));
  if (results.fsyncRun) results.fsyncRun.loadavg.end = end;
  else {
    results.loadavg.end = end;
    results.seconds = Math.round((performance.now() - started) / 1000);
  }
  if (opts.write) {
    // Formatted as the repository's prettier check wants it (short arrays on one line).
    const { format } = await import('prettier');
    mkdirSync(RESULTS_DIR, { recursive: true });
    writeFileSync(file, await format(JSON.stringify(results), { parser: 'json' }));
    log(`wrote ${file}`);
    execFileSync(process.execPath, [join(ROOT, 'bench/run.mjs'), '--render'], { stdio: 'inherit' });
  } else {
    process.stdout.write(JSON.stringify(results, null, 1) + '\n');
  }
  return 0;
}

killChildrenOnExit();

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`bench:durability: ${err?.stack ?? err}\n`);
    process.exit(2);
  },
);
