/**
 * Helpers for interop tests of `p2psync join` against the stock RxDB peer fixture: comparing RxDB's documents with
 * a p2psync store file, starting both signaling servers, and starting RxDB / p2psync pairs with forced roles.
 */
import { writeFile } from 'node:fs/promises';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { randomBytes } from 'node:crypto';
import { makeDoc, readDocs, startSignal, TempDirs, type PeerOptions } from './e2e.js';
import {
  startRxdbPeer,
  startRxdbSignalServer,
  stopAllRxdbProcesses,
  type PlainDoc,
  type RxdbPeer,
  type RxdbPeerOptions,
} from './rxdb.js';
import { CliProcess } from './spawn.js';

/** Canonical JSON of a set of documents: sorted by id, object keys sorted, so two sides compare as one string. */
export function canonicalDocs(docs: Iterable<Record<string, unknown>>): string {
  return JSON.stringify([...docs].map((d) => sortKeysDeep(d)).sort((a, b) => cmpId(a, b)));
}

function cmpId(a: unknown, b: unknown): number {
  const x = String((a as { id?: unknown }).id);
  const y = String((b as { id?: unknown }).id);
  return x < y ? -1 : x > y ? 1 : 0;
}

function sortKeysDeep(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeysDeep);
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sortKeysDeep((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}

/**
 * Polls until the RxDB peer's live documents and the documents of a p2psync store (read by `readFileDocs`)
 * are identical (and, if given, exactly `count` of them). Resolves with RxDB's dump; on timeout the error names
 * the sizes and the first differing id.
 */
export async function waitRxdbMatches(
  peer: RxdbPeer,
  readFileDocs: () => Promise<Iterable<Record<string, unknown>>>,
  opts: { count?: number; timeoutMs?: number } = {},
): Promise<PlainDoc[]> {
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  let last = { rx: [] as PlainDoc[], file: [] as Array<Record<string, unknown>> };
  for (;;) {
    try {
      const [rx, file] = await Promise.all([peer.dump(), readFileDocs().then((d) => [...d])]);
      last = { rx, file };
      if ((opts.count === undefined || rx.length === opts.count) && canonicalDocs(rx) === canonicalDocs(file))
        return rx;
    } catch {
      /* the file may be mid-replace: try again */
    }
    if (Date.now() > deadline)
      throw new Error(
        `RxDB and p2psync differ after ${opts.timeoutMs ?? 20_000} ms: ${describeDiff(last.rx, last.file)}`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}

function describeDiff(rx: PlainDoc[], file: Array<Record<string, unknown>>): string {
  const byId = new Map(file.map((d) => [String(d.id), d]));
  const rxIds = new Set(rx.map((d) => d.id));
  const onlyRx = rx.filter((d) => !byId.has(d.id)).map((d) => d.id);
  const onlyFile = file.map((d) => String(d.id)).filter((id) => !rxIds.has(id));
  const differing = rx.filter((d) => byId.has(d.id) && canonicalDocs([d]) !== canonicalDocs([byId.get(d.id)!]));
  const first = differing[0];
  return (
    `rxdb ${rx.length} docs, p2psync ${file.length} docs; only in rxdb: ${onlyRx.slice(0, 5).join(',')}` +
    `${onlyRx.length > 5 ? '…' : ''} (${onlyRx.length}); only in p2psync: ${onlyFile.slice(0, 5).join(',')} (${onlyFile.length}); ` +
    `differing: ${differing.length}` +
    (first ? ` e.g. rxdb ${JSON.stringify(first)} vs p2psync ${JSON.stringify(byId.get(first.id))}` : '')
  );
}

/** The two signaling servers interop tests run against: `p2psync signal` and RxDB's own. */
export type SignalKind = 'p2psync' | 'rxdb';

/**
 * Starts `p2psync signal` and RxDB's signaling server side by side (for a test file's beforeAll: each costs a
 * process start). Tests share them safely by using a fresh random topic each.
 */
export async function startSignalServers(): Promise<{ url: Record<SignalKind, string>; stop(): Promise<void> }> {
  const [p2p, rx] = await Promise.allSettled([startSignal(), startRxdbSignalServer()]);
  const stop = async (): Promise<void> => {
    await Promise.all([
      p2p.status === 'fulfilled' ? p2p.value.proc.stop() : undefined,
      rx.status === 'fulfilled' ? rx.value.stop() : undefined,
    ]);
  };
  if (p2p.status === 'rejected' || rx.status === 'rejected') {
    await stop();
    throw p2p.status === 'rejected' ? p2p.reason : (rx as PromiseRejectedResult).reason;
  }
  return { url: { p2psync: p2p.value.url, rxdb: rx.value.url }, stop };
}

/** What the hooks of `interopFixture` share with a test file's tests. */
export interface InteropFixture {
  readonly tmp: TempDirs;
  /** Processes to stop after each test (hand every one to it as soon as it starts). */
  readonly peers: Stoppable[];
  /** The URL of a signaling server (both start once per file, in beforeAll). */
  url(kind: SignalKind): string;
  /** A fresh random topic, so tests can share the servers. */
  topic(): string;
}

/**
 * Registers the hooks every interop test file needs (call it at the top of the file or a describe): both signaling
 * servers per file, the tracked processes and temp dirs after each test, and a sweep of anything left at the end.
 */
export function interopFixture(name: string): InteropFixture {
  const tmp = new TempDirs();
  const peers: Stoppable[] = [];
  let servers: Awaited<ReturnType<typeof startSignalServers>> | undefined;
  beforeAll(async () => {
    servers = await startSignalServers();
  });
  afterEach(async () => {
    await Promise.all(peers.splice(0).map((p) => p.stop()));
    await tmp.cleanup();
  });
  afterAll(async () => {
    await servers?.stop();
    // Anything a failed start left behind.
    await CliProcess.killAll();
    await stopAllRxdbProcesses();
  });
  return {
    tmp,
    peers,
    url: (kind) => {
      if (!servers) throw new Error('the signaling servers did not start');
      return servers.url[kind];
    },
    topic: () => `${name}-${randomBytes(5).toString('hex')}`,
  };
}

/** The `p2psync join` arguments e2e's `startPeer` uses (loopback ICE, `--json`), for callers that spawn themselves. */
export function joinArgs(o: PeerOptions): string[] {
  const topics = Array.isArray(o.topic) ? o.topic : [o.topic ?? 'e2e-topic'];
  const args = ['join', '--store', o.store, '--signal', o.signal, '--ice-bind', '127.0.0.1', '--json'];
  for (const t of topics) args.push('--topic', t);
  if (o.token) args.push('--storage-token', o.token);
  args.push(...(o.extra ?? []));
  return args;
}

/**
 * Like e2e's `startPeer`, but hands the process to `track` before waiting for `joined`, so a start that fails is
 * still stopped by the caller's afterEach (tests that share a `p2psync signal` cannot use `CliProcess.killAll()`).
 */
export async function startJoin(o: PeerOptions, track: (p: CliProcess) => void): Promise<CliProcess> {
  const proc = new CliProcess(joinArgs(o), { env: o.env });
  track(proc);
  await proc.waitFor('joined');
  return proc;
}

/** Anything an afterEach can stop. */
export interface Stoppable {
  stop(): Promise<unknown>;
}

/**
 * Starts a stock RxDB peer and a `p2psync join` side by side; every process that started is handed to `track`
 * (also when the other one failed), so the caller's afterEach stops it.
 */
export async function startRxdbAndJoin(
  rxOpts: RxdbPeerOptions,
  joinOpts: PeerOptions,
  track: (p: Stoppable) => void,
): Promise<{ rx: RxdbPeer; p2p: CliProcess }> {
  const [rx, p2p] = await Promise.allSettled([startRxdbPeer(rxOpts), startJoin(joinOpts, track)]);
  if (rx.status === 'fulfilled') track(rx.value);
  if (rx.status === 'rejected') throw rx.reason;
  if (p2p.status === 'rejected') throw p2p.reason;
  return { rx: rx.value, p2p: p2p.value };
}

/** Storage tokens that force roles in a pair: `masterOf(ROLE_MASTER_TOKEN, ROLE_FORK_TOKEN) === ROLE_MASTER_TOKEN`. */
export const ROLE_MASTER_TOKEN = 'aaaaaaaaaa';
export const ROLE_FORK_TOKEN = 'bbbbbbbbbb';

/** Options of `startConvergedPair`. */
export interface ConvergedPairOptions {
  /** Signaling URL (either server kind). */
  signal: string;
  topic: string;
  /** The role p2psync takes; forced through both storage tokens. */
  role: 'master' | 'fork';
  /** The p2psync store file; written with `p2pSeed` documents `P-…` (e2e's makeDoc) before the join starts. */
  file: string;
  rxSeed: number;
  p2pSeed: number;
  track: (p: Stoppable) => void;
  /** Emit RxDB `change` events (default true). */
  changes?: boolean;
  connectTimeoutMs?: number;
}

/**
 * Starts a stock RxDB peer seeded with `R-…` documents and a `p2psync join` on a file seeded with `P-…`
 * documents, with p2psync in the given role, and waits until both hold the same `rxSeed + p2pSeed` documents.
 */
export async function startConvergedPair(o: ConvergedPairOptions): Promise<{ rx: RxdbPeer; p2p: CliProcess }> {
  const p2pToken = o.role === 'master' ? ROLE_MASTER_TOKEN : ROLE_FORK_TOKEN;
  const rxToken = o.role === 'master' ? ROLE_FORK_TOKEN : ROLE_MASTER_TOKEN;
  const seeded = Array.from({ length: o.p2pSeed }, (_, i) => makeDoc('P', i + 1));
  await writeFile(o.file, JSON.stringify(seeded));
  const { rx, p2p } = await startRxdbAndJoin(
    { signal: o.signal, topic: o.topic, token: rxToken, prefix: 'R', seed: o.rxSeed, changes: o.changes ?? true },
    { store: o.file, topic: o.topic, signal: o.signal, token: p2pToken },
    o.track,
  );
  const connected = await p2p.waitFor('peer-connected', o.connectTimeoutMs ?? 20_000);
  if (connected.peerToken !== rxToken || connected.role !== o.role) {
    throw new Error(`expected p2psync to be ${o.role} of ${rxToken}, got ${JSON.stringify(connected)}`);
  }
  await waitRxdbMatches(rx, async () => (await readDocs(o.file)).values(), { count: o.rxSeed + o.p2pSeed });
  return { rx, p2p };
}
