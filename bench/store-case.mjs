#!/usr/bin/env node
// One store benchmark case in its own process, so its peak RSS (VmHWM) belongs to this case alone.
// Prints one JSON line: {event:"result", format, n, openColdMs, openWarmMs, scanMs, burstMs, burstFlushMs, ...}.
// Flags: --dir DIR  --format json|ndjson  --n N  --burst N (default 10000)  --scan-limit N (default 1000)
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { statSync } from 'node:fs';
import { makeDoc, writeDocsFile } from './lib/docs.mjs';
import { readPeakRss } from './lib/proc.mjs';

const { values: args } = parseArgs({
  options: {
    dir: { type: 'string' },
    format: { type: 'string', default: 'ndjson' },
    n: { type: 'string', default: '10000' },
    burst: { type: 'string', default: '10000' },
    'scan-limit': { type: 'string', default: '1000' },
  },
  strict: true,
});
const n = Number(args.n);
const burst = Math.min(Number(args.burst), n);
const scanLimit = Number(args['scan-limit']);
const format = args.format;

let openStore;
try {
  ({ openStore } = await import('../dist/store/open.js'));
} catch (err) {
  process.stdout.write(JSON.stringify({ event: 'unavailable', reason: `dist/store/open.js: ${err.message}` }) + '\n');
  process.exit(0);
}

const path = join(args.dir, `store-${n}.${format}`);
await writeDocsFile(path, format, 'doc', n);
const fileBytes = statSync(path).size;
const rssBeforeOpen = readPeakRss(process.pid);
// watch:false keeps the outside-edit checks out of the timings; the watcher costs nothing until the file changes.
const options = { path, format, watch: false, storageToken: 'benchstore' };

// Cold open: no sidecar yet, so every document is ingested and gets its last-write time.
let t = performance.now();
let store = await openStore(options);
const openColdMs = performance.now() - t;
await store.close();

// Warm open: the sidecar exists; this is what every restart pays.
t = performance.now();
store = await openStore(options);
const openWarmMs = performance.now() - t;

// Full change-feed scan, page by page, as a fork pulling from checkpoint null would see it.
t = performance.now();
let cp = null;
let scanned = 0;
let pages = 0;
for (;;) {
  const page = await store.changesSince(cp, scanLimit);
  scanned += page.documents.length;
  pages++;
  cp = page.checkpoint;
  if (page.documents.length < scanLimit) break;
}
const scanMs = performance.now() - t;
if (scanned !== n) throw new Error(`scan saw ${scanned} documents, expected ${n}`);

// A burst of single-document remote updates, each awaited: the worst case for write coalescing.
const before = { ...store.stats };
const origin = { kind: 'peer', peerToken: 'bench-peer' };
t = performance.now();
for (let i = 1; i <= burst; i++) {
  const doc = { ...makeDoc('doc', i), _deleted: false };
  const conflicts = await store.bulkWrite([{ document: { ...doc, n: -i }, expected: doc }], origin);
  if (conflicts.length) throw new Error(`unexpected conflict on ${doc.id}`);
}
const burstMs = performance.now() - t;
await store.flush();
const burstFlushMs = performance.now() - t;
const after = { ...store.stats };

t = performance.now();
await store.close();
const closeMs = performance.now() - t;

const result = {
  event: 'result',
  format,
  n,
  fileBytes,
  openColdMs,
  openWarmMs,
  scanMs,
  scanPages: pages,
  scanLimit,
  burst,
  burstMs,
  burstFlushMs,
  burstFileWrites: after.fileWrites - before.fileWrites,
  burstSidecarAppends: after.sidecarAppends - before.sidecarAppends,
  closeMs,
  rssBeforeOpen,
  peakRss: readPeakRss(process.pid),
};
process.stdout.write(JSON.stringify(result) + '\n');
