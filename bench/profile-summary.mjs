#!/usr/bin/env node
// Where the CPU time goes: summarises V8 CPU profiles (`node --cpu-prof`, written by `npm run bench -- --profile`)
// by self time, per area (our dist/ folders, each node_modules package, Node internals, GC) and per function.
// Usage: node bench/profile-summary.mjs DIR|FILE... [--top N] [--match TEXT] [--during FN]
//   --match keeps files whose name contains TEXT, e.g. "fresh" or "ndjson";
//   --during counts only the samples from the first to the last one with a function named FN on the stack (e.g.
//   `apply` for a fork's pull, `changesSince` for a master's pages), so start-up and shutdown do not blur how busy a
//   process was while it transferred: idle time in that window is time it waited for its peer.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, basename, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';

/** Groups a script URL into an area: dist/<folder>, a node_modules package, Node internals, or the bench code. */
function area(url, functionName) {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return 'node internals';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1];
  const dist = /\/dist\/([^/]+)(\/|\.js)/.exec(url);
  if (dist) return `dist/${dist[1]}`;
  if (/\/bench\//.test(url)) return 'bench';
  return url.replace(/^file:\/\//, '');
}

function shortUrl(url) {
  return url.replace(/^file:\/\/.*?\/(node_modules|dist|bench)\//, '$1/');
}

/** The .cpuprofile files among `paths` (files or directories), optionally only names containing `match`. */
export function profileFiles(paths, match) {
  return paths
    .flatMap((p) =>
      statSync(p).isDirectory()
        ? readdirSync(p)
            .filter((f) => f.endsWith('.cpuprofile'))
            .sort()
            .map((f) => join(p, f))
        : [p],
    )
    .filter((f) => !match || basename(f).includes(match));
}

/**
 * Self time of one profile: {name, cpuMs, idleMs, areas: [[area, ms]], functions: [[fn, ms]]}, both lists sorted
 * by time and cut to `top` entries. Idle time is reported apart and left out of the percentages. With `during`,
 * only the samples between the first and the last one that has a function of that name on its stack count
 * (`windowMs` is that span).
 */
export function summariseProfile(file, top = 20, during = undefined) {
  const prof = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const [from, to] = during ? sampleWindow(prof, byId, during) : [0, prof.samples.length - 1];
  const self = new Map();
  // timeDeltas[i] is the time since the previous sample; attribute it to sample i's node.
  for (let i = from; i <= to; i++) {
    const id = prof.samples[i];
    self.set(id, (self.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0));
  }
  const areas = new Map();
  const fns = new Map();
  let total = 0;
  let idle = 0;
  for (const [id, us] of self) {
    const cf = byId.get(id).callFrame;
    if (cf.functionName === '(idle)') {
      idle += us;
      continue;
    }
    total += us;
    const a = area(cf.url, cf.functionName);
    areas.set(a, (areas.get(a) ?? 0) + us);
    const key = `${cf.functionName || '(anonymous)'}${cf.url ? ` ${shortUrl(cf.url)}:${cf.lineNumber + 1}` : ''}`;
    fns.set(key, (fns.get(key) ?? 0) + us);
  }
  const sorted = (m) =>
    [...m]
      .sort((x, y) => y[1] - x[1])
      .slice(0, top)
      .map(([k, us]) => [k, Math.round(us / 1000)]);
  const summary = {
    name: basename(file, '.cpuprofile'),
    cpuMs: Math.round(total / 1000),
    idleMs: Math.round(idle / 1000),
    areas: sorted(areas),
    functions: sorted(fns),
  };
  if (during) summary.windowMs = Math.round((total + idle) / 1000);
  return summary;
}

/** Indexes of the first and last sample with a function named `fn` on the stack (all samples if none has). */
function sampleWindow(prof, byId, fn) {
  const parent = new Map();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const memo = new Map();
  const onStack = (id) => {
    if (!memo.has(id)) {
      let p = id;
      while (p !== undefined && byId.get(p).callFrame.functionName !== fn) p = parent.get(p);
      memo.set(id, p !== undefined);
    }
    return memo.get(id);
  };
  let first = -1;
  let last = -1;
  for (let i = 0; i < prof.samples.length; i++) {
    if (!onStack(prof.samples[i])) continue;
    if (first < 0) first = i;
    last = i;
  }
  return first < 0 ? [0, prof.samples.length - 1] : [first, last];
}

function printSummary(s) {
  const pct = (x) => `${((100 * x) / s.cpuMs).toFixed(1).padStart(5)} %`;
  const msStr = (x) => `${String(x).padStart(7)} ms`;
  const span = s.windowMs !== undefined ? ` (in a ${s.windowMs} ms window)` : '';
  const out = [`\n== ${s.name}: ${s.cpuMs} ms on CPU, ${s.idleMs} ms idle${span}`, '-- self time by area'];
  for (const [a, x] of s.areas) out.push(`${msStr(x)} ${pct(x)}  ${a}`);
  out.push('-- self time by function');
  for (const [f, x] of s.functions) out.push(`${msStr(x)} ${pct(x)}  ${f}`);
  process.stdout.write(out.join('\n') + '\n');
}

const isEntry = process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href;
if (isEntry) {
  const { values: opts, positionals } = parseArgs({
    options: { top: { type: 'string', default: '20' }, match: { type: 'string' }, during: { type: 'string' } },
    allowPositionals: true,
  });
  if (positionals.length === 0) {
    process.stderr.write('usage: node bench/profile-summary.mjs DIR|FILE... [--top N] [--match TEXT] [--during FN]\n');
    process.exit(2);
  }
  // Piping into `head` closes stdout early: that is not an error.
  process.stdout.on('error', () => process.exit(0));
  for (const f of profileFiles(positionals, opts.match))
    printSummary(summariseProfile(f, Number(opts.top), opts.during));
}
