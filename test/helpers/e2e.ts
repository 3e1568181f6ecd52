import { afterEach } from 'vitest';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { startSignalServer, type SignalServer } from '../../src/signaling/server.js';
import { CliProcess, runCli, type CliEvent, type CliResult } from './spawn.js';

/** A temp dir per test; `cleanup()` removes them all. */
export class TempDirs {
  private dirs: string[] = [];
  async make(prefix = 'p2psync-'): Promise<string> {
    const d = await mkdtemp(join(tmpdir(), prefix));
    this.dirs.push(d);
    return d;
  }
  async cleanup(): Promise<void> {
    await Promise.all(this.dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  }
}

/** Starts `p2psync signal --port PORT --json` (default port 0) and waits for its real port. */
export async function startSignal(
  extra: string[] = [],
  port = 0,
): Promise<{ proc: CliProcess; port: number; url: string }> {
  const proc = new CliProcess(['signal', '--port', String(port), '--json', ...extra]);
  const ev = await proc.waitFor('listening');
  return { proc, port: ev.port as number, url: `ws://127.0.0.1:${ev.port as number}` };
}

/**
 * Signaling servers hosted in the test process (cheaper than a `p2psync signal` process when the server itself is
 * not under test); `closeAll()` in afterEach.
 */
export class LocalSignals {
  private servers: SignalServer[] = [];
  async start(): Promise<{ url: string; port: number; server: SignalServer }> {
    const server = await startSignalServer({ port: 0, host: '127.0.0.1' });
    this.servers.push(server);
    return { url: `ws://127.0.0.1:${server.port}`, port: server.port, server };
  }
  async closeAll(): Promise<void> {
    await Promise.all(this.servers.splice(0).map((s) => s.close({ timeoutMs: 500 })));
  }
}

/**
 * What every end-to-end test file sets up: temp dirs and in-process signaling servers, plus an afterEach that
 * kills every spawned process, closes the servers and removes the dirs (after `also`, for a file's own cleanup).
 */
export function e2eFixture(also?: () => Promise<void>): { temp: TempDirs; signals: LocalSignals } {
  const temp = new TempDirs();
  const signals = new LocalSignals();
  afterEach(async () => {
    await also?.();
    await CliProcess.killAll();
    await signals.closeAll();
    await temp.cleanup();
  });
  return { temp, signals };
}

export interface PeerOptions {
  store: string;
  topic?: string | string[];
  signal: string;
  token?: string;
  extra?: string[];
  env?: Record<string, string | undefined>;
}

/** Starts `p2psync join ... --json` on loopback ICE; resolves once `joined` was printed. */
export async function startPeer(o: PeerOptions): Promise<CliProcess> {
  const topics = Array.isArray(o.topic) ? o.topic : [o.topic ?? 'e2e-topic'];
  const args = ['join', '--store', o.store, '--signal', o.signal, '--ice-bind', '127.0.0.1', '--json'];
  for (const t of topics) args.push('--topic', t);
  if (o.token) args.push('--storage-token', o.token);
  args.push(...(o.extra ?? []));
  const proc = new CliProcess(args, { env: o.env });
  await proc.waitFor('joined');
  return proc;
}

/** Reads a JSON-array or NDJSON store file into a map by id (missing file: empty). */
export async function readDocs(file: string, key = 'id'): Promise<Map<string, Record<string, unknown>>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return new Map();
  }
  const docs: Array<Record<string, unknown>> = file.endsWith('.json')
    ? text.trim()
      ? (JSON.parse(text) as Array<Record<string, unknown>>)
      : []
    : text
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l) as Record<string, unknown>);
  return new Map(docs.map((d) => [d[key] as string, d]));
}

/**
 * Polls `check` until it returns true; rejects with `describe()` after `timeoutMs`. A missing file counts as "not
 * yet"; any other error (a store file that does not parse) fails at once: p2psync replaces files atomically, so a
 * reader never sees half a file, and a test must not wait such a bug away.
 */
