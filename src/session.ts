/**
 * Composition root of `p2psync join`: wires a store, signaling, the WebRTC mesh and one replication per link,
 * and decides when a `--once` run is done. Reads nothing from `process`: everything comes in through JoinOptions.
 */
import { debuglog } from 'node:util';
import { P2PSyncError, toP2PSyncError } from './core/errors.js';
import type { EmitEvent } from './core/events.js';
import type { PeerLink } from './core/link.js';
import type { Store } from './core/store.js';
import { createConflictRegistry, type ConflictRegistry, type ConflictStrategy } from './replication/conflict.js';
import { DEFAULT_BATCH_SIZE } from './replication/limits.js';
import { replicate, type PeerReplication } from './replication/peer-replication.js';
import { createSignalingClient, type SignalingClient } from './signaling/client.js';
import { createDefaultSignaling, DEFAULT_SIGNAL_URL } from './signaling/embedded.js';
import { reportUnreachable } from './signaling/unreachable.js';
import { openStore } from './store/open.js';
import { iceServerFromUrl, validateIceConfig, type IceConfig } from './transport/ice.js';
import { createMesh, type Mesh } from './transport/mesh.js';
import { WebRTCRuntime } from './transport/wrtc.js';

const debug = debuglog('p2psync');

export { DEFAULT_BATCH_SIZE };

export interface JoinOptions {
  /** One or more topics; a peer in several topics relays changes between them. */
  topics: string[];
  storePath: string;
  format?: 'json' | 'ndjson' | undefined;
  primaryKey: string;
  collection?: string | undefined;
  /** Signaling URL; undefined: the embedded default on ws://127.0.0.1:8787. */
  signal?: string | undefined;
  /** Port of the embedded default when `signal` is undefined (default 8787). */
  embeddedSignalPort?: number | undefined;
  conflict: string;
  lwwField: string;
  /** Where `conflict` is looked up; default: a registry of the built-in strategies (add your own to a new one). */
  conflictStrategies?: ConflictRegistry | undefined;
  direction: 'both' | 'pull' | 'push';
  batchSize?: number | undefined;
  /** stun:/turn:/turns: URLs (TURN credentials inline: turn:user:pass@host). */
  iceServers: string[];
  iceBind?: string | undefined;
  /**
   * Set for `--once`: done when in sync with every connected peer after `waitPeers` were seen; fails with
   * E_TIMEOUT after `timeoutMs`, and with E_UNREACHABLE when a signaling server was not reached within
   * `connectTimeoutMs` (or `timeoutMs`, if shorter).
   */
  once?: { waitPeers: number; timeoutMs?: number | undefined; connectTimeoutMs: number } | undefined;
  storageToken?: string | undefined;
  shutdownTimeoutMs: number;
  abort: AbortSignal;
  emit: EmitEvent;
}

/** How a run ended. The caller reports `error` (not yet reported anywhere) and picks the exit code. */
export interface JoinResult {
  reason: 'interrupted' | 'synced' | 'timeout' | 'unreachable' | 'error';
  error?: P2PSyncError;
}

/** Names of the built-in conflict strategies (what `--conflict` accepts by default). */
export function conflictStrategyNames(): string[] {
  return createConflictRegistry().names();
}

interface Network {
  topic: string;
  signaling: SignalingClient;
  mesh: Mesh;
}

/** Runs `join` until interrupted, or with `once` until in sync or timed out. Throws for bad options or files. */
export async function runJoin(o: JoinOptions): Promise<JoinResult> {
  // Validate everything before touching files or the network.
  const conflict = (o.conflictStrategies ?? createConflictRegistry()).create(o.conflict, { lwwField: o.lwwField });
  const ice: IceConfig = { iceServers: o.iceServers.map(iceServerFromUrl), ...(o.iceBind ? { bindAddress: o.iceBind } : {}) };
  validateIceConfig(ice);
  if (o.topics.length === 0) throw new P2PSyncError('E_BAD_OPTION', 'at least one topic is needed');

  const store = await openStore({
    path: o.storePath,
    format: o.format,
    primaryKey: o.primaryKey,
    collection: o.collection,
    storageToken: o.storageToken,
    watch: true,
    onEvent: o.emit,
  });
  const runtime = new WebRTCRuntime();
  const networks: Network[] = [];
  const replications = new Map<PeerLink, PeerReplication>();
  try {
    for (const topic of o.topics) {
      const emit = reportUnreachable(o.emit);
      const signaling = o.signal ? createSignalingClient({ url: o.signal, topic, emit }) : createDefaultSignaling({ topic, emit, ...(o.embeddedSignalPort ? { port: o.embeddedSignalPort } : {}) });
      networks.push({ topic, signaling, mesh: createMesh({ signal: signaling, ice, runtime }) });
    }
    return await new Session(o, store, conflict.name, networks, replications).run(conflict);
  } finally {
    await shutdown(o, store, replications, networks);
  }
}

class Session {
  private readonly seenPeers = new Set<string>();
  private synced = false;
  private checkQueued = false;
  private finish!: (r: JoinResult) => void;
  private settled = false;
  /** Networks whose signaling server has not answered yet. */
  private unreached: number;

  constructor(
    private readonly o: JoinOptions,
    private readonly store: Store,
    private readonly conflictName: string,
    private readonly networks: Network[],
    private readonly replications: Map<PeerLink, PeerReplication>,
  ) {
    this.unreached = networks.length;
  }

