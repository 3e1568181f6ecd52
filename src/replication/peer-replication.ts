import { debuglog } from 'node:util';
import type { Subscription } from 'rxjs';
import { P2PSyncError, toP2PSyncError } from '../core/errors.js';
import { addListener, type EmitEvent, type Unsubscribe } from '../core/events.js';
import type { PeerLink } from '../core/link.js';
import type { PeerStateStore, Store } from '../core/store.js';
import type { StoreChange } from '../core/types.js';
import type { FrameSizes } from './chunking.js';
import type { ConflictKeeper } from '../core/conflicts.js';
import type { ConflictStrategy } from './conflict.js';
import type { Direction, LinkContext, ReplicationStats } from './context.js';
import { Fork } from './fork.js';
import { ForkState } from './fork-state.js';
import {
  DEFAULT_LIMITS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_RETRY_DELAY_MS,
  type ReplicationLimits,
} from './limits.js';
import {
  MASTER_METHODS,
  MasterServer,
  P2PSYNC_CAPABILITY,
  P2PSYNC_CAPABILITY_VERSION,
  announcedP2PSyncVersion,
} from './master.js';
import { isMaster } from './master-rule.js';
import { Rpc, type RpcRequest } from './rpc.js';
import { DigestServer } from './digest-server.js';
import { DIGEST_FEATURE, DIGEST_METHOD, DIGEST_VERSION, isObserverError } from '../verify/protocol.js';
import { ProgressEvents, isProgressEvent } from './progress.js';
import type { DocRules } from './validate.js';

const debug = debuglog('p2psync');

/** Invalid input reported as `warning` events per link before the rest is only counted. */
const WARNINGS_PER_LINK = 5;
const MAX_TOKEN_LENGTH = 1024;

export interface ReplicationOptions {
  store: Store;
  /**
   * Where this side, as fork, keeps its checkpoints and assumed states per pair (RxDB's meta instance). Often the
   * store itself: a file store journals both together.
   */
  meta: PeerStateStore;
  link: PeerLink;
  /** The topic (room); part of the fork's replication identifier. */
  topic: string;
  /** Collection name for the replication identifier `[collection, topic, peerToken].join('||')` (default `docs`). */
  collection?: string;
  conflict: ConflictStrategy;
  /** Where the versions that conflict resolutions discard are kept (this side resolves only as fork); none: not kept. */
  keeper?: ConflictKeeper;
  /**
   * Largest pull page and push batch this side uses as a fork (see DEFAULT_BATCH_SIZE). Below it, batches are sized
   * to fit one frame of the link, from the document sizes seen so far.
   */
  batchSize: number;
  /** `both` (default), `pull` (only receive) or `push` (only send); see `Direction`. */
  direction?: Direction;
  /** Request timeout (default 20 s, like RxDB). */
  requestTimeoutMs?: number;
  /** Wait after a failed request before retrying (default 5 s, RxDB's retryTime). */
  retryDelayMs?: number;
  /** Receives `pulled`, `pushed`, `conflict`, `warning` and `error` events. */
  emit?: EmitEvent;
  /** Overrides of the flow-control and input limits. */
  limits?: Partial<ReplicationLimits>;
  /** Overrides the frame sizes derived from the link (e.g. RxDB's 16,384 characters). */
  frameSizes?: FrameSizes;
}

/**
 * Replication with one connected peer over one link, in whichever role the token handshake gives this side
 * (docs/PROTOCOL.md §2.3). The master methods are served to the peer from the first frame, whatever the roles.
 */
export interface PeerReplication {
  readonly role: 'master' | 'fork' | undefined;
  /** The peer's storage token, once the handshake got it. */
  readonly peerToken: string | undefined;
  /**
   * The peer is an observer (`p2psync verify`): it answered `token` with `E_OBSERVER`, holds no documents and is
   * not replicated with. `ready` rejects; the link only serves digests to it.
   */
  readonly observer: boolean;
  /** Resolves when the handshake is done; rejects if the link or the replication closes first. */
  readonly ready: Promise<void>;
  /**
   * This side's view of "in sync" with the peer (docs/parts/replication.md): the handshake is done, no request is
   * in flight or queued either way, and
   * - as fork: the last pull loop ended with a short page, no stream event waits, and every local change up to the
   *   head of the store's feed was pushed and answered (conflicts resolved and re-pushed);
   * - as master: the fork's last pull reached the head of this store's feed and every later commit was streamed
   *   and handed to the network, with no `RESYNC` pending (after writes from the fork, its next pull confirms).
   */
  isIdle(): boolean;
  readonly stats: Readonly<ReplicationStats>;
  /** Called on every change of `isIdle()`, and on close. Returns a function that removes the handler. */
  onStateChange(handler: () => void): Unsubscribe;
  /** Stops (the link itself stays open: it belongs to the caller), waits for in-flight store writes. Idempotent. */
  close(): Promise<void>;
}

