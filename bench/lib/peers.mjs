// The processes a scenario starts, behind one small interface so a scenario does not care whether a side is
// stock RxDB (test/fixtures/rxdb-peer.mjs) or p2psync (`node bin/p2psync.js join`):
//   ready()        the peer is up and has joined the topic
//   connected()    the first replication pair is up: {t, role, peerToken}
//   reached(n)     the peer holds at least n documents: resolves with the arrival time (runner clock)
//   stop()         graceful stop (SIGTERM), SIGKILL after a grace period
//   proc.peakRss   peak RSS in bytes (VmHWM)
import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Proc } from './proc.mjs';
import { BIN, RXDB_PEER, RXDB_SIGNAL, ROOT } from './paths.mjs';

/** docs/PROTOCOL.md §2.3: the side whose sha256hex(own|other) is larger is master. */
export function isMaster(own, other) {
  const h = (s) => createHash('sha256').update(s, 'utf8').digest('hex');
  return h(`${own}|${other}`) > h(`${other}|${own}`);
}

/** A random storage token: 10 letters, as RxDB makes them. */
export function randomToken() {
  return Array.from(randomBytes(10), (b) => String.fromCharCode(97 + (b % 26))).join('');
}

/** Two fresh tokens where the first one is master of the second when `firstIsMaster`, fork otherwise. */
export function tokenPair(firstIsMaster) {
  for (;;) {
    const a = randomToken();
    const b = randomToken();
    if (a !== b && isMaster(a, b) === firstIsMaster) return [a, b];
  }
}

/** A fresh topic name (RxDB's server wants 6 to 99 characters). */
export function topicName(tag) {
  return `bench-${tag}-${randomToken()}`;
}

/** Whether `node bin/p2psync.js <command> --help` knows the command (and each flag in `flags`). */
export function cliHas(command, flags = []) {
  const r = spawnSync(process.execPath, [BIN, command, '--help'], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0) return false;
  const out = r.stdout + r.stderr;
  if (!out.includes(`Usage: p2psync ${command}`)) return false;
  return flags.every((f) => out.includes(f));
}

/**
 * Starts a signaling server on an ephemeral loopback port: p2psync's own when `kind` is 'p2psync' (from the build in
 * `root`, default this checkout), RxDB's `startSignalingServerSimplePeer` otherwise. Resolves with {url, proc}.
 */
export async function startSignal(kind, root) {
  const bin = root ? join(root, 'bin/p2psync.js') : BIN;
  const proc =
    kind === 'p2psync'
      ? new Proc('p2psync signal', bin, ['signal', '--port', '0', '--host', '127.0.0.1', '--json'], {
          cwd: root ?? ROOT,
        })
      : new Proc('rxdb signal', RXDB_SIGNAL, ['--port', '0'], { cwd: ROOT });
  const ev = await proc.waitFor('listening', 30_000);
  return { kind, url: `ws://127.0.0.1:${ev.port}`, proc };
}

/**
 * Node flags that write a CPU profile (`--cpu-prof`) named after the process into `dir`, or none without a dir.
 * The profile is written when the process exits normally, so processes must be stopped gracefully (SIGTERM).
 */
