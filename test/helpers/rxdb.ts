import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';

/** The stock RxDB 17 peer fixture (plain ESM so Node 20 runs it directly). */
export const RXDB_PEER = fileURLToPath(new URL('../fixtures/rxdb-peer.mjs', import.meta.url));
/** RxDB's own signaling server (`startSignalingServerSimplePeer`) as a fixture. */
export const RXDB_SIGNAL_SERVER = fileURLToPath(new URL('../fixtures/rxdb-signal-server.mjs', import.meta.url));

/** One parsed NDJSON line from a fixture's stdout. */
export type FixtureEvent = Record<string, unknown> & { event: string };

/** A document as the RxDB peer reports it: user fields only, no `_meta`/`_rev`/`_deleted`/`_attachments`. */
export type PlainDoc = Record<string, unknown> & { id: string };

/**
 * A long-running fixture process in its own process group whose stdout is parsed as NDJSON events and whose
 * stdin takes NDJSON commands. Every instance is tracked so `stopAllRxdbProcesses()` can clean up in afterEach.
 */
export class FixtureProcess {
  readonly child: ChildProcess;
  readonly events: FixtureEvent[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private waiters: Array<{ pred: (e: FixtureEvent) => boolean; resolve: (e: FixtureEvent) => void }> = [];
  private nextRef = 1;
  private static running = new Set<FixtureProcess>();

  constructor(
    script: string,
    args: string[],
    readonly label = script,
  ) {
    this.child = spawn(process.execPath, [script, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      // Own process group: stop() signals the group, so nothing the fixture spawned outlives the test.
      detached: true,
      env: { ...process.env, NO_COLOR: '1' },
    });
    FixtureProcess.running.add(this);
    let buf = '';
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim()) this.push(parseLine(line));
      }
    });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    // A peer that exits early closes its stdin; ignore EPIPE from late commands, the exit is reported elsewhere.
    this.child.stdin!.on('error', () => {});
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        FixtureProcess.running.delete(this);
        resolve({ code, signal });
      });
    });
  }

  private push(ev: FixtureEvent): void {
    this.events.push(ev);
    this.waiters = this.waiters.filter((w) => (w.pred(ev) ? (w.resolve(ev), false) : true));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /**
   * Resolves with the first event (already seen, or future) matching `pred` (or with that `event` name);
   * rejects after `timeoutMs` or when the process exits first, quoting the events seen and stderr.
   */
  waitFor(pred: ((e: FixtureEvent) => boolean) | string, timeoutMs = 15_000, fromIndex = 0): Promise<FixtureEvent> {
    const p = typeof pred === 'string' ? (e: FixtureEvent) => e.event === pred : pred;
    const seen = this.events.slice(fromIndex).find(p);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const fail = (why: string): void => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        clearTimeout(timer);
        reject(new Error(`${this.label}: ${why}; events: ${this.summary()}\nstderr: ${this.stderr.slice(-2000)}`));
      };
      const timer = setTimeout(() => fail(`timed out after ${timeoutMs} ms waiting for an event`), timeoutMs);
      const done = (e: FixtureEvent): void => {
        clearTimeout(timer);
        resolve(e);
      };
      this.waiters.push({ pred: p, resolve: done });
      void this.exited.then(() => {
        if (this.waiters.some((w) => w.resolve === done)) fail('process exited while waiting for an event');
      });
    });
  }

  /** Writes one NDJSON command. */
  send(cmd: Record<string, unknown>): void {
    if (!this.running || !this.child.stdin!.writable) throw new Error(`${this.label}: process is not running`);
    this.child.stdin!.write(JSON.stringify(cmd) + '\n');
  }

  /** Sends a command tagged with a fresh `ref` and resolves with the reply carrying that ref (or rejects on an error reply). */
  async request(cmd: Record<string, unknown>, timeoutMs = 15_000): Promise<FixtureEvent> {
    const ref = this.nextRef++;
    const from = this.events.length;
    this.send({ ...cmd, ref });
    const reply = await this.waitFor((e) => e.ref === ref, timeoutMs, from);
    if (reply.event === 'error') throw new Error(`${this.label}: ${String(cmd.op)} failed: ${String(reply.message)}`);
    return reply;
  }

  /** Sends a signal to the whole process group. */
  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (!this.running || this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, signal);
    } catch {
      /* already gone */
    }
  }

  /** SIGTERM (clean shutdown), then SIGKILL after `graceMs`; resolves with the exit status. Idempotent. */
  async stop(graceMs = 8_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), graceMs);
    const r = await this.exited;
    clearTimeout(timer);
    return r;
  }

  private summary(): string {
    return this.events
      .slice(-30)
      .map((e) => (e.event === 'count' || e.event === 'error' ? JSON.stringify(e) : e.event))
      .join(', ');
  }

  /** Stops every fixture process still running (for afterEach). */
  static async stopAll(graceMs = 5_000): Promise<void> {
    await Promise.all([...FixtureProcess.running].map((p) => p.stop(graceMs)));
  }
}

