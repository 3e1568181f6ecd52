#!/usr/bin/env node
// Peak memory of opening a store (issue 17): seeds a store of N ~200-byte documents (the benchmark documents), then
// in fresh child processes opens it for the first time (no sidecar yet), and reopens it and serves every document
// as change-feed pages of 200, as a master does. Prints the peak RSS (VmHWM) of each child next to the bound
// 3x the file's bytes + 80 MB.
//   npm run build && node bench/store-memory.mjs [--docs 300000,1000000] [--formats ndjson,json] [--root DIR]
// `--root` measures another checkout's dist/ (e.g. an older commit) with the same documents.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const here = fileURLToPath(import.meta.url);
const peakMb = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) >> 10;

async function child(root, step, path, format) {
  const { openStore } = await import(pathToFileURL(join(root, 'dist/store/open.js')).href);
  const started = process.cpuUsage();
  const store = await openStore({ path, format, watch: false });
  let served = 0;
  if (step === 'reopen') {
    for (let cp = null; ;) {
      const page = await store.changesSince(cp, 200);
      if (page.documents.length === 0) break;
      JSON.stringify(page.documents);
      served += page.documents.length;
      cp = page.checkpoint;
    }
  }
  await store.close();
  const cpu = process.cpuUsage(started);
  process.stdout.write(JSON.stringify({ peakMb: peakMb(), cpuMs: Math.round((cpu.user + cpu.system) / 1000), served }));
}

async function main() {
  const { values } = parseArgs({
    options: {
      docs: { type: 'string', default: '300000' },
      formats: { type: 'string', default: 'ndjson,json' },
      root: { type: 'string', default: resolve(here, '../..') },
      child: { type: 'string' },
      path: { type: 'string' },
      format: { type: 'string' },
    },
  });
  if (values.child) return child(values.root, values.child, values.path, values.format);
  const { writeDocsFile } = await import('./lib/docs.mjs');
  console.log('| format | docs | file MB | bound MB | first open peak MB | reopen + serve peak MB | open CPU s |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const n of values.docs.split(',').map(Number)) {
    for (const format of values.formats.split(',')) {
      const dir = mkdtempSync(join(tmpdir(), 'p2psync-store-memory-'));
      try {
        const path = join(dir, `store.${format}`);
        await writeDocsFile(path, format, 'seed', n);
        const bytes = statSync(path).size;
        const run = (step) => {
          const args = [here, '--child', step, '--root', values.root, '--path', path, '--format', format];
          const r = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 20 });
          if (r.status !== 0) throw new Error(`${step} failed: ${r.stderr}`);
          return JSON.parse(r.stdout);
        };
        const first = run('first');
        const again = run('reopen');
        const mb = (x) => Math.round(x / 2 ** 20);
        console.log(
          `| ${format} | ${n.toLocaleString('en-US')} | ${mb(bytes)} | ${mb(3 * bytes) + 80} | ${first.peakMb} | ${again.peakMb} | ${(again.cpuMs / 1000).toFixed(1)} |`,
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
}

await main();
