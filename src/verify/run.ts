/**
 * Composition root of `p2psync verify`: joins a topic as an observer (no documents, no replication), asks every
 * p2psync replica for digests, and compares them, with the local file as one more replica when given. Reads nothing
 * from `process`: everything comes in through VerifyOptions.
 */
import { debuglog } from 'node:util';
import { ExitCode, P2PSyncError, toP2PSyncError } from '../core/errors.js';
import type { EmitEvent } from '../core/events.js';
import type { PeerLink } from '../core/link.js';
import { randomToken } from '../core/random.js';
import { createSignalingClient, type SignalingClient } from '../signaling/client.js';
import { DEFAULT_SIGNAL_URL } from '../signaling/embedded.js';
import { listDocuments, type CrudOptions } from '../store/crud.js';
import { iceServerFromUrl, validateIceConfig, type IceConfig, type IceTransportPolicy } from '../transport/ice.js';
import { trustForTopic, type TrustOptions } from '../trust/index.js';
import { createMesh, type Mesh } from '../transport/mesh.js';
import { WebRTCRuntime } from '../transport/wrtc.js';
import { bisect, DEFAULT_BISECT, type BisectResult, type DigestSource } from './bisect.js';
import { DigestSnapshot } from './digest.js';
import { ObserverLink, type PeerInfo } from './observer.js';

const debug = debuglog('p2psync');

export interface VerifyOptions {
  topic: string;
  /** Signaling URL; default ws://127.0.0.1:8787 (verify never hosts a server: nobody else would be in it). */
  signal?: string | undefined;
  /** The local file as one more replica: read once, never written, no lock taken. */
  store?: CrudOptions | undefined;
  /** stun:/turn: URLs, as for `join`. */
  iceServers: string[];
  iceBind?: string | undefined;
  /** `relay`: TURN relays only, as for `join`. */
  iceTransport?: IceTransportPolicy | undefined;
  /** Topic secret and allowlist, as for `join` (src/trust): already read and checked. */
  trust?: TrustOptions | undefined;
  /** The whole run, from joining to the result. */
  timeoutMs: number;
  /** Replicas (verifiable or not, not counting the local file) to wait for; default 1 with a store, else 2. */
  waitPeers?: number | undefined;
  /** Differing ids listed at most. */
  limit: number;
  abort: AbortSignal;
  emit: EmitEvent;
}

export interface VerifyResult {
  /** 0 equal, 1 different, 3 no peer / timeout / comparison not finished, 0 (SIGTERM) or 130 when interrupted. */
  exitCode: number;
  reason: 'equal' | 'different' | 'timeout' | 'incomplete' | 'interrupted' | 'error';
}

export const DEFAULT_VERIFY_TIMEOUT_S = 30;
export const DEFAULT_VERIFY_LIMIT = DEFAULT_BISECT.limit;

/** Runs `verify`. Throws for bad options or an unreadable store file, before touching the network. */
export async function runVerify(o: VerifyOptions): Promise<VerifyResult> {
  const ice: IceConfig = {
    iceServers: o.iceServers.map(iceServerFromUrl),
    ...(o.iceBind ? { bindAddress: o.iceBind } : {}),
    ...(o.iceTransport ? { transportPolicy: o.iceTransport } : {}),
  };
  validateIceConfig(ice);
  if (!Number.isSafeInteger(o.limit) || o.limit < 1)
    throw new P2PSyncError('E_BAD_OPTION', `the limit must be a whole number of at least 1, got ${o.limit}`);
  const local = o.store ? await localSource(o.store) : undefined;

  // with a secret, verify meets the topic's peers in the same hashed room and passes the same handshake as `join`
  const trust = trustForTopic(o.trust ?? {}, o.topic, o.emit);
  const signaling = createSignalingClient({ url: o.signal ?? DEFAULT_SIGNAL_URL, topic: trust.room, emit: o.emit });
  const mesh = createMesh({ signal: trust.signal(signaling), ice, runtime: new WebRTCRuntime(), gate: trust.gate });
  const run = new VerifyRun(o, signaling, mesh, local);
  try {
    return await run.result;
  } finally {
    await run.close();
  }
}

