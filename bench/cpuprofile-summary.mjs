#!/usr/bin/env node
// Summarises `node --cpu-prof` output: self time per function and per source file, top entries first.
//   node bench/cpuprofile-summary.mjs profile.cpuprofile [--top 25]
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

const args = process.argv.slice(2);
const topIndex = args.indexOf('--top');
const top = topIndex >= 0 ? Number(args[topIndex + 1]) : 25;
const files = args.filter((a, i) => !a.startsWith('--') && (topIndex < 0 || i !== topIndex + 1));

for (const file of files) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]);
    const dt = profile.timeDeltas[i] ?? 0;
    self.set(node.id, (self.get(node.id) ?? 0) + dt);
  }
  const byFunction = new Map();
  const byFile = new Map();
  let total = 0;
  for (const [id, us] of self) {
    const { callFrame } = byId.get(id);
    const where = callFrame.url ? `${basename(callFrame.url)}:${callFrame.lineNumber + 1}` : '(native)';
    const fn = `${callFrame.functionName || '(anonymous)'} ${where}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
    const f = callFrame.url ? basename(callFrame.url) : callFrame.functionName || '(native)';
    byFile.set(f, (byFile.get(f) ?? 0) + us);
    total += us;
  }
  const show = (title, map) => {
    console.log(`\n${title}`);
    for (const [k, us] of [...map].sort((x, y) => y[1] - x[1]).slice(0, top)) {
      console.log(`${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${k}`);
    }
  };
  console.log(`${basename(file)}: ${(total / 1000).toFixed(0)} ms sampled`);
  show('self time by function', byFunction);
  show('self time by file', byFile);
}