function parseLine(line: string): FixtureEvent {
  try {
    const v: unknown = JSON.parse(line);
    if (v && typeof v === 'object' && typeof (v as { event?: unknown }).event === 'string') return v as FixtureEvent;
  } catch {
    /* fall through */
  }
  return { event: '__non_json__', line };
}

/** Options of one stock RxDB peer; see test/fixtures/rxdb-peer.mjs. */
export interface RxdbPeerOptions {
  /** Signaling server URL, e.g. `ws://127.0.0.1:PORT`. */
  signal: string;
  /** Room name (RxDB requires 6-99 characters). */
  topic: string;
  /** Number of ~200-byte documents to insert before replication starts (ids `${prefix}-00000001`...). */
  seed?: number;
  /** Id prefix for seeded documents (default `doc`). */
  prefix?: string;
  /** Pull and push batch size (RxDB's WebRTC default is 20). */
  batchSize?: number;
  /** Storage token to preset; with two known tokens the master/fork roles are known in advance (see masterOf). */
  token?: string;
  dbName?: string;
  /** Report `{"event":"expected","count","ms"}` the first time the collection holds at least this many docs. */
  expect?: number;
  /** Emit a `change` event per changed document (opt-in: noisy at benchmark sizes). */
  changes?: boolean;
  /** Disable the pull or push direction of this peer's fork replications. */
  pull?: boolean;
  push?: boolean;
  /** How long to wait for the `ready` event (default 15 s). */
  readyTimeoutMs?: number;
}

/** A running stock RxDB peer. */
export class RxdbPeer extends FixtureProcess {
  storageToken = '';

  /** Upserts a document (replaces the whole body; revives a deleted id). */
  async put(doc: PlainDoc): Promise<void> {
    await this.request({ op: 'put', doc });
  }

  /** Deletes a document; resolves with whether it existed. */
  async remove(id: string): Promise<boolean> {
    return (await this.request({ op: 'remove', id })).found === true;
  }

  /** Live documents sorted by id, user fields only. */
  async dump(): Promise<PlainDoc[]> {
    return (await this.request({ op: 'dump' })).docs as PlainDoc[];
  }

  /** One live document, or null when missing or deleted. */
  async get(id: string): Promise<PlainDoc | null> {
    return (await this.request({ op: 'get', id })).doc as PlainDoc | null;
  }

  async count(): Promise<number> {
    return (await this.request({ op: 'count' })).count as number;
  }

  /** The last document count the peer reported (ready or count events). */
  lastCount(): number | undefined {
    for (let i = this.events.length - 1; i >= 0; i--) {
      const e = this.events[i]!;
      if ((e.event === 'count' || e.event === 'ready') && typeof e.count === 'number') return e.count;
    }
    return undefined;
  }

  /** Resolves once the peer's collection holds exactly `n` live documents. */
  async waitForCount(n: number, timeoutMs = 15_000): Promise<void> {
    if (this.lastCount() === n) return;
    await this.waitFor((e) => e.event === 'count' && e.count === n, timeoutMs, this.events.length);
  }

  /** Resolves with the first `change` event for `id` whose document satisfies `pred` (needs `changes: true`). */
  waitForChange(id: string, pred: (e: FixtureEvent) => boolean, timeoutMs = 15_000): Promise<FixtureEvent> {
    return this.waitFor((e) => e.event === 'change' && e.id === id && pred(e), timeoutMs);
  }