/** The local file, read without a lock and never written; tombstones live in the sidecar and do not count. */
async function localSource(store: CrudOptions): Promise<{ source: DigestSource; documents: number }> {
  let docs;
  try {
    docs = await listDocuments(store);
  } catch (err) {
    const e = toP2PSyncError(err);
    // "does not exist" is a usage error here: exit 1 means "different" for verify
    if (e.code === 'E_IO')
      throw new P2PSyncError('E_BAD_OPTION', e.message.replace(/ \(p2psync put creates it\)$/, ''), e.details, {
        cause: err,
      });
    throw e;
  }
  const snapshot = new DigestSnapshot(docs, store.primaryKey ?? 'id');
  return { source: { digest: async (q) => snapshot.answer(q) }, documents: snapshot.size };
}

interface Peer {
  link: ObserverLink;
  info?: PeerInfo;
}

class VerifyRun {
  readonly result: Promise<VerifyResult>;
  private readonly peers = new Map<string, Peer>();
  private readonly ownToken = randomToken(10);
  private finish!: (r: VerifyResult) => void;
  private settled = false;
  private comparing = false;
  private readonly timer: NodeJS.Timeout;
  private readonly unsubscribe: Array<() => void> = [];

  constructor(
    private readonly o: VerifyOptions,
    private readonly signaling: SignalingClient,
    private readonly mesh: Mesh,
    private readonly local: { source: DigestSource; documents: number } | undefined,
  ) {
    this.result = new Promise<VerifyResult>((resolve) => {
      this.finish = (r) => {
        if (this.settled) return;
        this.settled = true;
        resolve(r);
      };
    });
    this.timer = setTimeout(() => this.timedOut(), o.timeoutMs);
    const onAbort = (): void => this.finish({ exitCode: ExitCode.ok, reason: 'interrupted' });
    if (o.abort.aborted) onAbort();
    else o.abort.addEventListener('abort', onAbort, { once: true });
    this.unsubscribe.push(
      mesh.onLink((link) => this.attach(link)),
      signaling.onPeers(() => this.check()),
    );
    signaling.waitConnected().catch((err: unknown) => {
      const e = toP2PSyncError(err, 'E_SIGNALING');
      this.fail(e, e.code === 'E_AUTH' ? ExitCode.usage : ExitCode.timeout, 'error');
    });
  }

  async close(): Promise<void> {
    clearTimeout(this.timer);
    for (const u of this.unsubscribe) u();
    for (const p of this.peers.values()) p.link.close();
    await Promise.allSettled([this.mesh.close(), this.signaling.close()]);
  }

  private get waitPeers(): number {
    return this.o.waitPeers ?? (this.local ? 1 : 2);
  }

  private attach(link: PeerLink): void {
    const peer: Peer = { link: new ObserverLink(link, { ownToken: this.ownToken, timeoutMs: this.o.timeoutMs }) };
    this.peers.get(link.remotePeerId)?.link.close();
    this.peers.set(link.remotePeerId, peer);
    link.onClose(() => {
      if (this.peers.get(link.remotePeerId) === peer) this.peers.delete(link.remotePeerId);
      this.check();
    });
    peer.link.classify().then(
      (info) => {
        if (this.peers.get(link.remotePeerId) !== peer) return;
        peer.info = info;
        this.o.emit({ event: 'verify-peer', ...info, verifiable: info.kind === 'p2psync' });
        this.check();
      },
      (err: unknown) => debug('verify: could not classify %s: %s', link.remotePeerId, err),
    );
  }

  /** Starts comparing once every member of the topic is classified and enough replicas were seen. */
  private check(): void {
    if (this.settled || this.comparing || !this.signaling.peerId) return;
    const members = this.signaling.peers;
    const infos = members.map((id) => this.peers.get(id)?.info);
    if (infos.some((i) => i === undefined)) return;
    const replicas = (infos as PeerInfo[]).filter((i) => i.kind !== 'observer');
    if (replicas.length < this.waitPeers) return;
    this.comparing = true;
    void this.compare(members.map((id) => this.peers.get(id)!).filter((p) => p.info!.kind !== 'observer'));
  }

