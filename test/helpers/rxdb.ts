import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { TestProcess, type CliEvent } from './spawn.js';

/** The stock RxDB 17 peer fixture (plain ESM so Node 20 runs it directly). */
export const RXDB_PEER = fileURLToPath(new URL('../fixtures/rxdb-peer.mjs', import.meta.url));
/** RxDB's own signaling server (`startSignalingServerSimplePeer`) as a fixture. */
export const RXDB_SIGNAL_SERVER = fileURLToPath(new URL('../fixtures/rxdb-signal-server.mjs', import.meta.url));

/** One parsed NDJSON line from a fixture's stdout. */
export type FixtureEvent = CliEvent;

/** A document as the RxDB peer reports it: user fields only, no `_meta`/`_rev`/`_deleted`/`_attachments`. */
export type PlainDoc = Record<string, unknown> & { id: string };

/** A fixture process (see `TestProcess`) whose stdin takes NDJSON commands. */
export class FixtureProcess extends TestProcess {
  private nextRef = 1;

  constructor(script: string, args: string[], label = script) {
    super(process.execPath, [script, ...args], { env: { ...process.env, NO_COLOR: '1' }, label });
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

  protected override summary(): string {
    return this.events
      .slice(-30)
      .map((e) => (e.event === 'count' || e.event === 'error' ? JSON.stringify(e) : e.event))
      .join(', ');
  }
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
    await peer.stop('SIGTERM', 1_000);
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
    await proc.stop('SIGTERM', 1_000);
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
