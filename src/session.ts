/**
 * Composition root of `p2psync join`: wires a store, signaling, the WebRTC mesh and one replication per link,
 * and decides when a `--once` run is done. Reads nothing from `process`: everything comes in through JoinOptions.
 */
import { debuglog } from 'node:util';
import { P2PSyncError, toP2PSyncError } from './core/errors.js';
import type { EmitEvent } from './core/events.js';
import type { PeerLink } from './core/link.js';
import type { PeerStateStore, Store } from './core/store.js';
import {
  checkKeepLimit,
  DEFAULT_KEEP_CONFLICTS,
  FileKeptVersions,
  keptPath,
  keptCodecFor,
  loadConflictHandler,
  mergeStrategy,
} from './conflicts/index.js';
import type { ConflictKeeper } from './core/conflicts.js';
import { StoreEncryption, type EncryptionOptions } from './crypt/store-encryption.js';
import { createConflictRegistry, type ConflictRegistry, type ConflictStrategy } from './replication/conflict.js';
import { DEFAULT_BATCH_SIZE } from './replication/limits.js';
import { replicate, type PeerReplication } from './replication/peer-replication.js';
import { createSignalingClient, type SignalingClient } from './signaling/client.js';
import { createDefaultSignaling, DEFAULT_SIGNAL_URL } from './signaling/embedded.js';
import { reportUnreachable } from './signaling/unreachable.js';
import { openStore } from './store/open.js';
import { sidecarPath } from './store/sidecar.js';
import {
  identityPath,
  loadOrCreateIdentity,
  trustForTopic,
  type DeviceIdentity,
  type TrustOptions,
} from './trust/index.js';
import { iceServerFromUrl, validateIceConfig, type IceConfig, type IceTransportPolicy } from './transport/ice.js';
import { createMesh, type Mesh } from './transport/mesh.js';
import { ConnectionDiagnosis } from './diagnosis/index.js';
import { probeTurnAllocation } from './doctor/turn-probe.js';
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
  /** Encryption at rest of chosen fields (docs/STORES.md); peers still get plaintext over the DTLS channel. */
  encryption?: EncryptionOptions | undefined;
  /** Signaling URL; undefined: the embedded default on ws://127.0.0.1:8787. */
  signal?: string | undefined;
  /** Port of the embedded default when `signal` is undefined (default 8787). */
  embeddedSignalPort?: number | undefined;
  /** More nodes of the same signaling cluster, tried in turn when the current one goes away. */
  signalFallbacks?: string[] | undefined;
  conflict: string;
  lwwField: string;
  /** `--conflict-handler`: an ES module with RxDB's conflict handler shape; overrides `conflict`. */
  conflictHandler?: string | undefined;
  /** `--keep-conflicts`: versions kept per document (default 10; 0 keeps none). */
  keepConflicts?: number | undefined;
  /** Where `conflict` is looked up; default: a registry of the built-in strategies (add your own to a new one). */
  conflictStrategies?: ConflictRegistry | undefined;
  direction: 'both' | 'pull' | 'push';
  batchSize?: number | undefined;
  /** stun:/turn: URLs (TURN credentials inline: turn:user:pass@host; UDP only). */
  iceServers: string[];
  iceBind?: string | undefined;
  /** `relay`: TURN relays only (needs a TURN server). */
  iceTransport?: IceTransportPolicy | undefined;
  /** `--max-peers`: at most this many links per topic (ring + chords); undefined: full mesh. */
  maxPeers?: number | undefined;
  /**
   * Set for `--once`: done when in sync with every connected peer after `waitPeers` were seen; fails with
   * E_TIMEOUT after `timeoutMs`, and with E_UNREACHABLE when a signaling server was not reached within
   * `connectTimeoutMs` (or `timeoutMs`, if shorter).
   */
  once?: { waitPeers: number; timeoutMs?: number | undefined; connectTimeoutMs: number } | undefined;
  storageToken?: string | undefined;
  /** How long to wait for another process's short lock on the store (see `FileStoreOptions.lockTimeoutMs`). */
  lockTimeoutMs?: number | undefined;
  /** Topic secret and allowlist (issue 13); already read and checked (see loadTrustOptions). */
  trust?: TrustOptions | undefined;
  shutdownTimeoutMs: number;
  abort: AbortSignal;
  emit: EmitEvent;
}