  private async compare(replicas: Peer[]): Promise<void> {
    const byToken = new Map<string, Peer>();
    const notVerifiable: Array<{ peerId: string; kind: string; peerToken?: string }> = [];
    for (const p of replicas) {
      const info = p.info!;
      // Two links to one replica (a peer in the topic twice) compare as one.
      if (info.kind === 'p2psync' && !byToken.has(info.peerToken!)) byToken.set(info.peerToken!, p);
      else if (info.kind !== 'p2psync')
        notVerifiable.push({
          peerId: info.peerId,
          kind: info.kind,
          ...(info.peerToken ? { peerToken: info.peerToken } : {}),
        });
    }
    const named: Array<{ name: string; peerId?: string; source: DigestSource }> = [];
    if (this.local) named.push({ name: 'local', source: this.local.source });
    for (const [token, p] of byToken) named.push({ name: token, peerId: p.info!.peerId, source: p.link });
    if (named.length < 2) {
      const message =
        `nothing to compare: ${named.length} verifiable replica${named.length === 1 ? '' : 's'}` +
        (notVerifiable.length ? ` (${notVerifiable.length} not verifiable)` : '');
      return this.fail(
        new P2PSyncError('E_TIMEOUT', message, { verifiable: named.length, notVerifiable: notVerifiable.length }),
        ExitCode.timeout,
        'incomplete',
      );
    }
    let result: BisectResult;
    try {
      result = await bisect(
        named.map((n) => n.source),
        { limit: this.o.limit },
      );
    } catch (err) {
      const e = toP2PSyncError(err, 'E_PEER');
      return this.fail(
        new P2PSyncError(e.code, `the comparison did not finish: ${e.message}`, e.details, { cause: err }),
        ExitCode.timeout,
        'incomplete',
      );
    }
    if (this.settled) return;
    this.o.emit({
      event: 'verified',
      equal: result.equal,
      complete: result.complete,
      replicas: named.map((n, i) => ({
        name: n.name,
        ...(n.peerId ? { peerId: n.peerId } : {}),
        documents: result.roots[i]!.count,
        digest: result.roots[i]!.digest,
      })),
      notVerifiable,
      differing: result.differing.map((d) => ({
        id: d.id,
        replicas: Object.fromEntries(named.map((n, i) => [n.name, d.leaves[i]?.slice(0, 16) ?? null])),
      })),
    });
    this.finish(
      result.equal ? { exitCode: ExitCode.ok, reason: 'equal' } : { exitCode: ExitCode.failure, reason: 'different' },
    );
  }

  private timedOut(): void {
    if (this.settled) return;
    const members = this.signaling.peers;
    const classified = members.filter((id) => this.peers.get(id)?.info).length;
    const replicas = members.filter((id) => {
      const k = this.peers.get(id)?.info?.kind;
      return k !== undefined && k !== 'observer';
    }).length;
    const secs = this.o.timeoutMs / 1000;
    const message = !this.signaling.peerId
      ? `could not reach the signaling server ${this.signaling.url} within ${secs} s`
      : this.comparing
        ? `the comparison did not finish within ${secs} s`
        : members.length === 0
          ? `no peer in topic "${this.o.topic}" within ${secs} s`
          : `${classified} of ${members.length} peers answered within ${secs} s (${replicas} replicas, ${this.waitPeers} needed)`;
    this.fail(
      new P2PSyncError('E_TIMEOUT', message, {
        peersSeen: members.length,
        peersAnswered: classified,
        replicas,
        waitPeers: this.waitPeers,
      }),
      ExitCode.timeout,
      'timeout',
    );
  }

  private fail(e: P2PSyncError, exitCode: number, reason: VerifyResult['reason']): void {
    if (this.settled) return;
    this.o.emit({
      event: 'error',
      code: e.code,
      message: e.message,
      ...(Object.keys(e.details).length ? { details: e.details } : {}),
    });
    this.finish({ exitCode, reason });
  }
}
