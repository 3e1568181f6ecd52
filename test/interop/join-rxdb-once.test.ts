/**
 * Interop: `p2psync join --once` against a stock RxDB 17 peer exits 0 once in sync, with the data on both sides:
 * as fork pulling from an RxDB master (small pages: `--batch-size 20`), and as master with an RxDB fork that
 * pushes its own documents and pulls the file's (an RxDB fork sends no in-sync marker, so p2psync must settle it
 * through its idle RESYNC, replication.md).
 */
import { describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeDoc, readDocs } from '../helpers/e2e.js';
import { CliProcess } from '../helpers/spawn.js';
import { masterOf, startRxdbPeer } from '../helpers/rxdb.js';
import { canonicalDocs, joinArgs, ROLE_FORK_TOKEN, ROLE_MASTER_TOKEN, interopFixture } from '../helpers/rxdb-join.js';

// Tokens that force the roles: MASTER is master of FORK whichever side computes it.
const MASTER = ROLE_MASTER_TOKEN;
const FORK = ROLE_FORK_TOKEN;
/** `--timeout` for the one-shot runs: generous for a loaded 2-core machine, well inside the test timeout. */
const ONCE_TIMEOUT_S = 25;

const { tmp, peers, url: serverUrl, topic } = interopFixture('join-rxdb-once');

/** Starts `join --once` (not waiting for anything: it may be done quickly) and tracks it for cleanup. */
function startOnce(file: string, t: string, url: string, token: string, extra: string[] = []): CliProcess {
  const proc = new CliProcess(
    joinArgs({
      store: file,
      topic: t,
      signal: url,
      token,
      extra: ['--once', '--timeout', String(ONCE_TIMEOUT_S), ...extra],
    }),
  );
  peers.push({ stop: () => proc.stop('SIGKILL', 0) });
  return proc;
}

describe('p2psync join --once <-> stock RxDB 17', () => {
  it('as fork: pulls an RxDB master’s 300 docs with --batch-size 20, then exits 0', async () => {
    expect(masterOf(FORK, MASTER)).toBe(MASTER);
    const file = join(await tmp.make('join-rxdb-once-'), 'docs.ndjson');
    const url = serverUrl('p2psync');
    const t = topic();
    const rxStart = startRxdbPeer({ signal: url, topic: t, token: MASTER, prefix: 'R', seed: 300 });
    rxStart.then(
      (rx) => peers.push(rx),
      () => {},
    );
    const p2p = startOnce(file, t, url, FORK, ['--batch-size', '20']);
    const rx = await rxStart;

    expect(await p2p.exited).toEqual({ code: 0, signal: null });
    expect(p2p.events.find((e) => e.event === 'peer-connected')).toMatchObject({ peerToken: MASTER, role: 'fork' });
    expect(p2p.events.find((e) => e.event === 'synced')).toMatchObject({ peers: 1, documents: 300 });
    expect(p2p.events.at(-1)).toMatchObject({ event: 'closed', reason: 'synced', exitCode: 0 });
    // Progress events add up pages (at most one event per 250 ms), so they count documents, not pages.
    const pulled = p2p.events.filter((e) => e.event === 'pulled');
    expect(pulled.reduce((n, e) => n + (e.count as number), 0)).toBe(300);
    expect(pulled.at(-1)).toMatchObject({ total: 300 });

    const fileDocs = [...(await readDocs(file)).values()];
    expect(fileDocs).toHaveLength(300);
    expect(canonicalDocs(fileDocs)).toBe(canonicalDocs(await rx.dump()));
  });

  it('as master: an RxDB fork pushes its 100 docs and pulls the file’s 200, then p2psync exits 0', async () => {
    expect(masterOf(MASTER, FORK)).toBe(MASTER);
    const file = join(await tmp.make('join-rxdb-once-'), 'docs.json');
    const seeded = Array.from({ length: 200 }, (_, i) => makeDoc('P', i + 1));
    await writeFile(file, JSON.stringify(seeded));
    const url = serverUrl('rxdb');
    const t = topic();
    const rxStart = startRxdbPeer({ signal: url, topic: t, token: FORK, prefix: 'R', seed: 100 });
    rxStart.then(
      (rx) => peers.push(rx),
      () => {},
    );
    const p2p = startOnce(file, t, url, MASTER);
    const rx = await rxStart;

    expect(await p2p.exited).toEqual({ code: 0, signal: null });
    expect(p2p.events.find((e) => e.event === 'peer-connected')).toMatchObject({ peerToken: FORK, role: 'master' });
    expect(p2p.events.find((e) => e.event === 'synced')).toMatchObject({ peers: 1, documents: 300 });
    expect(p2p.events.at(-1)).toMatchObject({ event: 'closed', reason: 'synced', exitCode: 0 });

    // "In sync" held when p2psync left: the file has both sets, and RxDB already holds every doc of the file.
    const fileDocs = [...(await readDocs(file)).values()];
    expect(fileDocs).toHaveLength(300);
    const rxDocs = await rx.dump();
    expect(rxDocs).toHaveLength(300);
    expect(canonicalDocs(rxDocs)).toBe(canonicalDocs(fileDocs));
    expect(canonicalDocs(fileDocs.filter((d) => String(d.id).startsWith('P-')))).toBe(canonicalDocs(seeded));
  });
});
