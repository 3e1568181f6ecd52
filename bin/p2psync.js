#!/usr/bin/env node
// Thin launcher: all behaviour lives in the compiled CLI (src/cli/main.ts).
let main;
try {
  ({ main } = await import('../dist/cli/main.js'));
} catch (err) {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist')) {
    process.stderr.write('p2psync: the compiled code is missing; run `npm run build` (or `npm install`) first\n');
    process.exit(1);
  }
  throw err;
}
const code = await main(process.argv.slice(2));
process.exitCode = code;
// Exit explicitly once stdout is drained: simple-peer and node-datachannel keep timers and threads alive.
process.stdout.write('', () => process.exit(code));