export function replicate(options: ReplicationOptions): PeerReplication {
  return new LinkReplication(options);
}

class LinkReplication implements PeerReplication, LinkContext {
  readonly store: Store;
  readonly meta: PeerStateStore;
  readonly link: PeerLink;
  readonly rpc: Rpc;
  readonly direction: Direction;
  readonly conflict: ConflictStrategy;
  readonly keeper: ConflictKeeper | undefined;
  readonly limits: ReplicationLimits;
  readonly rules: DocRules;
  readonly stats: ReplicationStats = { pulled: 0, pushed: 0, conflicts: 0, sent: 0, received: 0, rejected: 0 };
  readonly emit: EmitEvent;
  readonly retryDelayMs: number;
  readonly ready: Promise<void>;
  role: 'master' | 'fork' | undefined;
  peerToken: string | undefined;
  peerP2PSyncVersion = 0;
  observer = false;
  closed = false;

  get peerIsP2PSync(): boolean {
    return this.peerP2PSyncVersion >= 1;
  }

  private readonly master: MasterServer;
  private readonly digests: DigestServer;
  private readonly progress: ProgressEvents;
  private fork: Fork | undefined;
  private readonly subscription: Subscription;
  private readonly work = new Set<Promise<unknown>>();
  private readonly handlers = new Set<() => void>();
  private readonly options: ReplicationOptions;
  private settleReady!: (err?: Error) => void;
  private lastIdle = false;
  private warned = 0;
  private bothMasterWarned = false;
  private dropped = false;
  private resyncsReceived = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private recheckTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;

  constructor(options: ReplicationOptions) {
    validateOptions(options);
    this.options = options;
    this.store = options.store;
    this.meta = options.meta;
    this.link = options.link;
    this.direction = options.direction ?? 'both';
    this.conflict = options.conflict;
    this.keeper = options.keeper;
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.rules = {
      primaryKey: options.store.primaryKey,
      maxDepth: this.limits.maxDocDepth,
      maxKeyLength: this.limits.maxKeyLength,
    };
    const emit = options.emit ?? (() => {});
    this.progress = new ProgressEvents(emit);
    // Progress is coalesced; any other event first lets pending progress out, so the order stays true.
    this.emit = (e) => {
      if (isProgressEvent(e)) return this.progress.add(e);
      this.progress.flush();
      emit(e);
    };
    this.retryDelayMs = options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS;
    this.ready = new Promise<void>((resolve, reject) => {
      this.settleReady = (err) => (err ? reject(err) : resolve());
    });
    this.ready.catch(() => undefined);
    this.master = new MasterServer(this);
    this.digests = new DigestServer(this);
    this.rpc = new Rpc({
      link: this.link,
      ownToken: this.store.storageToken,
      timeoutMs: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      limits: this.limits,
      ...(options.frameSizes ? { frameSizes: options.frameSizes } : {}),
      handlers: {
        onRequest: (r) => this.onRequest(r),
        onStream: (r) => this.onStream(r),
        onInvalid: (reason) => this.reject(reason),
        onDrain: () => this.changed(),
        onOverLimit: (reason, limit) => this.dropPeer(reason, limit),
      },
    });
    this.subscription = this.store.changes$.subscribe({ next: (c) => this.onChange(c) });
    this.link.onClose((reason) => {
      debug('replication: link to %s closed%s', this.link.remotePeerId, reason ? `: ${reason.message}` : '');
      void this.close();
    });
    this.rpc.start();
    if (!this.link.open) {
      void this.close();
      return;
    }
    void this.handshake();
  }

  isIdle(): boolean {
    if (this.closed || this.role === undefined || this.rpc.inFlight > 0 || this.master.busy) return false;
    return this.role === 'master' ? this.master.inSync : (this.fork?.inSync ?? false);
  }

