import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  FORK_TOKEN,
  MASTER_TOKEN,
  makeDoc,
  readDocs,
  startPeer,
  waitUntil,
  writeDocsFile,
  e2eFixture,
} from '../helpers/e2e.js';
import { runCli, runCliMany, type CliEvent } from '../helpers/spawn.js';

const { temp, signals } = e2eFixture();

const CONNECT_MS = 20_000;
const TOPIC = 'e2e-topic';

function parseEvents(stdout: string): CliEvent[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as CliEvent);
}

/** `join --once` as a one-shot run to completion, on loopback ICE. */
async function joinOnce(
  store: string,
  signal: string,
  extra: string[] = [],
): Promise<{ code: number | null; events: CliEvent[]; stderr: string }> {
  const r = await runCli(
    [
      'join',
      '--topic',
      TOPIC,
      '--store',
      store,
      '--signal',
      signal,
      '--ice-bind',
      '127.0.0.1',
      '--json',
      '--once',
      ...extra,
    ],
    { timeoutMs: 40_000 },
  );
  return { code: r.code, events: parseEvents(r.stdout), stderr: r.stderr };
}

describe('join --once', () => {
  it('exits 0 once in sync, with the documents in its file, as fork and as master', async () => {
    const dir = await temp.make();
    const live = join(dir, 'live.json');
    await writeDocsFile(
      live,
      [0, 1, 2, 3, 4].map((n) => makeDoc('live', n)),
    );
    const sig = await signals.start();
    const livePeer = await startPeer({ store: live, signal: sig.url, token: MASTER_TOKEN });
    const liveLog = (): string =>
      `live peer events: ${livePeer.events.map((e) => JSON.stringify(e)).join('\n')}\n${livePeer.stderr}`;

    // As fork: pulls the live peer's documents and pushes its own.
    const forkFile = join(dir, 'once-fork.ndjson');
    await writeDocsFile(forkFile, [{ id: 'from-fork', n: 1 }]);
    const asFork = await joinOnce(forkFile, sig.url, ['--storage-token', FORK_TOKEN]);
    expect(asFork.code, asFork.stderr).toBe(0);
    expect(asFork.events.find((e) => e.event === 'peer-connected')).toMatchObject({
      role: 'fork',
      peerToken: MASTER_TOKEN,
      // ICE's selected pair: on loopback a direct host (or peer-reflexive) path
      path: {
        local: { type: 'host', protocol: 'udp', address: '127.0.0.1' },
        remote: { address: '127.0.0.1' },
        relayed: false,
      },
    });
    expect(asFork.events.find((e) => e.event === 'synced')).toMatchObject({ peers: 1, documents: 6 });
    expect(asFork.events.at(-1)).toMatchObject({ event: 'closed', reason: 'synced', exitCode: 0 });
    expect([...(await readDocs(forkFile)).keys()].sort()).toEqual([
      'from-fork',
      ...[0, 1, 2, 3, 4].map((n) => makeDoc('live', n).id as string),
    ]);
    await waitUntil(async () => (await readDocs(live)).has('from-fork'), 20_000, liveLog);

    // As master of the live peer (a token whose hash beats the live peer's): exits 0 only once the fork applied
    // what it pulled and pushed what it had (its in-sync marker), so both files hold everything.
    const masterFile = join(dir, 'once-master.json');
    await writeDocsFile(masterFile, [{ id: 'from-master', n: 2 }]);
    const asMaster = await joinOnce(masterFile, sig.url, ['--storage-token', 'zzzzzzzzzz']);
    expect(asMaster.code, asMaster.stderr).toBe(0);
    expect(asMaster.events.find((e) => e.event === 'peer-connected')).toMatchObject({
      role: 'master',
      peerToken: MASTER_TOKEN,
    });
    expect(asMaster.events.at(-1)).toMatchObject({ event: 'closed', reason: 'synced', exitCode: 0 });
    const everything = [
      'from-fork',
      'from-master',
      ...[0, 1, 2, 3, 4].map((n) => makeDoc('live', n).id as string),
    ].sort();
    expect([...(await readDocs(masterFile)).keys()].sort()).toEqual(everything);
    await waitUntil(async () => (await readDocs(live)).has('from-master'), 20_000, liveLog);
  });

  it('--timeout with no peer exits 3 with an E_TIMEOUT error event', async () => {
    const dir = await temp.make();
    const sig = await signals.start();
    const r = await joinOnce(join(dir, 'alone.json'), sig.url, ['--timeout', '2']);
    expect(r.code, r.stderr).toBe(3);
    expect(r.events.filter((e) => e.event === 'error')).toEqual([
      expect.objectContaining({
        code: 'E_TIMEOUT',
        message: expect.stringMatching(/no peer joined/),
        details: expect.objectContaining({ diagnosis: 'no-peer', peersSignaled: 0 }),
      }),
    ]);
    expect(r.events.some((e) => e.event === 'synced' || e.event === 'peer-connected')).toBe(false);
    expect(r.events.at(-1)).toMatchObject({ event: 'closed', reason: 'timeout', exitCode: 3 });
  });

  it('--wait-peers 2 stays until a second peer was seen and synced', async () => {
    const dir = await temp.make();
    const [fileA, fileB, fileW] = [join(dir, 'a.json'), join(dir, 'b.json'), join(dir, 'w.ndjson')];
    await writeDocsFile(fileA, [makeDoc('a', 1)]);
    await writeDocsFile(fileB, [makeDoc('b', 1)]);
    const sig = await signals.start();
    // W is the fork of both (FORK_TOKEN loses to 'aaaaaaaaaa' and to 'eeeeeeeeee').
    const a = await startPeer({ store: fileA, signal: sig.url, token: MASTER_TOKEN });
    const w = await startPeer({
      store: fileW,
      signal: sig.url,
      token: FORK_TOKEN,
      extra: ['--once', '--wait-peers', '2', '--timeout', '60'],
    });
    // In sync with A (A says so too), yet still running: one peer is not enough.
    await w.waitFor('peer-connected', CONNECT_MS);
    await a.waitFor('synced', CONNECT_MS);
    await waitUntil(async () => (await readDocs(fileW)).has('a-00000001'));
    expect(w.child.exitCode).toBeNull();
    expect(w.events.some((e) => e.event === 'synced')).toBe(false);

    await startPeer({ store: fileB, signal: sig.url, token: 'eeeeeeeeee' });
    expect(await w.exited).toEqual({ code: 0, signal: null });
    expect(w.events.find((e) => e.event === 'synced')).toMatchObject({ peers: 2 });
    expect(w.events.filter((e) => e.event === 'peer-connected').map((e) => [e.peerToken, e.role])).toEqual([
      [MASTER_TOKEN, 'fork'],
      ['eeeeeeeeee', 'fork'],
    ]);
    expect([...(await readDocs(fileW)).keys()].sort()).toEqual(['a-00000001', 'b-00000001']);
  });
});