export async function waitUntil(
  check: () => Promise<boolean> | boolean,
  timeoutMs = 20_000,
  describe: () => Promise<string> | string = () => '',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms. ${await describe()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until every file holds the same documents (and, if given, exactly `count` of them). */
export async function waitConverged(
  files: string[],
  count?: number,
  timeoutMs = 30_000,
): Promise<Map<string, Record<string, unknown>>> {
  let last: Array<Map<string, Record<string, unknown>>> = [];
  await waitUntil(
    async () => {
      last = await Promise.all(files.map((f) => readDocs(f)));
      const first = canonical(last[0]!);
      return (count === undefined || last[0]!.size === count) && last.every((m) => canonical(m) === first);
    },
    timeoutMs,
    () => `sizes: ${last.map((m) => m.size).join(', ')}`,
  );
  return last[0]!;
}

export function canonical(docs: Map<string, Record<string, unknown>>): string {
  return JSON.stringify([...docs.keys()].sort().map((k) => sortKeys(docs.get(k))));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object')
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
    );
  return v;
}

/** Sum of a numeric field over a process's events of one kind. */
export function sumEvents(events: CliEvent[], name: string, field = 'count'): number {
  return events.filter((e) => e.event === name).reduce((n, e) => n + ((e[field] as number) ?? 0), 0);
}

/** A document of about 200 bytes. */
export function makeDoc(prefix: string, i: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: `${prefix}-${String(i).padStart(8, '0')}`,
    title: `Document number ${i}`,
    n: i,
    body: 'x'.repeat(120),
    ...extra,
  };
}

/** Tokens whose SHA-256 rule makes the first the master of the pair (docs/PROTOCOL.md §2.3 test vector). */
export const MASTER_TOKEN = 'aaaaaaaaaa';
export const FORK_TOKEN = 'bbbbbbbbbb';

/** Writes documents as a store file the way an outside program would: a temp file, then a rename over the file. */
export async function writeDocsFile(file: string, docs: Array<Record<string, unknown>>): Promise<void> {
  const text = file.endsWith('.json')
    ? `${JSON.stringify(docs, null, 2)}\n`
    : docs.map((d) => `${JSON.stringify(d)}\n`).join('');
  const tmp = join(dirname(file), `.${basename(file)}.test-${process.pid}.tmp`);
  await writeFile(tmp, text);
  await rename(tmp, file);
}

/** Runs a CRUD command (`put`, `rm`...) on a store and fails loudly unless it exits 0. */
export async function crud(args: string[], input?: string): Promise<CliResult> {
  const r = await runCli(args, input === undefined ? {} : { input });
  if (r.code !== 0) throw new Error(`p2psync ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r;
}

/** `p2psync put --store FILE` with the documents on stdin (safe while a `join` owns the store). */
export function putDocs(store: string, docs: Array<Record<string, unknown>>): Promise<CliResult> {
  return crud(['put', '--store', store], docs.map((d) => JSON.stringify(d)).join('\n') + '\n');
}

/** `p2psync rm --store FILE ids...`. */
export function rmDocs(store: string, ids: string[]): Promise<CliResult> {
  return crud(['rm', '--store', store, ...ids]);
}

/**
 * Waits for an event of `proc` that arrives after the first `from` events (e.g. `proc.events.length` taken before
 * an action), optionally matching `pred`.
 */
export function waitAfter(
  proc: CliProcess,
  from: number,
  name: string,
  pred: (e: CliEvent) => boolean = () => true,
  timeoutMs = 20_000,
): Promise<CliEvent> {
  return proc.waitFor((e) => e.event === name && proc.events.indexOf(e) >= from && pred(e), timeoutMs);
}

/** The given documents as a map by id, to compare with what `readDocs` / `waitConverged` return. */
export function docsById(docs: Array<Record<string, unknown>>): Map<string, Record<string, unknown>> {
  return new Map(docs.map((d) => [d.id as string, d]));
}
