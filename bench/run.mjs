#!/usr/bin/env node
// `npm run bench`: p2psync measured side by side with stock RxDB 17 and with the raw data-channel bound, on this
// machine, in one invocation. Writes bench/results/latest.json (raw results) and regenerates docs/BENCHMARKS.md.
// Every scenario can run alone (`--only raw,rxdb`); a scenario whose piece of p2psync is not built yet is recorded
// as "not available yet" instead of failing. Results of scenarios not run this time are kept from latest.json.
import { parseArgs } from 'node:util';
import { mkdtempSync, rmSync, existsSync, readFileSync, writeFileSync, mkdirSync, renameSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import { stopAll, killChildrenOnExit } from './lib/proc.mjs';
import { machineInfo } from './lib/machine.mjs';
import { cliHas } from './lib/peers.mjs';
import { ROOT, RESULTS_DIR, BENCHMARKS_MD } from './lib/paths.mjs';
import { renderReport } from './lib/report.mjs';
import { profileFiles, summariseProfile } from './profile-summary.mjs';
import { runRaw, runRxdb, runP2p, runMixed } from './scenarios/sync.mjs';
import { runLatency } from './scenarios/latency.mjs';
import { runRestart } from './scenarios/restart.mjs';
import { runFanout } from './scenarios/fanout.mjs';
import { runStore } from './scenarios/store.mjs';
import { runConnect } from './scenarios/connect.mjs';
import { runEncryption } from './scenarios/encryption.mjs';
import { runConflicts } from './scenarios/conflicts.mjs';

/** Every scenario, in run order. `run(ctx)` returns a result object or `{skipped: reason}`. */
export const SCENARIOS = [
  { id: 'raw', title: 'raw bound: JSON batches over a node-datachannel channel, appended to NDJSON', run: runRaw },
  { id: 'rxdb', title: 'initial sync, RxDB → RxDB (memory storage, batch 20 and 200)', run: runRxdb },
  { id: 'p2psync', title: 'initial sync, p2psync → p2psync (JSON and NDJSON stores)', run: runP2p },
  { id: 'mixed', title: 'initial sync, RxDB → p2psync and p2psync → RxDB', run: runMixed },
  { id: 'latency', title: 'live latency, file write on A until the document is in B', run: runLatency },
  { id: 'restart', title: 'restart with no changes: documents re-sent and time until synced', run: runRestart },
  { id: 'fanout', title: 'fan-out: a 4-peer mesh, time until every peer has N documents', run: runFanout },
  { id: 'store', title: 'store: open, change-feed scan, 10k-change burst', run: runStore },
  { id: 'connect', title: 'connect time with and without a topic secret (trust handshake)', run: runConnect },
  { id: 'encryption', title: 'encryption at rest: initial sync with one field encrypted vs none', run: runEncryption },
  {
    id: 'conflicts',
    title: 'conflict-heavy: 10k documents edited on both sides, master vs merge vs a handler',
    run: runConflicts,
  },
];

const HELP = `Usage: node bench/run.mjs [options]      (npm run bench -- [options])

Options:
  --only LIST            run only these scenarios (comma-separated): ${SCENARIOS.map((s) => s.id).join(',')}
  --skip LIST            run all but these scenarios
  --runs N               runs per measurement; medians are reported (default 3)
  --sizes LIST           document counts for initial sync and store (default 10000,100000)
  --big                  add 1,000,000 documents to --sizes (pull direction only, one run)
  --full                 every pair, direction and batch at every size up to 100k, each --runs times (the default
                         trims sizes above 10k and caps each row at about a minute: RxDB is quadratic there)
  --fanout-sizes LIST    document counts for the 4-peer mesh (default 10000)
  --latency-writes N     writes per live-latency row (default 200)
  --latency-docs N       documents in the store during the latency and restart scenarios (default 10000)
  --connect-runs N       runs per mode of the connect scenario (default 15; connect times are bimodal)
  --rxdb-batch N         RxDB batch size in the mixed, latency and fan-out rows (default 20, RxDB's default)
  --p2p-batch N          pass --batch-size N to p2psync join (default: p2psync's own default)
  --profile              write CPU profiles (node --cpu-prof) of every p2psync and raw-bound process into a
                         kept temporary directory; summarise them with node bench/profile-summary.mjs DIR
  --render               only regenerate docs/BENCHMARKS.md from bench/results/latest.json (no measuring)
  --no-write             print results only; leave bench/results and docs/BENCHMARKS.md alone
  --keep-tmp             keep the temporary directory with the stores
  --list                 list the scenarios and exit
  -h, --help             show this help
`;

function intList(s) {
  return s
    .split(',')
    .map((x) => Number(x.trim()))
    .filter((x) => Number.isInteger(x) && x > 0);
}

function parseOptions(argv) {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      only: { type: 'string' },
      skip: { type: 'string' },
      runs: { type: 'string', default: '3' },
      sizes: { type: 'string', default: '10000,100000' },
      big: { type: 'boolean', default: false },
      full: { type: 'boolean', default: false },
      'fanout-sizes': { type: 'string', default: '10000' },
      'latency-writes': { type: 'string', default: '200' },
      'latency-docs': { type: 'string', default: '10000' },
      'rxdb-batch': { type: 'string', default: '20' },
      'connect-runs': { type: 'string', default: '15' },
      'p2p-batch': { type: 'string' },
      profile: { type: 'boolean', default: false },
      render: { type: 'boolean', default: false },
      'no-write': { type: 'boolean', default: false },
      'keep-tmp': { type: 'boolean', default: false },
      list: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  const ids = SCENARIOS.map((s) => s.id);
  const pick = (s) =>
    s
      ? s
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean)
      : [];
  const only = pick(v.only);
  const skip = pick(v.skip);
  for (const id of [...only, ...skip])
    if (!ids.includes(id)) throw new Error(`unknown scenario "${id}"; known: ${ids.join(', ')}`);
  const sizes = intList(v.sizes);
  if (v.big && !sizes.includes(1_000_000)) sizes.push(1_000_000);
  const runs = Number(v.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be a whole number >= 1');
  return {
    help: v.help,
    list: v.list,
    selected: ids.filter((id) => (only.length === 0 || only.includes(id)) && !skip.includes(id)),
    runs,
    sizes,
    full: v.full,
    fanoutSizes: intList(v['fanout-sizes']),
    latencyWrites: Number(v['latency-writes']),
    latencyDocs: Number(v['latency-docs']),
    rxdbBatch: Number(v['rxdb-batch']),
    connectRuns: Number(v['connect-runs']),
    p2pBatch: v['p2p-batch'] ? Number(v['p2p-batch']) : undefined,
    profile: v.profile,
    renderOnly: v.render,
    write: !v['no-write'],
    keepTmp: v['keep-tmp'],
  };
}

/** Which pieces of p2psync exist in dist/ right now. */
function detectPieces() {
  return {
    store: existsSync(join(ROOT, 'dist/store/open.js')),
    signal: cliHas('signal', ['--port', '--json']),
    join: cliHas('join', ['--topic', '--store', '--signal', '--ice-bind', '--storage-token', '--json']),
  };
}

/** The previous results file, if it was written on this kind of machine (else its numbers must not be mixed in). */
function loadPrevious(machine) {
  const file = join(RESULTS_DIR, 'latest.json');
  if (!existsSync(file)) return {};
  try {
    const prev = JSON.parse(readFileSync(file, 'utf8'));
    if (prev.machine?.cpuModel !== machine.cpuModel || prev.machine?.cpus !== machine.cpus) return {};
    return prev;
  } catch {
    return {};
  }
}

function writeAtomic(file, text) {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

export async function main(argv) {
  const opts = parseOptions(argv);
  if (opts.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (opts.list) {
    for (const s of SCENARIOS) process.stdout.write(`${s.id.padEnd(9)} ${s.title}\n`);
    return 0;
  }
  if (opts.renderOnly) {
    const results = JSON.parse(readFileSync(join(RESULTS_DIR, 'latest.json'), 'utf8'));
    writeAtomic(BENCHMARKS_MD, renderReport(results));
    process.stderr.write('bench: docs/BENCHMARKS.md regenerated from bench/results/latest.json\n');
    return 0;
  }
  const machine = machineInfo();
  const avail = detectPieces();
  const tmp = mkdtempSync(join(tmpdir(), 'p2psync-bench-'));
  // Also on Ctrl-C, which exits from the signal handler below without reaching the finally block.
  if (!opts.keepTmp) process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
  const started = performance.now();
  const log = (msg) =>
    process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`);
  const profileDir = opts.profile ? mkdtempSync(join(tmpdir(), 'p2psync-bench-profiles-')) : undefined;
  const ctx = { ...opts, tmp, log, avail, profileDir };
  log(
    `pieces available: ${Object.entries(avail)
      .map(([k, v]) => `${k}=${v ? 'yes' : 'no'}`)
      .join(' ')}; scenarios: ${opts.selected.join(', ')}`,
  );

  const previous = loadPrevious(machine);
  const scenarios = previous.scenarios ?? {};
  try {
    for (const s of SCENARIOS.filter((x) => opts.selected.includes(x.id))) {
      log(`--- ${s.id}: ${s.title}`);
      const t = performance.now();
      const loadBefore = loadavg()[0];
      let result;
      try {
        result = await s.run(ctx);
      } catch (err) {
        result = { failed: String(err?.stack ?? err).slice(0, 2000) };
      } finally {
        await stopAll();
      }
      const seconds = Math.round((performance.now() - t) / 100) / 10;
      log(
        `--- ${s.id} ${result.skipped ? `skipped: ${result.skipped}` : result.failed ? `FAILED: ${result.failed.split('\n')[0]}` : 'done'} in ${seconds} s`,
      );
      // The 1-minute load average before and after: other work on the machine is the main source of noise.
      const load = [loadBefore, loadavg()[0]].map((x) => Math.round(x * 10) / 10);
      scenarios[s.id] = {
        ranAt: new Date().toISOString(),
        seconds,
        load,
        config: {
          runs: opts.runs,
          sizes: opts.sizes,
          full: opts.full,
          rxdbBatch: opts.rxdbBatch,
          p2pBatch: opts.p2pBatch,
          latencyWrites: opts.latencyWrites,
          latencyDocs: opts.latencyDocs,
          fanoutSizes: opts.fanoutSizes,
        },
        ...result,
      };
    }
  } finally {
    if (!opts.keepTmp) rmSync(tmp, { recursive: true, force: true });
    else log(`temporary files kept in ${tmp}`);
  }

  const results = { machine, totalSeconds: Math.round((performance.now() - started) / 1000), scenarios };
  if (profileDir) {
    // One summary per kind of process (its first run) keeps latest.json small; every profile stays in profileDir.
    const seen = new Set();
    const summaries = [];
    for (const f of profileFiles([profileDir])) {
      const kind = basename(f).replace(/-\d+-[a-z]{4}\.cpuprofile$/, '');
      if (seen.has(kind)) continue;
      seen.add(kind);
      // Only while replication frames arrive: start-up, store loading and shutdown would blur the transfer.
      summaries.push(summariseProfile(f, 8, 'receive'));
    }
    results.profiles = { ranAt: new Date().toISOString(), dir: profileDir, summaries };
  } else if (previous.profiles) {
    results.profiles = previous.profiles;
  }
  const markdown = renderReport(results);
  if (opts.write) {
    mkdirSync(RESULTS_DIR, { recursive: true });
    writeAtomic(join(RESULTS_DIR, 'latest.json'), JSON.stringify(results, null, 1) + '\n');
    writeAtomic(BENCHMARKS_MD, markdown);
    log(`wrote bench/results/latest.json and docs/BENCHMARKS.md`);
  } else {
    process.stdout.write(markdown);
  }
  if (profileDir) log(`CPU profiles in ${profileDir}; summary: node bench/profile-summary.mjs ${profileDir}`);
  log(`total ${results.totalSeconds} s`);
  return 0;
}

// Child processes run in their own process groups: take them down on Ctrl-C and on any exit.
killChildrenOnExit();

const isEntry = process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href;
if (isEntry) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`bench: ${err?.message ?? err}\n`);
      process.exit(2);
    },
  );
}