  /** Asks the peer to shut down cleanly and waits for the exit. */
  async exit(timeoutMs = 8_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.running) this.send({ op: 'exit' });
    const timer = setTimeout(() => this.kill('SIGKILL'), timeoutMs);
    const r = await this.exited;
    clearTimeout(timer);
    return r;
  }
}

/** Starts a stock RxDB peer and waits for its `ready` event. */
export async function startRxdbPeer(opts: RxdbPeerOptions): Promise<RxdbPeer> {
  const args = ['--signal', opts.signal, '--topic', opts.topic];
  if (opts.seed !== undefined) args.push('--seed', String(opts.seed));
  if (opts.prefix !== undefined) args.push('--prefix', opts.prefix);
  if (opts.batchSize !== undefined) args.push('--batch-size', String(opts.batchSize));
  if (opts.token !== undefined) args.push('--token', opts.token);
  if (opts.dbName !== undefined) args.push('--db-name', opts.dbName);
  if (opts.expect !== undefined) args.push('--expect', String(opts.expect));
  if (opts.changes) args.push('--changes');
  if (opts.pull === false) args.push('--no-pull');
  if (opts.push === false) args.push('--no-push');
  const peer = new RxdbPeer(RXDB_PEER, args, `rxdb-peer ${opts.prefix ?? opts.token ?? ''}`.trim());
  try {
    const ready = await peer.waitFor('ready', opts.readyTimeoutMs ?? 15_000);
    peer.storageToken = String(ready.storageToken);
  } catch (err) {
    await peer.stop(1_000);
    throw err;
  }
  return peer;
}

/** A running RxDB signaling server fixture. */
export interface RxdbSignalServer {
  port: number;
  /** `ws://127.0.0.1:PORT` */
  url: string;
  proc: FixtureProcess;
  stop(): Promise<unknown>;
}

/** Starts RxDB's own signaling server on 127.0.0.1 and an ephemeral port. */
export async function startRxdbSignalServer(timeoutMs = 15_000): Promise<RxdbSignalServer> {
  const proc = new FixtureProcess(RXDB_SIGNAL_SERVER, ['--port', '0', '--host', '127.0.0.1'], 'rxdb-signal-server');
  try {
    const ev = await proc.waitFor('listening', timeoutMs);
    const port = Number(ev.port);
    return { port, url: `ws://127.0.0.1:${port}`, proc, stop: () => proc.stop() };
  } catch (err) {
    await proc.stop(1_000);
    throw err;
  }
}

/** Stops every RxDB fixture process (peers and servers) still running; call it in afterEach. */
export function stopAllRxdbProcesses(): Promise<void> {
  return FixtureProcess.stopAll();
}

/** Lowercase hex SHA-256, RxDB's default `hashFunction`. */
function sha256hex(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}

/**
 * The storage token that takes the master role in a pair (RxDB's rule: the side whose
 * sha256(own|other) is greater is master). Useful to force roles with preset tokens.
 */
export function masterOf(tokenA: string, tokenB: string): string {
  return sha256hex(`${tokenA}|${tokenB}`) > sha256hex(`${tokenB}|${tokenA}`) ? tokenA : tokenB;
}

/**
 * Replication errors RxDB reports on its `error$` when the other side of a link goes away (a peer closing, a
 * WebRTC setup that is retried): the exact texts, so any other replication error still fails a test.
 */
export const EXPECTED_RXDB_ERRORS: ReadonlyArray<Readonly<Record<string, string>>> = [
  // A request in flight when the other peer left (rxdb 17.6.0 plugins/replication-webrtc/webrtc-helper.js).
  { code: 'RC_WEBRTC_PEER', errorText: 'peer disconnected' },
  { code: 'RC_WEBRTC_PEER', errorText: 'connection handler closed' },
  // simple-peer giving up on a WebRTC setup, which the initiator retries (connection-handler-simple-peer.js).
  { code: 'RC_WEBRTC_PEER', cause: 'Connection failed.' },
];

/** The fixture's `error` events that are not whitelisted in {@link EXPECTED_RXDB_ERRORS}. */
export function unexpectedRxdbErrors(events: readonly FixtureEvent[]): FixtureEvent[] {
  return events.filter(
    (e) =>
      e.event === 'error' &&
      !(
        e.phase === 'replication' &&
        EXPECTED_RXDB_ERRORS.some((allowed) => Object.entries(allowed).every(([k, v]) => e[k] === v))
      ),
  );
}
