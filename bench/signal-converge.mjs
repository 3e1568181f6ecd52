// Part c of bench/signal.mjs: how long one write takes to reach every peer of a topic, with --max-peers 4 (a
// bounded overlay: changes hop through neighbours) against the full mesh, at 10, 25 and 50 peer processes.
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Proc } from './lib/proc.mjs';
import { BIN } from './lib/paths.mjs';
import { round } from './lib/stats.mjs';

const SETTLE_TIMEOUT_MS = 180_000;
const PROBE_TIMEOUT_MS = 60_000;

function allContain(files, needle) {
  return files.every((f) => {
    try {
      return readFileSync(f, 'utf8').includes(needle);
    } catch {
      return false;
    }
  });
}

/** Most links one peer had open at once, from its peer-connected / peer-disconnected events. */
function maxOpenLinks(proc) {
  const open = new Set();
  let max = 0;
  for (const e of proc.events) {
    if (e.event === 'peer-connected') open.add(e.peerId);
    if (e.event === 'peer-disconnected') open.delete(e.peerId);
    max = Math.max(max, open.size);
  }
  return max;
}

async function until(pred, timeoutMs, stepMs = 5) {
  const deadline = performance.now() + timeoutMs;
  while (!pred()) {
    if (performance.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return true;
}

async function one(n, maxPeers) {
  const dir = mkdtempSync(join(tmpdir(), 'bench-conv-'));
  const procs = [];
  try {
    const sig = new Proc('signal', BIN, ['signal', '--port', '0', '--json', '--max-connections', '200']);
    procs.push(sig);
    const url = `ws://127.0.0.1:${(await sig.waitFor('listening')).port}/`;
    const files = Array.from({ length: n }, (_, i) => join(dir, `p${i}.ndjson`));
    files.forEach((f, i) => writeFileSync(f, i === 0 ? '{"id":"warm-up"}\n' : ''));
    const t0 = performance.now();
    for (const f of files) {
      const extra = maxPeers ? ['--max-peers', String(maxPeers)] : [];
      const p = new Proc('peer', BIN, [
        'join',
        '--topic',
        'bench-converge',
        '--store',
        f,
        '--signal',
        url,
        '--ice-bind',
        '127.0.0.1',
        '--json',
        ...extra,
      ]);
      procs.push(p);
      await p.waitFor('joined', 60_000);
    }
    // Settled: the warm-up document reached everyone (every peer has links and finished its handshakes).
    if (!(await until(() => allContain(files, 'warm-up'), SETTLE_TIMEOUT_MS, 50))) {
      return { peers: n, maxPeers, settled: false, note: `not settled within ${SETTLE_TIMEOUT_MS / 1000} s` };
    }
    const settleMs = performance.now() - t0;
    const distinct = procs
      .slice(1)
      .map((p) => new Set(p.events.filter((e) => e.event === 'peer-connected').map((e) => e.peerToken)).size);
    const concurrent = procs.slice(1).map(maxOpenLinks);
    const tw = performance.now();
    appendFileSync(files[n - 1], '{"id":"probe","v":1}\n');
    const ok = await until(() => allContain(files, '"probe"'), PROBE_TIMEOUT_MS);
    const convergeMs = performance.now() - tw;
    return {
      peers: n,
      maxPeers,
      settled: true,
      settleSeconds: round(settleMs / 1000, 1),
      convergeMs: ok ? round(convergeMs) : undefined,
      note: ok ? undefined : `probe not everywhere within ${PROBE_TIMEOUT_MS / 1000} s`,
      openLinksMax: Math.max(...concurrent),
      distinctPeersLinked: Math.max(...distinct),
    };
  } finally {
    await Promise.all(procs.map((p) => p.stop(3_000)));
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runConvergence(sizes) {
  const rows = [];
  for (const n of sizes) {
    for (const maxPeers of [4, undefined]) {
      const r = await one(n, maxPeers);
      console.error(`c ${n} peers ${maxPeers ? `--max-peers ${maxPeers}` : 'full mesh'}: ${JSON.stringify(r)}`);
      rows.push(r);
    }
  }
  return rows;
}
