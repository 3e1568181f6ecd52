// Locations the benchmarks use, resolved from this file so the runner works from any working directory.
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BIN = fileURLToPath(new URL('../../bin/p2psync.js', import.meta.url));
export const RXDB_PEER = fileURLToPath(new URL('../../test/fixtures/rxdb-peer.mjs', import.meta.url));
export const RXDB_SIGNAL = fileURLToPath(new URL('../../test/fixtures/rxdb-signal-server.mjs', import.meta.url));
export const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));
export const BENCHMARKS_MD = fileURLToPath(new URL('../../docs/BENCHMARKS.md', import.meta.url));

/** A file inside bench/. */
export function benchPath(rel) {
  return fileURLToPath(new URL(`../${rel}`, import.meta.url));
}