describe('join signals and flags', () => {
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 0],
  ] as const) {
    it(`${signal} on a live join exits ${code} with a closed event and a flushed file`, async () => {
      const dir = await temp.make();
      const master = join(dir, 'master.json');
      const docs = Array.from({ length: 50 }, (_, i) => makeDoc('m', i));
      await writeDocsFile(master, docs);
      const sig = await signals.start();
      await startPeer({ store: master, signal: sig.url, token: MASTER_TOKEN });
      const forkFile = join(dir, 'fork.ndjson');
      const fork = await startPeer({ store: forkFile, signal: sig.url, token: FORK_TOKEN });
      // Signal right after the pull was applied in memory: the file is saved on a timer, so only a flush at
      // shutdown puts the documents there in time.
      const pulled = await fork.waitFor('pulled', CONNECT_MS);
      fork.kill(signal);
      expect(await fork.exited).toEqual({ code, signal: null });
      expect(pulled.total).toBe(50);
      expect(fork.events.at(-1)).toMatchObject({ event: 'closed', reason: 'interrupted', exitCode: code });
      const saved = await readDocs(forkFile);
      expect(saved.size).toBe(50);
      expect(saved.get('m-00000049')).toEqual(docs[49]);
    });
  }

  it('bad flags exit 2 with a precise message and touch nothing', async () => {
    const dir = await temp.make();
    const store = join(dir, 'never.json');
    const base = ['join', '--store', store, '--json'];
    const cases: Array<[string[], RegExp]> = [
      [['--topic', 'short'], /--topic.*'short' is invalid.*6 to 99 characters long.*got 5/],
      [
        ['--topic', 'long-enough', '--signal', 'http://127.0.0.1:1'],
        /--signal.*expected a ws:\/\/ or wss:\/\/ URL, got "http:"/,
      ],
      [
        ['--topic', 'long-enough', '--pull-only', '--push-only'],
        /'--pull-only' cannot be used with option '--push-only'/,
      ],
      [['--topic', 'long-enough', '--timeout', '5'], /--timeout only applies with --once/],
      [['--topic', 'long-enough', '--once', '--wait-peers', '-1'], /--wait-peers.*'-1' is invalid/],
    ];
    const results = await runCliMany(cases.map(([args]) => [[...base, ...args], { timeoutMs: 30_000 }] as const));
    cases.forEach(([args, message], i) => {
      expect({ args, code: results[i]!.code }).toEqual({ args, code: 2 });
      expect(results[i]!.stderr).toMatch(message);
    });
    expect(existsSync(store)).toBe(false);
    expect(existsSync(`${store}.p2psync`)).toBe(false);
  });
});