export function profileArgs(dir, label) {
  if (!dir) return [];
  const name = `${label.replace(/[^a-z0-9]+/gi, '-')}-${Date.now()}-${randomToken().slice(0, 4)}.cpuprofile`;
  return ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${name}`];
}

/** Base class: the common parts of a peer. */
class Peer {
  constructor(proc, kind) {
    this.proc = proc;
    this.kind = kind;
  }
  stop(graceMs) {
    return this.proc.stop(graceMs);
  }
  get peakRss() {
    return this.proc.peakRss;
  }
}

/** A stock RxDB 17 peer (memory storage). Options: signal, topic, seed, prefix, batch, token, expect, changes, profileDir. */
export class RxdbPeer extends Peer {
  constructor(o) {
    const args = ['--signal', o.signal, '--topic', o.topic, '--db-name', `bench${randomToken()}`];
    if (o.seed) args.push('--seed', String(o.seed), '--prefix', o.prefix ?? 'doc');
    if (o.batch) args.push('--batch-size', String(o.batch));
    if (o.token) args.push('--token', o.token);
    if (o.expect) args.push('--expect', String(o.expect));
    if (o.changes) args.push('--changes');
    const label = o.label ?? 'rxdb peer';
    super(new Proc(label, RXDB_PEER, args, { cwd: ROOT, nodeArgs: profileArgs(o.profileDir, label) }), 'rxdb');
    this.expect = o.expect;
  }
  ready(timeoutMs = 120_000) {
    return this.proc.waitFor('ready', timeoutMs);
  }
  async connected(timeoutMs = 60_000) {
    const ev = await this.proc.waitFor('peer', timeoutMs);
    return { t: ev._t, role: ev.role, peerToken: ev.peerToken };
  }
  async reached(n, timeoutMs = 120_000) {
    const pred =
      this.expect === n
        ? (e) => e.event === 'expected'
        : (e) => (e.event === 'count' || e.event === 'ready') && e.count >= n;
    const ev = await this.proc.waitFor(pred, timeoutMs, `${n} documents`);
    return ev._t;
  }
}

/**
 * A p2psync peer: `p2psync join --json` on a store file. Options: signal, topic, store, token, batch, once,
 * waitPeers, timeout (s), label, extra (more arguments), root (another build of p2psync: a checkout with dist/),
 * wrap (a command to run it under, see Proc). Counts come from the documented events (`synced.documents`, `pulled.total`).
 */
export class P2pPeer extends Peer {
  constructor(o) {
    const args = [
      'join',
      '--topic',
      o.topic,
      '--store',
      o.store,
      '--signal',
      o.signal,
      '--ice-bind',
      '127.0.0.1',
      '--json',
    ];
    if (o.token) args.push('--storage-token', o.token);
    if (o.batch) args.push('--batch-size', String(o.batch));
    if (o.once) args.push('--once');
    if (o.waitPeers) args.push('--wait-peers', String(o.waitPeers));
    if (o.timeout) args.push('--timeout', String(o.timeout));
    if (o.extra) args.push(...o.extra);
    const label = o.label ?? 'p2psync join';
    const root = o.root ?? ROOT;
    const bin = o.root ? join(o.root, 'bin/p2psync.js') : BIN;
    super(
      new Proc(label, bin, args, { cwd: root, nodeArgs: profileArgs(o.profileDir, label), wrap: o.wrap }),
      'p2psync',
    );
    this.store = o.store;
  }
  ready(timeoutMs = 60_000) {
    return this.proc.waitFor('joined', timeoutMs);
  }
  async connected(timeoutMs = 60_000) {
    const ev = await this.proc.waitFor('peer-connected', timeoutMs);
    return { t: ev._t, role: ev.role, peerToken: ev.peerToken };
  }
  async reached(n, timeoutMs = 120_000) {
    const ev = await this.proc.waitFor((e) => documentCount(e) >= n, timeoutMs, `${n} documents`);
    return ev._t;
  }
  /** Documents moved after `since` (runner clock), from `pulled` / `pushed` events: {pulled, pushed}. */
  movedSince(since = 0) {
    let pulled = 0;
    let pushed = 0;
    for (const e of this.proc.events) {
      if (e._t < since) continue;
      if (e.event === 'pulled') pulled += e.count ?? 0;
      if (e.event === 'pushed') pushed += e.count ?? 0;
    }
    return { pulled, pushed };
  }
}

/** The document count an event of `p2psync join --json` reports, or -1. */
function documentCount(e) {
  if (e.event === 'synced' && typeof e.documents === 'number') return e.documents;
  return -1;
}
