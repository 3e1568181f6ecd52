#!/usr/bin/env node
// `npm run bench:signal`: the signaling tier (issue 15), measured in one run on this machine.
//   a  one signaling process at 1k / 5k / 10k sockets: join rate, relay latency, RSS, CPU; p2psync (every limit
//      on, --max-connections raised to fit) against RxDB 17's own signaling server, alternating, same client
//      (the steady relays alternate in blocks between the two servers, both holding their sockets);
//      --warmup N gives each server N untimed joins first (--sizes 1000 --warmup 1000: a warm server at 1k)
//   b  relay latency through Redis (peers on two nodes) against one node
//   c  convergence time of one write across 10 / 25 / 50 peers, --max-peers 4 against the full mesh
// Writes bench/results/signal.json; docs/BENCHMARKS.md shows it (re-rendered at the end).
import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { Proc, stopAll, killAllSync } from './lib/proc.mjs';
import { BIN, RXDB_SIGNAL, RESULTS_DIR, ROOT } from './lib/paths.mjs';
import { median, round } from './lib/stats.mjs';
import { joinLoad, relayPercentiles, signalLoad, closeAll } from './signal-load.mjs';
import { runConvergence } from './signal-converge.mjs';

const { values: args } = parseArgs({
  options: {
    only: { type: 'string', default: 'a,b,c' },
    sizes: { type: 'string', default: '1000,5000,10000' },
    runs: { type: 'string', default: '2' },
    peers: { type: 'string', default: '10,25,50' },
    // Joins each server takes, untimed, before the measured load (0: measure a server that just started).
    warmup: { type: 'string', default: '0' },
    // Print the medians only: bench/results/signal.json and docs/BENCHMARKS.md stay as they are.
    'no-write': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(`usage: node bench/signal.mjs [--only a,b,c] [--sizes 1000,5000,10000] [--runs 2] [--peers 10,25,50]
                              [--warmup N] [--no-write]
  --only      parts to run: a (one process vs RxDB), b (two nodes through Redis), c (--max-peers convergence)
  --sizes     socket counts of part a
  --runs      runs per size and server in part a (servers alternate; medians)
  --warmup    untimed joins each server takes before the measured ones (part a)
  --no-write  print the medians as JSON on stdout; leave bench/results and docs/BENCHMARKS.md untouched`);
  process.exit(0);
}
const WRITE = !args['no-write'];
const parts = new Set(args.only.split(','));
const RUNS = Number(args.runs);

process.on('SIGINT', () => {
  killAllSync();
  process.exit(130);
});

async function startServer(kind, extra = []) {
  const proc =
    kind === 'rxdb'
      ? new Proc('rxdb-signal', RXDB_SIGNAL, ['--port', '0'])
      : new Proc('p2psync-signal', BIN, ['signal', '--port', '0', '--json', ...extra]);
  const ev = await proc.waitFor('listening');
  return { proc, url: `ws://127.0.0.1:${ev.port}/` };
}

function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function startRedis() {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'bench-redis-'));
  const child = spawn('redis-server', [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
  ]);
  await new Promise((resolve, reject) => {
    child.once('error', (e) => reject(new Error(`redis-server: ${e.message} (apt-get install -y redis-server)`)));
    child.stdout.on('data', (d) => String(d).includes('Ready to accept') && resolve());
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: () => {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Relays per run, one at a time: the first ones after the joins (reported apart: a fresh server compiles its relay
 * path while handling them), then the steady ones. Enough of the latter for a p99 that is the 100th slowest
 * sample, not the 50th.
 */
const FIRST_RELAYS = 5_000;
const STEADY_RELAYS = 10_000;
/** Steady relays per turn when part a alternates between the two servers (about 50-100 ms). */
const RELAY_BLOCK = 250;
/** Open files the load generator needs besides its sockets. */
const FD_HEADROOM = 200;

const pick = (rs, key) => median(rs.map((r) => (Array.isArray(r[key]) ? r[key][0] : r[key])));

/**
 * The load generator shares this process across runs, so the first measured run would meet its cold code (JIT,
 * first allocations) and the server measured first would pay for it. One untimed round against each server
 * first, so every measured run meets the same warm client.
 */
async function warmLoadGenerator(sockets) {
  for (const kind of ['p2psync', 'rxdb']) {
    const server = await startServer(kind, ['--max-connections', String(sockets + 100)]);
    const warm = await signalLoad({ urls: [server.url], sockets, roomSize: 10, samples: 1_000 });
    await closeAll(warm.clients);
    await server.proc.stop();
  }
}

/** Open files this process may hold (Linux: /proc/self/limits), which bounds the sockets of the load generator. */
function openFilesLimit() {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return !m || m[1] === 'unlimited' ? Infinity : Number(m[1]);
}

/**
 * Part a's steady relays for the servers of one run (`live`: each with its joined load and first relays), in
 * blocks that alternate between them; then their sockets close, the servers stop and each run's result is kept.
 */
async function steadyRelays(live, runs, paired) {
  for (let done = 0; done < STEADY_RELAYS; done += RELAY_BLOCK) {
    for (const l of live) {
      const { latencies, ms } = await l.load.relay(Math.min(RELAY_BLOCK, STEADY_RELAYS - done));
      l.steady.push(...latencies);
      l.steadyMs += ms;
    }
  }
  for (const { kind, server, load, first, steady, steadyMs } of live) {
    await closeAll(load.clients);
    await server.proc.stop();
    const res = {
      ...load.stats,
      ...relayPercentiles(first.latencies, 'firstRelay'),
      ...relayPercentiles(steady),
      relaysPerSecond: round((steady.length / steadyMs) * 1000),
      samples: steady.length,
      lost: load.lost,
      paired,
    };
    runs[kind].push(res);
    console.error(`a ${kind} ${load.stats.sockets}: ${JSON.stringify(res)}`);
  }
}

/** a: one process, p2psync vs RxDB, alternating, `RUNS` runs per size; medians. */
async function partA() {
  const out = [];
  await warmLoadGenerator(Math.min(...args.sizes.split(',').map(Number)));
  for (const sockets of args.sizes.split(',').map(Number)) {
    const runs = { p2psync: [], rxdb: [] };
    for (let r = 0; r < RUNS; r++) {
      // Paired: both servers of the run hold their sockets while their steady relays alternate in blocks, so load
      // from elsewhere on the shared machine falls on both alike (run after run, it would not). This process then
      // holds both servers' sockets, so only where its open-files limit allows; otherwise (10k sockets under a
      // limit of 20,000) each server's steady relays follow its first ones, as its runs alternate with the other's.
      const paired = 2 * (sockets + Number(args.warmup)) + FD_HEADROOM <= openFilesLimit();
      const live = [];
      for (const kind of r % 2 === 0 ? ['p2psync', 'rxdb'] : ['rxdb', 'p2psync']) {
        // Every p2psync limit stays on at its default, except connections, raised to hold the load.
        const server = await startServer(kind, ['--max-connections', String(sockets + Number(args.warmup) + 100)]);
        if (Number(args.warmup) > 0) {
          const warm = await signalLoad({
            urls: [server.url],
            sockets: Number(args.warmup),
            roomSize: 10,
            samples: 100,
          });
          await closeAll(warm.clients);
        }
        const load = await joinLoad({ urls: [server.url], sockets, roomSize: 10, pids: [server.proc.child.pid] });
        const first = await load.relay(FIRST_RELAYS);
        live.push({ kind, server, load, first, steady: [], steadyMs: 0 });
        if (!paired) await steadyRelays([live.pop()], runs, false);
      }
      if (paired) await steadyRelays(live, runs, true);
    }
    const row = { sockets };
    for (const kind of ['p2psync', 'rxdb']) {
      row[kind] = {
        joinsPerSecond: pick(runs[kind], 'joinsPerSecond'),
        relayP50Ms: pick(runs[kind], 'relayP50Ms'),
        relayP99Ms: pick(runs[kind], 'relayP99Ms'),
        firstRelayP50Ms: pick(runs[kind], 'firstRelayP50Ms'),
        firstRelayP99Ms: pick(runs[kind], 'firstRelayP99Ms'),
        rssMiB: pick(runs[kind], 'rssMiB'),
        joinCpuSeconds: pick(runs[kind], 'joinCpuSeconds'),
        cpuMicrosPerJoin: pick(runs[kind], 'cpuMicrosPerJoin'),
        runs: runs[kind],
      };
    }
    // The median of the runs' ratios of steady p99s (measured side by side within each run where `paired`).
    row.paired = runs.p2psync.every((res) => res.paired);
    row.relayP99Ratio = round(median(runs.p2psync.map((p, r) => p.relayP99Ms / runs.rxdb[r].relayP99Ms)), 2);
    out.push(row);
  }
  return out;
}

/** b: relay latency, peers on two nodes sharing rooms through Redis vs one node. */
async function partB() {
  const redis = await startRedis();
  try {
    const rows = [];
    for (const layout of ['one node', 'two nodes + Redis']) {
      const n = layout === 'one node' ? 1 : 2;
      const servers = [];
      for (let i = 0; i < n; i++) servers.push(await startServer('p2psync', n > 1 ? ['--redis', redis.url] : []));
      if (n > 1) await Promise.all(servers.map((s) => s.proc.waitFor('redis-up')));
      const res = await signalLoad({
        urls: servers.map((s) => s.url),
        sockets: 400,
        roomSize: 2,
        firstSamples: FIRST_RELAYS,
        samples: STEADY_RELAYS,
        pids: servers.map((s) => s.proc.child.pid),
      });
      await closeAll(res.clients);
      delete res.clients;
      for (const s of servers) await s.proc.stop();
      console.error(`b ${layout}: ${JSON.stringify(res)}`);
      rows.push({ layout, ...res });
    }
    return rows;
  } finally {
    redis.stop();
  }
}

const results = { date: new Date().toISOString(), loadavg: loadavg().map((x) => Math.round(x * 100) / 100) };
mkdirSync(RESULTS_DIR, { recursive: true });
const file = join(RESULTS_DIR, 'signal.json');
let previous = {};
try {
  previous = JSON.parse(readFileSync(file, 'utf8'));
} catch {
  /* first run */
}
/** Saved after every part, so an interrupted run keeps what it measured. */
const save = () => {
  if (!WRITE) return;
  writeFileSync(file, JSON.stringify({ ...previous, ...results }, null, 2) + '\n');
  console.error(`wrote ${file}`);
};
try {
  // A warm run is kept apart (`aWarm`), so it never replaces the default table.
  if (parts.has('a')) ((results[Number(args.warmup) > 0 ? 'aWarm' : 'a'] = await partA()), save());
  if (parts.has('b')) ((results.b = await partB()), save());
  if (parts.has('c')) ((results.c = await runConvergence(args.peers.split(',').map(Number))), save());
} finally {
  await stopAll();
}
if (!WRITE) {
  const brief = (row) => ({
    sockets: row.sockets,
    joinsRatio: round(row.p2psync.joinsPerSecond / row.rxdb.joinsPerSecond, 2),
    relayP99Ratio: row.relayP99Ratio,
    cpuRatio: round(row.p2psync.cpuMicrosPerJoin / row.rxdb.cpuMicrosPerJoin, 2),
    ...Object.fromEntries(['p2psync', 'rxdb'].map((k) => [k, { ...row[k], runs: undefined }])),
  });
  console.log(JSON.stringify({ ...results, a: results.a?.map(brief), aWarm: results.aWarm?.map(brief) }, null, 2));
  console.log(
    `load average at the end: ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' / ')}`,
  );
  process.exit(0);
}
// docs/BENCHMARKS.md shows this run next to bench/results/latest.json's.
spawn(process.execPath, [join(ROOT, 'bench/run.mjs'), '--render'], { stdio: 'inherit' });