/** How a run ended. The caller reports `error` (not yet reported anywhere) and picks the exit code. */
export interface JoinResult {
  reason: 'interrupted' | 'synced' | 'timeout' | 'unreachable' | 'error';
  error?: P2PSyncError;
}

/** The built-in conflict strategies (`master`, `lww`, `merge`); a new registry each time, so nothing is shared. */
function builtInStrategies(): ConflictRegistry {
  return createConflictRegistry().register('merge', () => mergeStrategy());
}

/** Names of the built-in conflict strategies (what `--conflict` accepts by default). */
export function conflictStrategyNames(): string[] {
  return builtInStrategies().names();
}

interface Network {
  topic: string;
  signaling: SignalingClient;
  mesh: Mesh;
}

/** Runs `join` until interrupted, or with `once` until in sync or timed out. Throws for bad options or files. */
export async function runJoin(o: JoinOptions): Promise<JoinResult> {
  // Validate everything before touching files or the network.
  const keepConflicts = checkKeepLimit(o.keepConflicts ?? DEFAULT_KEEP_CONFLICTS);
  const conflict = o.conflictHandler
    ? await loadConflictHandler(o.conflictHandler, o.primaryKey)
    : (o.conflictStrategies ?? builtInStrategies()).create(o.conflict, { lwwField: o.lwwField });
  const ice: IceConfig = {
    iceServers: o.iceServers.map(iceServerFromUrl),
    ...(o.iceBind ? { bindAddress: o.iceBind } : {}),
    ...(o.iceTransport ? { transportPolicy: o.iceTransport } : {}),
  };
  validateIceConfig(ice);
  if (o.topics.length === 0) throw new P2PSyncError('E_BAD_OPTION', 'at least one topic is needed');

  const storeOptions = {
    path: o.storePath,
    format: o.format,
    primaryKey: o.primaryKey,
    collection: o.collection,
    storageToken: o.storageToken,
    lockTimeoutMs: o.lockTimeoutMs,
    watch: true,
    emit: o.emit,
  };
  const encryption = await StoreEncryption.prepare(storeOptions, o.encryption ?? {});
  const store = encryption ? await encryption.open(storeOptions) : await openStore(storeOptions);
  let kept: FileKeptVersions | undefined;
  try {
    kept =
      keepConflicts > 0
        ? await FileKeptVersions.open(keptPath(o.storePath, o.collection), {
            limit: keepConflicts,
            codec: keptCodecFor(encryption),
          })
        : undefined;
  } catch (err) {
    await store.close().catch(() => undefined);
    throw err;
  }
  const runtime = new WebRTCRuntime();
  const diagnosis = new ConnectionDiagnosis(ice, o.emit, probeTurnAllocation);
  const networks: Network[] = [];
  const replications = new Map<PeerLink, PeerReplication>();
  let result: JoinResult | undefined;
  let unwritten: P2PSyncError | undefined;
  try {
    const identity = await openDeviceIdentity(o.storePath, o.collection);
    for (const topic of o.topics) {
      const emit = reportUnreachable(o.emit);
      // with a secret the server only ever sees a hashed room name and sealed signals (src/trust)
      const trust = trustForTopic(o.trust ?? {}, topic, o.emit);
      const signaling = o.signal
        ? createSignalingClient({ url: o.signal, fallbackUrls: o.signalFallbacks, topic: trust.room, emit })
        : createDefaultSignaling({
            topic: trust.room,
            emit,
            ...(o.embeddedSignalPort ? { port: o.embeddedSignalPort } : {}),
          });
      signaling.onPeers((ids) => diagnosis.peers(topic, ids));
      const mesh = createMesh({
        signal: trust.signal(signaling),
        ice,
        runtime,
        maxPeers: o.maxPeers,
        gate: trust.gate,
        certificatePemFile: identity.pemFile,
      });
      mesh.events$.subscribe((e) => diagnosis.meshEvent(topic, e));
      networks.push({ topic, signaling, mesh });
    }
    result = await new Session(o, store, conflict.name, networks, replications, identity, kept, diagnosis).run(
      conflict,
    );
  } finally {
    diagnosis.close();
    unwritten = await shutdown(o, store, replications, networks);
    await kept?.close();
    // A failure of the session itself wins; the store's loss is reported as an event then.
    if (unwritten && !result)
      o.emit({ event: 'error', code: unwritten.code, message: unwritten.message, details: unwritten.details });
  }
  // Honest shutdown: documents that never reached the disk make the run fail, whatever ended it.
  if (unwritten) throw unwritten;
  return result;
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
    private readonly store: Store & PeerStateStore,
    private readonly conflictName: string,
    private readonly networks: Network[],
    private readonly replications: Map<PeerLink, PeerReplication>,
    private readonly identity: DeviceIdentity,
    private readonly keeper: ConflictKeeper | undefined,
    private readonly diagnosis: ConnectionDiagnosis,
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
          const { message, details } = this.diagnosis.timeout(ms, this.seenPeers.size, o.once!.waitPeers);
          this.finish({ reason: 'timeout', error: new P2PSyncError('E_TIMEOUT', message, details) });
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
        deviceId: this.identity.deviceId,
        secret: o.trust?.secret !== undefined,
        ...(o.trust?.allowPeers ? { allowPeers: o.trust.allowPeers.size } : {}),
      });
      this.checkSynced();
    });
  }

  private attach(topic: string, link: PeerLink, conflict: ConflictStrategy): void {
    const { o } = this;
    const rep = replicate({
      store: this.store,
      meta: this.store,
      link,
      topic,
      ...(o.collection ? { collection: o.collection } : {}),
      conflict,
      ...(this.keeper ? { keeper: this.keeper } : {}),
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
        const path = link.path?.();
        o.emit({
          event: 'peer-connected',
          topic,
          peerId: link.remotePeerId,
          peerToken: token,
          role: rep.role!,
          ...(path ? { path } : {}),
        });
        this.checkSynced();
      },
      (err: unknown) => debug('handshake with %s failed: %s', link.remotePeerId, err),
    );
    link.onClose((reason) => {
      this.replications.delete(link);
      void rep.close();
      if (!rep.observer)
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
      // An observer (`p2psync verify`) is no replica: it neither counts as a peer nor holds up "in sync".
      const reps = [...this.replications.values()].filter((r) => !r.observer);
      const idle = reps.every((r) => r.role !== undefined && r.isIdle());
      const waitPeers = this.o.once?.waitPeers ?? 1;
      const ok = idle && this.seenPeers.size >= waitPeers && (reps.length > 0 || waitPeers === 0);
      if (!ok) {
        this.synced = false;
        return;
      }
      if (this.synced) return;
      this.synced = true;
      void this.store.count().then((documents) => {
        if (this.settled || !this.synced) return;
        this.o.emit({ event: 'synced', peers: reps.length, documents });
        if (this.o.once) this.finish({ reason: 'synced' });
      });
    });
  }
}