  onStateChange(handler: () => void): Unsubscribe {
    return addListener(this.handlers, handler);
  }

  /** Internal state for debugging and tests; the shape may change at any time. */
  inspect(): Record<string, unknown> {
    return {
      role: this.role,
      closed: this.closed,
      inFlight: this.rpc.inFlight,
      pressure: this.rpc.pressure,
      master: this.master.inspect(),
      fork: this.fork?.inspect(),
    };
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  // ---- LinkContext ----

  changed(): void {
    if (this.role === 'fork' && !this.closed) this.fork?.maybeConfirm();
    const idle = this.isIdle();
    if (!idle && !this.closed && this.role !== undefined && this.link.bufferedAmount() > 0 && !this.recheckTimer) {
      // A master's "in sync" waits for the link buffer to empty, which not every link reports: look again shortly.
      this.recheckTimer = setTimeout(() => {
        this.recheckTimer = undefined;
        this.changed();
      }, this.limits.drainPollMs);
    }
    if (idle === this.lastIdle) return;
    this.lastIdle = idle;
    if (idle) this.progress.flush();
    for (const h of [...this.handlers]) h();
  }

  track<T>(work: Promise<T>): Promise<T> {
    this.work.add(work);
    const done = (): void => void this.work.delete(work);
    work.then(done, done);
    return work;
  }

  fail(err: unknown, during: string): void {
    if (this.closed) return;
    const e = toP2PSyncError(err);
    debug('replication: %s with %s failed: %s', during, this.link.remotePeerId, e.message);
    this.emit({
      event: 'error',
      code: e.code,
      message: `${during} with peer ${this.link.remotePeerId} failed: ${e.message}`,
      details: { peerId: this.link.remotePeerId, during, ...e.details },
    });
  }

  dropPeer(reason: string, limit: string): void {
    if (this.closed || this.dropped) return;
    this.dropped = true;
    debug('replication: dropping %s: %s', this.link.remotePeerId, reason);
    this.emit({ event: 'peer-rejected', peerId: this.link.remotePeerId, reason, limit });
    this.link.close();
  }

  reject(reason: string): void {
    this.stats.rejected++;
    if (this.stats.rejected > this.limits.maxRejectedInputs) {
      return this.dropPeer(
        `more than ${this.limits.maxRejectedInputs} refused frames, requests or documents`,
        'maxRejectedInputs',
      );
    }
    debug('replication: refused input from %s: %s', this.link.remotePeerId, reason);
    if (this.warned >= WARNINGS_PER_LINK) return;
    this.warned++;
    const more = this.warned === WARNINGS_PER_LINK ? ' (further refusals on this link are only counted)' : '';
    this.emit({
      event: 'warning',
      code: 'E_PROTOCOL',
      message: `refused input from peer ${this.link.remotePeerId}: ${reason}${more}`,
      details: { peerId: this.link.remotePeerId },
    });
  }

  // ---- internals ----

  private async handshake(): Promise<void> {
    while (!this.closed) {
      try {
        const hello = { [P2PSYNC_CAPABILITY]: P2PSYNC_CAPABILITY_VERSION, [DIGEST_FEATURE]: DIGEST_VERSION };
        const token = await this.rpc.request('token', [hello]);
        if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) {
          this.reject('token answer is not a storage token');
          throw new P2PSyncError('E_PROTOCOL', 'the peer answered token without a storage token');
        }
        if (this.closed) return;
        this.decide(token);
        return;
      } catch (err) {
        if (this.closed) return;
        if (isObserverError(err)) return this.becomeObserver();
        this.fail(err, 'handshake');
        await new Promise<void>((resolve) => {
          this.retryTimer = setTimeout(resolve, this.retryDelayMs);
        });
        this.retryTimer = undefined;
      }
    }
  }

  /** Nothing to replicate with: no role, no stream, no retries; digests are still served. */
  private becomeObserver(): void {
    debug('replication: %s is an observer (p2psync verify); not replicating with it', this.link.remotePeerId);
    this.observer = true;
    this.settleReady(
      new P2PSyncError('E_PEER', `peer ${this.link.remotePeerId} is an observer and holds no documents`),
    );
    for (const h of [...this.handlers]) h();
  }