  run(conflict: ConflictStrategy): Promise<JoinResult> {
    const { o } = this;
    return new Promise<JoinResult>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      this.finish = (r) => {
        if (this.settled) return;
        this.settled = true;
        clearTimeout(timer);
        resolve(r);
      };
      // A live run waits for signaling as long as it takes (the client retries with back-off and warns); `--once`
      // gives up after the connect wait, which the overall timeout shortens.
      const connectWaitMs = o.once ? Math.min(o.once.connectTimeoutMs, o.once.timeoutMs ?? Infinity) : undefined;
      for (const n of this.networks) {
        n.mesh.onLink((link) => this.attach(n.topic, link, conflict));
        // A refused token (or another fatal signaling error) ends the run, as does `--once` not reaching a server.
        n.signaling.waitConnected(connectWaitMs).then(
          () => void this.unreached--,
          (err: unknown) => {
            const error = toP2PSyncError(err, 'E_SIGNALING');
            this.finish({ reason: error.code === 'E_UNREACHABLE' ? 'unreachable' : 'error', error });
          },
        );
      }
      this.store.changes$.subscribe(() => this.checkSynced());
      if (o.once?.timeoutMs !== undefined) {
        const ms = o.once.timeoutMs;
        timer = setTimeout(() => {
          // A server never reached is the better diagnosis; its connect wait (no longer than this) reports it.
          if (this.unreached > 0) return;
          const details = { peersSeen: this.seenPeers.size, waitPeers: o.once!.waitPeers };
          this.finish({ reason: 'timeout', error: new P2PSyncError('E_TIMEOUT', `not in sync after ${ms / 1000} s`, details) });
        }, ms);
      }
      const onAbort = (): void => this.finish({ reason: 'interrupted' });
      if (o.abort.aborted) onAbort();
      else o.abort.addEventListener('abort', onAbort, { once: true });

      o.emit({
        event: 'joined',
        topic: o.topics[0]!,
        topics: o.topics,
        store: o.storePath,
        storageToken: this.store.storageToken,
        signal: this.networks[0]?.signaling.url ?? o.signal ?? DEFAULT_SIGNAL_URL,
        conflict: this.conflictName,
      });
      this.checkSynced();
    });
  }

  private attach(topic: string, link: PeerLink, conflict: ConflictStrategy): void {
    const { o } = this;
    const rep = replicate({
      store: this.store,
      link,
      topic,
      ...(o.collection ? { collection: o.collection } : {}),
      conflict,
      batchSize: o.batchSize ?? DEFAULT_BATCH_SIZE,
      direction: o.direction,
      emit: o.emit,
    });
    this.replications.set(link, rep);
    rep.onStateChange(() => this.checkSynced());
    rep.ready.then(
      () => {
        const token = rep.peerToken!;
        // A second link to the same replica (e.g. after a signaling reconnect) replaces the older one (docs/PROTOCOL.md §2.3).
        for (const [otherLink, other] of this.replications) {
          if (other !== rep && other.peerToken === token) otherLink.close();
        }
        this.seenPeers.add(token);
        o.emit({ event: 'peer-connected', topic, peerId: link.remotePeerId, peerToken: token, role: rep.role! });
        this.checkSynced();
      },
      (err: unknown) => debug('handshake with %s failed: %s', link.remotePeerId, err),
    );
    link.onClose((reason) => {
      this.replications.delete(link);
      void rep.close();
      o.emit({ event: 'peer-disconnected', topic, peerId: link.remotePeerId, reason: reason?.message ?? 'closed' });
      this.checkSynced();
    });
  }

  /**
   * "In sync" (README): every connected peer finished its handshake and its replication is idle in both
   * directions, and for `--once` at least `waitPeers` distinct peers were seen. Emits `synced` on each transition.
   */
  private checkSynced(): void {
    if (this.checkQueued || this.settled) return;
    this.checkQueued = true;
    setImmediate(() => {
      this.checkQueued = false;
      if (this.settled) return;
      const reps = [...this.replications.values()];
      const idle = reps.every((r) => r.role !== undefined && r.isIdle());
      const waitPeers = this.o.once?.waitPeers ?? 1;
      const ok = idle && this.seenPeers.size >= waitPeers && (reps.length > 0 || waitPeers === 0);
      if (!ok) {
        this.synced = false;
        return;
      }
      if (this.synced) return;
      this.synced = true;
      void this.store.all().then((docs) => {
        if (this.settled || !this.synced) return;
        this.o.emit({ event: 'synced', peers: reps.length, documents: docs.length });
        if (this.o.once) this.finish({ reason: 'synced' });
      });
    });
  }
}

/** Stops replication (finishing in-flight writes), flushes the store and closes links, within the time limit. */
async function shutdown(o: JoinOptions, store: Store, replications: Map<PeerLink, PeerReplication>, networks: Network[]): Promise<void> {
  const work = (async () => {
    await Promise.allSettled([...replications.values()].map((r) => r.close()));
    const stored = store.close();
    await Promise.allSettled(networks.flatMap((n) => [n.mesh.close(), n.signaling.close()]));
    await stored;
  })();
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), o.shutdownTimeoutMs)));
  try {
    if ((await Promise.race([work.then(() => 'done' as const), limit])) === 'timeout') {
      throw new P2PSyncError('E_TIMEOUT', `shutdown did not finish within ${o.shutdownTimeoutMs / 1000} s`);
    }
  } catch (err) {
    const e = toP2PSyncError(err);
    o.emit({ event: 'error', code: e.code, message: e.message });
  } finally {
    clearTimeout(timer);
  }
}