/**
 * The store's device identity (`<sidecar>.identity.pem`), created on first use: the DTLS certificate every
 * connection presents, whose fingerprint is the id peers allowlist. E_IDENTITY for a damaged file.
 */
export function openDeviceIdentity(
  storePath: string,
  collection?: string,
): Promise<DeviceIdentity & { created: boolean }> {
  return loadOrCreateIdentity(identityPath(sidecarPath(storePath, collection)));
}

/**
 * Stops replication (finishing in-flight writes), flushes the store and closes links, within the time limit. Returns
 * the store's error when documents could not be written (E_IO with `details.unwritten`); reports anything else.
 */
async function shutdown(
  o: JoinOptions,
  store: Store,
  replications: Map<PeerLink, PeerReplication>,
  networks: Network[],
): Promise<P2PSyncError | undefined> {
  const work = (async () => {
    await Promise.allSettled([...replications.values()].map((r) => r.close()));
    const stored = store.close();
    await Promise.allSettled(networks.flatMap((n) => [n.mesh.close(), n.signaling.close()]));
    await stored;
  })();
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<'timeout'>(
    (resolve) => (timer = setTimeout(() => resolve('timeout'), o.shutdownTimeoutMs)),
  );
  try {
    if ((await Promise.race([work.then(() => 'done' as const), limit])) === 'timeout') {
      throw new P2PSyncError('E_TIMEOUT', `shutdown did not finish within ${o.shutdownTimeoutMs / 1000} s`);
    }
  } catch (err) {
    const e = toP2PSyncError(err);
    if (typeof e.details.unwritten === 'number') return e;
    o.emit({ event: 'error', code: e.code, message: e.message });
  } finally {
    clearTimeout(timer);
  }
  return undefined;
}

// ICE URL parsing and checks for the CLI's flag handling (`join`, `doctor`, `verify`): the CLI reaches the transport
// through this composition root only.
export { iceServerFromUrl, splitIceServerList, validateIceConfig, type IceTransportPolicy } from './transport/ice.js';
