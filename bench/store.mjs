#!/usr/bin/env node
// `npm run bench:store`: the store benchmark alone (issue 3 item 11). Same runner and options as bench/run.mjs,
// so its results land in bench/results/latest.json and docs/BENCHMARKS.md next to the others.
import { main } from './run.mjs';

main(['--only', 'store', ...process.argv.slice(2)]).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`bench: ${err?.message ?? err}\n`);
    process.exit(2);
  },
);
