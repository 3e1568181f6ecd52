#!/usr/bin/env node
// In-process throughput of an initial sync INTO A FILE STORE (not part of `npm test` or `npm run bench`): a seeded
// master (MemoryStore, or a FileStore with --master json|ndjson) and a fresh FileStore as fork, over an in-memory
// link. Timing ends when the fork holds N documents AND its `flush()` resolved (everything durable in the user's file
// and the sidecar). Runs the formats side by side in one invocation, interleaved, so a shared machine's load hits
// them alike.
//
//   npm run build && node bench/file-sync-throughput.mjs [--docs 100000] [--runs 3] [--formats json,ndjson,memory]
//     [--master memory|json|ndjson] [--split] [--profile DIR]
//
// --split runs the master in a worker thread (like two processes: the fork's thread does only the fork's work).
// Reported per document: process CPU (all threads) and the main thread's own CPU (with --split: the fork alone).
// --profile DIR writes one .cpuprofile per run of the main thread (the sync only, not the seeding); summarise with
//   `node bench/profile-summary.mjs DIR`.
import { parseArgs } from 'node:util';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Session } from 'node:inspector/promises';
import { performance } from 'node:perf_hooks';
import { Worker, isMainThread, parentPort, workerData, MessageChannel } from 'node:worker_threads';
import { MemoryStore } from '../dist/store/memory-store.js';
import { createMemoryLinkPair } from '../dist/transport/memory-link.js';
import { DEFAULT_BATCH_SIZE, masterWins, replicate } from '../dist/replication/index.js';
import { openStore } from '../dist/store/open.js';
import { MAX_FRAME_BYTES } from '../dist/core/link.js';
import { makeDoc } from './lib/docs.mjs';

const MASTER = 'aaaaaaaaaa'; // master of FORK (docs/PROTOCOL.md §2.3 test vector)
const FORK = 'bbbbbbbbbb';
const TOPIC = 'bench-topic';

async function seed(store, count) {
  for (let i = 1; i <= count; i += 5000) {
    const rows = [];
    for (let j = i; j < Math.min(i + 5000, count + 1); j++)
      rows.push({ document: { ...makeDoc('doc', j), _deleted: false }, expected: null });
    await store.bulkWrite(rows, { kind: 'local' });
  }
  await store.flush();
}

async function makeStore(kind, token, dir, name) {
  if (kind === 'memory') return new MemoryStore({ storageToken: token });
  return openStore({ path: join(dir, `${name}.${kind}`), storageToken: token, watch: false });
}

/** A PeerLink over a worker_threads MessagePort (frames are copied across threads like over a socket). */
class PortLink {
  constructor(port, remotePeerId) {
    this.port = port;
    this.remotePeerId = remotePeerId;
    this.maxMessageSize = MAX_FRAME_BYTES;
    this.open = true;
    this.closeHandlers = [];
    port.on('message', (m) => this.handler?.(m));
  }
  send(frame) {
    if (this.open) this.port.postMessage(frame);
  }
  bufferedAmount() {
    return 0;
  }
  onFrame(h) {
    this.handler = h;
  }
  onClose(h) {
    this.closeHandlers.push(h);
  }
  onDrain() {}
  close() {
    if (!this.open) return;
    this.open = false;
    this.port.close();
    for (const h of this.closeHandlers) h();
  }
}

// ---- worker: the master side of --split ----
if (!isMainThread) {
  const { kind, dir, docs } = workerData;
  const store = await makeStore(kind, MASTER, dir, 'master');
  await seed(store, docs);
  let rep;
  let link;
  parentPort.on('message', async (m) => {
    if (m.port) {
      link = new PortLink(m.port, 'fork');
      rep = replicate({
        store,
        meta: store,
        link,
        topic: TOPIC,
        conflict: masterWins(),
        batchSize: DEFAULT_BATCH_SIZE,
      });
    } else if (m === 'close') {
      await rep?.close();
      link?.close();
      await store.close();
      parentPort.postMessage('closed');
    }
  });
  parentPort.postMessage('seeded');
} else {
  await main();
}

/**
 * CPU time of the main thread alone in ms (Linux: /proc schedstat, ns resolution), which leaves out the master in
 * --split mode and the helper threads (GC, file I/O); elsewhere the event loop's busy time stands in for it.
 */
function mainThreadMs() {
  try {
    return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
  } catch {
    return performance.eventLoopUtilization().active;
  }
}

function whenForkHas(rep, n) {
  return new Promise((resolve) => {
    rep.onStateChange(() => {
      if (rep.stats.received >= n && rep.isIdle()) resolve();
    });
  });
}