  private decide(peerToken: string): void {
    this.peerToken = peerToken;
    this.role = isMaster(this.store.storageToken, peerToken) ? 'master' : 'fork';
    debug(
      'replication: %s (token %s) is %s of this side',
      this.link.remotePeerId,
      peerToken,
      this.role === 'master' ? 'fork' : 'master',
    );
    if (this.role === 'master') {
      this.master.startStream();
    } else {
      const key = ForkState.key(this.options.collection ?? 'docs', this.options.topic, peerToken);
      this.fork = new Fork(this, key, this.options.batchSize, () => this.resyncsReceived);
      void this.fork.start();
    }
    this.settleReady();
    this.changed();
  }

  private onRequest(request: RpcRequest): void {
    if (this.closed) return;
    if (request.method === 'token') {
      this.peerP2PSyncVersion = Math.max(this.peerP2PSyncVersion, announcedP2PSyncVersion(request.params));
      this.rpc.respond(request.id, this.store.storageToken);
    } else if (MASTER_METHODS.has(request.method)) {
      this.master.handle(request);
    } else if (request.method === DIGEST_METHOD) {
      this.digests.handle(request);
    } else {
      this.reject(`unknown method "${request.method.slice(0, 64)}"`);
      // An error answer spares the caller its timeout; none when the peer is not reading what we send anyway.
      if (this.rpc.pressure < this.limits.highWaterBytes) {
        this.rpc.respondError(request.id, {
          name: 'P2PSyncError',
          code: 'E_PROTOCOL',
          message: `unknown method "${request.method.slice(0, 64)}"`,
        });
      }
    }
    this.changed();
  }

  private onStream(result: unknown): void {
    if (this.closed) return;
    if (result === 'RESYNC') this.resyncsReceived++;
    if (this.role === 'fork') {
      this.fork?.onStream(result);
      this.changed();
    } else if (this.role === 'master' && !this.bothMasterWarned) {
      this.bothMasterWarned = true;
      this.emit({
        event: 'warning',
        code: 'E_PROTOCOL',
        message: `peer ${this.link.remotePeerId} streams changes as master too: its hash function differs, nothing replicates on this link`,
        details: { peerId: this.link.remotePeerId },
      });
    }
    // Before the handshake ends there is nothing to do: the fork's first pull covers whatever came before.
  }

  private onChange(change: StoreChange): void {
    if (this.closed) return;
    this.master.onChange(change);
    this.fork?.onChange(change);
    this.changed();
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    this.subscription.unsubscribe();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.recheckTimer) clearTimeout(this.recheckTimer);
    this.master.close();
    this.digests.close();
    this.fork?.close();
    this.rpc.close();
    this.settleReady(
      new P2PSyncError('E_PEER', `the link to peer ${this.link.remotePeerId} closed before the handshake ended`),
    );
    while (this.work.size > 0) await Promise.allSettled([...this.work]);
    this.progress.flush();
    // Exact per-link counts (the `pulled` / `pushed` events are coalesced): the crash tests count re-sent documents
    // from the surviving peer's lines (NODE_DEBUG=p2psync). The line format is relied on there.
    debug('replication: closed link to %s: %j', this.link.remotePeerId, this.stats);
    this.lastIdle = false;
    for (const h of [...this.handlers]) h();
  }
}

function validateOptions(o: ReplicationOptions): void {
  const bad = (option: string, message: string): never => {
    throw new P2PSyncError('E_BAD_OPTION', message, { option });
  };
  if (!o.store || !o.meta || !o.link) bad('store', 'replicate() needs a store, a meta store and a link');
  if (typeof o.topic !== 'string' || o.topic.length === 0) bad('topic', 'the topic must be a non-empty string');
  if (!Number.isSafeInteger(o.batchSize) || o.batchSize < 1)
    bad('batch-size', `the batch size must be a whole number of at least 1, got ${o.batchSize}`);
  if (o.direction !== undefined && !['both', 'pull', 'push'].includes(o.direction))
    bad('direction', `unknown direction "${String(o.direction)}"`);
  if (!o.conflict || typeof o.conflict.resolve !== 'function' || typeof o.conflict.isEqual !== 'function')
    bad('conflict', 'a conflict strategy is required');
  for (const [name, v] of [
    ['requestTimeoutMs', o.requestTimeoutMs],
    ['retryDelayMs', o.retryDelayMs],
  ] as const) {
    if (v !== undefined && !(Number.isFinite(v) && v > 0)) bad(name, `${name} must be a positive number`);
  }
}
