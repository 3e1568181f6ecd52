// The "Signaling tier" section of docs/BENCHMARKS.md, from bench/results/signal.json (npm run bench:signal).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RESULTS_DIR } from './paths.mjs';

const num = (v, digits = 0) =>
  typeof v === 'number'
    ? v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : '—';
const ratio = (a, b) => (typeof a === 'number' && typeof b === 'number' && b > 0 ? `${(a / b).toFixed(2)}x` : '—');

/** Part a's rows, p2psync next to RxDB, and a closing blank line. */
function oneProcessTable(rows) {
  const perJoin = (k, sockets) => k.cpuMicrosPerJoin ?? (k.joinCpuSeconds * 1e6) / sockets;
  return [
    '| sockets | p2psync joins/s | RxDB joins/s | ratio | p2psync relay p50 / p99 ms | RxDB relay p50 / p99 ms | p99 ratio | first relays p99 ms, p2psync / RxDB | p2psync RSS MiB | RxDB RSS MiB | p2psync CPU µs/join | RxDB CPU µs/join | CPU ratio |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(({ sockets, p2psync: p, rxdb: x, relayP99Ratio, paired }) => {
      const [cp, cx] = [perJoin(p, sockets), perJoin(x, sockets)];
      return `| ${num(sockets)} | ${num(p.joinsPerSecond)} | ${num(x.joinsPerSecond)} | ${ratio(p.joinsPerSecond, x.joinsPerSecond)} | ${num(p.relayP50Ms, 2)} / ${num(p.relayP99Ms, 2)} | ${num(x.relayP50Ms, 2)} / ${num(x.relayP99Ms, 2)} | ${typeof relayP99Ratio === 'number' ? `${relayP99Ratio.toFixed(2)}x${paired === false ? ' (not paired)' : ''}` : '—'} | ${num(p.firstRelayP99Ms, 2)} / ${num(x.firstRelayP99Ms, 2)} | ${num(p.rssMiB)} | ${num(x.rssMiB)} | ${num(cp)} | ${num(cx)} | ${ratio(cp, cx)} |`;
    }),
    '',
  ];
}

export function renderSignalSection() {
  const file = join(RESULTS_DIR, 'signal.json');
  if (!existsSync(file)) return undefined;
  const r = JSON.parse(readFileSync(file, 'utf8'));
  const out = ['## Signaling tier', ''];
  out.push(
    `Measured by \`npm run bench:signal\` (bench/signal.mjs) on ${r.date ?? '?'}, load average ${(r.loadavg ?? []).join(' / ')} at the start; raw numbers in bench/results/signal.json.`,
    "The load generator (raw WebSocket clients speaking RxDB's signaling protocol, bench/signal-load.mjs) runs on the",
    'same 2 cores as the servers, so absolute rates are bounded by it; compare the rows side by side.',
    '',
  );
  if (r.a) {
    out.push(
      "### One signaling process: p2psync against RxDB 17's server",
      '',
      'N sockets connect, then join rooms of 10 (window of 200 joins in flight); **joins/s** counts until every socket',
      'got the `joined` that lists it. Then `signal` frames (about 700 bytes) are relayed one at a time between room',
      'mates; a sample is the time from send to receipt. The **first relays** (5,000, right after the joins) meet a',
      'server whose relay path is still cold: a fresh process compiles it on background threads, on the same 2 cores,',
      'while relaying, so their p99 measures that warm-up more than relaying; **relay p50/p99** are those of the',
      '10,000 relays that follow (the steady state a running server is in), taken once both servers of a run hold',
      'their sockets, in blocks of 250 that alternate between them, so that load from elsewhere on the shared machine',
      "falls on both alike; **p99 ratio** is the median of the runs' p2psync / RxDB steady p99 (*not paired*: the",
      "bench process cannot hold both servers' sockets under its open-files limit, as 2 x 10k under 20,000, so each",
      "server's steady relays follow its first ones and only the runs alternate). **RSS** after all joins; **CPU** is",
      "the server's CPU time (all threads, from the scheduler's counters) during the join phase, per join: the server's",
      'own cost, which the shared cores disturb less than the rates. p2psync runs with every limit at its default except',
      '`--max-connections`, raised to N+100. Servers alternate (which one starts and joins first); medians of the runs.',
      'Before the first run, one untimed round against each server warms the load generator (it runs in the bench',
      'process), so the server measured first does not pay for its cold start.',
      '',
      ...oneProcessTable(r.a),
    );
  }
  if (r.aWarm) {
    out.push(
      '**Warm servers** (`npm run bench:signal -- --only a --sizes 1000 --warmup 1000`): each server first takes 1,000',
      'untimed joins, so the measured ones do not run in the first second of its life, as they do above.',
      '',
      ...oneProcessTable(r.aWarm),
    );
  }
  if (r.b) {
    out.push(
      '### Two nodes through Redis against one node',
      '',
      '400 sockets in rooms of 2; with two nodes the two members of each room are on different nodes, so every',
      'relayed frame crosses Redis pub/sub. One at a time: 5,000 first relays (kept apart, as in part a), then 10,000 measured.',
      '',
      '| layout | joins/s | relay p50 ms | relay p99 ms | RSS MiB (per node) |',
      '|---|---:|---:|---:|---|',
    );
    for (const row of r.b)
      out.push(
        `| ${row.layout} | ${num(row.joinsPerSecond)} | ${num(row.relayP50Ms, 2)} | ${num(row.relayP99Ms, 2)} | ${(row.rssMiB ?? []).map((v) => num(v)).join(' / ')} |`,
      );
    out.push('');
  }
  if (r.c) {
    out.push(
      '### One write across a topic: `--max-peers 4` against the full mesh',
      '',
      'N `p2psync join` processes (NDJSON stores, loopback WebRTC) join one after the other; once a warm-up document',
      "has reached every file (**settle**), one document is appended to the last peer's file and the clock runs until",
      'it is in every file (**converge**, polled every 5 ms; includes the outside-edit detection on the writer).',
      '**open links** is the most links one process had open at once; **peers linked** the most distinct peers one',
      'process was linked to over the run (peers join one by one, so early peers start in a full mesh and re-link).',
      '',
      '| peers | overlay | settle s | converge ms | open links (max) | peers linked (max) | note |',
      '|---:|---|---:|---:|---:|---:|---|',
    );
    for (const row of r.c) {
      out.push(
        `| ${row.peers} | ${row.maxPeers ? `--max-peers ${row.maxPeers}` : 'full mesh'} | ${num(row.settleSeconds, 1)} | ${num(row.convergeMs)} | ${num(row.openLinksMax)} | ${num(row.distinctPeersLinked ?? row.linksPerPeerMax)} | ${row.note ?? ''} |`,
      );
    }
    out.push('');
  }
  out.push(
    'Reproduce: `npm run bench:signal` (all parts, about 10-20 minutes), `npm run bench:signal -- --only a --sizes 1000,5000`,',
    '`--only b`, `--only c --peers 10,25`. It needs `redis-server` for part b.',
    '',
  );
  return out.join('\n');
}