async function runOnce(format, values, runIndex) {
  const N = Number(values.docs);
  const dir = mkdtempSync(join(tmpdir(), 'p2psync-filesync-'));
  let master;
  let worker;
  let masterRep;
  let links;
  if (values.split) {
    worker = new Worker(new URL(import.meta.url), { workerData: { kind: values.master, dir, docs: N } });
    await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
  } else {
    master = await makeStore(values.master, MASTER, dir, 'master');
    await seed(master, N);
  }
  const fork = await makeStore(format, FORK, dir, 'fork');
  let session;
  if (values.profile) {
    session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 200 });
    await session.post('Profiler.start');
  }
  const options = { topic: TOPIC, conflict: masterWins(), batchSize: DEFAULT_BATCH_SIZE };
  const main0 = mainThreadMs();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let forkLink;
  if (worker) {
    const { port1, port2 } = new MessageChannel();
    worker.postMessage({ port: port2 }, [port2]);
    forkLink = new PortLink(port1, 'master');
  } else {
    links = createMemoryLinkPair();
    masterRep = replicate({ ...options, store: master, meta: master, link: links[0] });
    forkLink = links[1];
  }
  const forkRep = replicate({ ...options, store: fork, meta: fork, link: forkLink });
  await whenForkHas(forkRep, N);
  const tPulled = performance.now();
  await fork.flush();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const mainMs = mainThreadMs() - main0;
  if (session) {
    const { profile } = await session.post('Profiler.stop');
    mkdirSync(values.profile, { recursive: true });
    writeFileSync(join(values.profile, `${format}-${runIndex}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  }
  const count = (await fork.all()).length;
  if (count !== N) throw new Error(`${format}: the fork has ${count} documents, expected ${N}`);
  const stats = fork.stats ?? {};
  await forkRep.close();
  if (worker) {
    worker.postMessage('close');
    await new Promise((resolve) => worker.once('message', resolve));
    await worker.terminate();
    forkLink.close();
  } else {
    await masterRep.close();
    for (const l of links) l.close();
    await master.close();
  }
  await fork.close();
  rmSync(dir, { recursive: true, force: true });
  return {
    ms,
    pulledMs: tPulled - t0,
    cpuMs: (cpu.user + cpu.system) / 1000,
    mainMs,
    fileWrites: stats.fileWrites,
    sidecarAppends: stats.sidecarAppends,
    compactions: stats.compactions,
  };
}

async function main() {
  const { values } = parseArgs({
    options: {
      docs: { type: 'string', default: '100000' },
      runs: { type: 'string', default: '3' },
      formats: { type: 'string', default: 'json,ndjson' },
      master: { type: 'string', default: 'memory' },
      split: { type: 'boolean', default: false },
      profile: { type: 'string' },
    },
  });
  const N = Number(values.docs);
  const formats = values.formats.split(',');
  const results = new Map(formats.map((f) => [f, []]));
  for (let i = 0; i < Number(values.runs); i++) {
    for (const format of formats) {
      const r = await runOnce(format, values, i + 1);
      results.get(format).push(r);
      console.log(
        `run ${i + 1} ${format.padEnd(6)}: ${(r.ms / 1000).toFixed(2)} s, ${Math.round(N / (r.ms / 1000))} docs/s ` +
          `(pulled at ${(r.pulledMs / 1000).toFixed(2)} s), cpu ${((r.cpuMs * 1000) / N).toFixed(1)} us/doc, ` +
          `main thread ${((r.mainMs * 1000) / N).toFixed(1)} us/doc; file writes ${r.fileWrites ?? '-'}, ` +
          `sidecar appends ${r.sidecarAppends ?? '-'}, compactions ${r.compactions ?? '-'}`,
      );
      global.gc?.();
    }
  }
  const mid = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(
    `\n${N} docs, master ${values.master}${values.split ? ' in a worker thread' : ' in the same thread'}; medians:`,
  );
  for (const [format, rs] of results) {
    const rate = mid(rs.map((r) => N / (r.ms / 1000)));
    const cpu = mid(rs.map((r) => (r.cpuMs * 1000) / N));
    const main = rs.map((r) => (r.mainMs * 1000) / N);
    console.log(
      `  ${format.padEnd(6)} ${String(Math.round(rate)).padStart(7)} docs/s   cpu ${cpu.toFixed(1)} us/doc   ` +
        `main thread ${mid(main).toFixed(1)} us/doc (best ${Math.min(...main).toFixed(1)})`,
    );
  }
}
