import { debuglog } from 'node:util';
import SimplePeer from 'simple-peer';
import { Subject, type Observable } from 'rxjs';
import { P2PSyncError } from '../core/errors.js';
import { addListener, type Unsubscribe } from '../core/events.js';
import type { LinkGate, PeerLink } from '../core/link.js';
import type { PeerConnection } from 'node-datachannel';
import { randomToken } from '../core/random.js';
import type { SignalChannel, SignalMessage, SignalStatus } from '../core/signal.js';
import { CandidateQueue, DEFAULT_BACKOFF, isInitiator, nextBackoff, parseSignal } from './mesh-rules.js';
import type { BackoffOptions, PeerSignal } from './mesh-rules.js';
import { clearPeerTimers, describePeerState } from './peer-internals.js';
import { WebRTCLink } from './webrtc-link.js';
import { CandidateTally, type IceOutcome } from './ice-report.js';
import { MIN_MAX_PEERS } from './neighbours.js';
import { admit, DECLINE_SIGNAL, isDecline, Overlay } from './bound.js';
import { rtcConfig, validateIceConfig, type IceConfig } from './ice.js';
import { createNativePeerConnection, fingerprintsOf, wrtc, type WebRTCRuntime } from './wrtc.js';

const defaultDebug = debuglog('p2psync');

/** docs/PROTOCOL.md §1.7: an attempt not connected after this long is destroyed (and retried by the initiator). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 15_000;
/** docs/PROTOCOL.md §1.5: 10 random `[a-z]`, fresh for every attempt. */
const CONNECTION_ID_LENGTH = 10;
/** A connectionId is ours (10 letters) or a peer's; anything long is not worth comparing or logging. */
const MAX_CONNECTION_ID_CHARS = 64;

export interface MeshOptions {
  /** Signaling for the topic; the mesh subscribes to it and unsubscribes on close (it never closes it). */
  signal: SignalChannel;
  /** ICE servers and bind address for every peer connection. */
  ice?: IceConfig;
  /** Default 15,000 ms. */
  connectTimeoutMs?: number;
  /** Initiator reconnect backoff; default 500 ms doubling to 15 s. */
  backoff?: Partial<BackoffOptions>;
  /**
   * Shared by every mesh of the process: the last one to close calls node-datachannel's cleanup(). Without it
   * the mesh never calls cleanup (call `shutdownWebRTC()` at exit).
   */
  runtime?: WebRTCRuntime;
  /**
   * Vets each connected link before `onLink` handlers see it (the trust handshake, an allowlist). A rejected link
   * is closed, and the pair backs off as after a failed attempt.
   */
  gate?: LinkGate | undefined;
  /** PEM file with the device certificate and key every connection presents in DTLS; default: one per connection. */
  certificatePemFile?: string | undefined;
  /**
   * At most this many links and attempts (`join --max-peers`): neighbours are chosen by `chooseNeighbours` (ring +
   * chords), kept with hysteresis, and offers beyond the bound are declined (`bound.ts`). Undefined: a full mesh.
   */
  maxPeers?: number | undefined;
  /** Debug log sink; default util.debuglog('p2psync'). */
  debug?: (message: string) => void;
}

/** What happens to connection attempts, for observers. `ms` counts from the attempt's start. */
export type MeshEvent =
  | { event: 'attempt'; remotePeerId: string; connectionId: string | undefined; initiator: boolean }
  | { event: 'connected'; remotePeerId: string; connectionId: string | undefined; initiator: boolean; ms: number }
  | {
      event: 'failed';
      remotePeerId: string;
      connectionId: string | undefined;
      initiator: boolean;
      reason: string;
      /** Set when the attempt failed (timeout, ICE or DTLS error), not when we ended it (room left, closing). */
      ice?: IceOutcome;
    }
  | { event: 'disconnected'; remotePeerId: string; connectionId: string | undefined; reason: string }
  | { event: 'retry'; remotePeerId: string; delayMs: number }
  | { event: 'early-candidates'; remotePeerId: string; connectionId: string | undefined; count: number }
  | { event: 'signal-dropped'; remotePeerId: string; reason: string }
  | { event: 'rejected'; remotePeerId: string; connectionId: string | undefined; reason: string }
  /** We declined an offer at --max-peers (sent the remote a decline, docs/PROTOCOL.md §1.9). */
  | { event: 'declined'; remotePeerId: string; connectionId: string | undefined };

/** A full mesh of WebRTC links with every peer of a signaling room. */
export interface Mesh {
  /**
   * Registers a handler called once for each link when it connects. Links connected before the handler was
   * registered are not replayed (see `links()`). Returns a function that removes the handler.
   */
  onLink(handler: (link: PeerLink) => void): Unsubscribe;
  /**
   * What happens to connection attempts (for logs, metrics and tests); completes when `close()` resolves. The
   * mesh starts its first attempts after the current task, so a subscriber attached right after `createMesh` sees
   * every event. Subscribers must not throw (rxjs rethrows asynchronously).
   */
  readonly events$: Observable<MeshEvent>;
  /** The currently open links. */
  links(): PeerLink[];
  /** Destroys every link and attempt and stops listening to signaling; resolves once all peers closed. */
  close(): Promise<void>;
}

interface Attempt {
  readonly remote: string;
  readonly connectionId: string | undefined;
  readonly initiator: boolean;
  readonly peer: SimplePeer.Instance;
  /** The libdatachannel connection under `peer` (for the DTLS fingerprints). */
  readonly native: PeerConnection;
  readonly startedAt: number;
  readonly closed: Promise<void>;
  state: 'connecting' | 'connected' | 'ended';
  /** Set when we end the attempt ourselves, before simple-peer's asynchronous 'close'. */
  ending: string | undefined;
  error: Error | undefined;
  link: WebRTCLink | undefined;
  /** The link handed to `onLink` handlers (after the gate, if any). */
  handed: PeerLink | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
  readonly tally: CandidateTally;
  /** ICE as it stood when the attempt failed (read before the native connection closes). */
  ice: IceOutcome | undefined;
}

/**
 * Creates a mesh over `signal`; it starts with the room as the signal channel currently knows it.
 * Throws E_BAD_OPTION for invalid ICE settings.
 */
export function createMesh(options: MeshOptions): Mesh {
  validateIceConfig(options.ice);
  const max = options.maxPeers;
  if (max !== undefined && !(Number.isSafeInteger(max) && max >= MIN_MAX_PEERS)) {
    throw new P2PSyncError(
      'E_BAD_OPTION',
      `maxPeers must be a whole number of at least ${MIN_MAX_PEERS}, got ${String(max)}`,
      { option: 'max-peers' },
    );
  }
  return new WebRTCMesh(options);
}

class WebRTCMesh implements Mesh {
  private readonly signal: SignalChannel;
  private readonly config: Record<string, unknown>;
  private readonly connectTimeoutMs: number;
  private readonly backoffOptions: BackoffOptions;
  private readonly debug: (message: string) => void;
  private readonly events = new Subject<MeshEvent>();
  readonly events$ = this.events.asObservable();
  private readonly attempts = new Map<string, Attempt>();
  private readonly retryTimers = new Map<string, ReturnType<typeof setTimeout>>();
  private readonly backoff = new Map<string, number>();
  /** Responders refuse new offers from a remote they rejected until this time (performance.now()). */
  private readonly rejectedUntil = new Map<string, number>();
  private readonly gate: LinkGate | undefined;
  private readonly certificatePemFile: string | undefined;
  private readonly early = new CandidateQueue();
  private readonly linkHandlers = new Set<(link: PeerLink) => void>();
  private readonly unsubscribe: Array<() => void>;
  private readonly release: (() => void) | undefined;
  private room = new Set<string>();
  private readonly maxPeers: number | undefined;
  /** With maxPeers: this peer's view of the overlay for the current room. */
  private overlay: Overlay | undefined;
  /** Remotes that declined us, left out of the ideal set until their timer ends (then tried again). */
  private readonly declinedBy = new Map<string, ReturnType<typeof setTimeout>>();
  /** Own peer id the current room and attempts belong to. */
  private signalingId: string | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;

  constructor(options: MeshOptions) {
    this.signal = options.signal;
    this.config = rtcConfig(options.ice);
    this.connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.backoffOptions = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.debug = options.debug ?? ((m) => defaultDebug('%s', m));
    this.gate = options.gate;
    this.certificatePemFile = options.certificatePemFile;
    this.maxPeers = options.maxPeers;
    this.release = options.runtime?.retain();
    this.signalingId = this.signal.peerId;
    this.unsubscribe = [
      this.signal.onPeers((ids) => this.handlePeers(ids)),
      this.signal.onSignal((m) => this.handleSignal(m)),
      this.signal.onStatus((s) => this.handleStatus(s)),
    ];
    // Deferred, so that whoever created the mesh subscribes to `events$` before the first attempt.
    queueMicrotask(() => {
      if (this.signal.peerId !== undefined) this.handlePeers([...this.signal.peers]);
    });
  }

  onLink(handler: (link: PeerLink) => void): Unsubscribe {
    return addListener(this.linkHandlers, handler);
  }

  links(): PeerLink[] {
    const out: PeerLink[] = [];
    for (const a of this.attempts.values()) if (a.link?.open && a.handed) out.push(a.handed);
    return out;
  }

  close(): Promise<void> {
    if (!this.closing) {
      this.closed = true;
      this.closing = this.shutdown();
    }
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    for (const off of this.unsubscribe) off();
    for (const timer of this.retryTimers.values()) clearTimeout(timer);
    this.retryTimers.clear();
    for (const timer of this.declinedBy.values()) clearTimeout(timer);
    this.declinedBy.clear();
    this.early.clear();
    const closed = [...this.attempts.values()].map((a) => {
      this.end(a, 'mesh closed');
      return a.closed;
    });
    await Promise.all(closed);
    this.release?.();
    this.events.complete();
  }

  private handlePeers(ids: string[]): void {
    this.syncSignalingId();
    const own = this.signal.peerId;
    if (this.closed || own === undefined) return;
    this.room = new Set(ids.filter((id) => id !== own));
    for (const a of this.attempts.values()) {
      // connected links survive a remote's signaling outage; attempts cannot complete without signaling
      if (!this.room.has(a.remote) && a.state === 'connecting') this.end(a, 'remote left the room');
    }
    for (const [remote, timer] of this.retryTimers) {
      if (this.room.has(remote)) continue;
      clearTimeout(timer);
      this.retryTimers.delete(remote);
      this.backoff.delete(remote);
    }
    for (const remote of this.rejectedUntil.keys()) if (!this.room.has(remote)) this.rejectedUntil.delete(remote);
    for (const [remote, timer] of this.declinedBy) {
      if (this.room.has(remote)) continue;
      clearTimeout(timer);
      this.declinedBy.delete(remote);
    }
    this.connectWanted(own);
  }

  /** Recomputes the overlay (with maxPeers) and starts the attempts this side initiates: ring links first. */
  private connectWanted(own: string): void {
    const overlay =
      this.maxPeers === undefined
        ? undefined
        : new Overlay(own, this.room, this.maxPeers, new Set(this.declinedBy.keys()));
    this.overlay = overlay;
    const order = overlay ? [...overlay.ring, ...overlay.ideal, ...this.room] : this.room;
    for (const remote of new Set(order)) this.maybeConnect(remote);
  }

  /** Whether a link to `remote` is wanted: always in a full mesh, for ideal neighbours under --max-peers. */
  private wanted(remote: string): boolean {
    return this.overlay === undefined || (this.overlay.ideal.has(remote) && !this.declinedBy.has(remote));
  }

  /** Remotes with a live link or attempt, oldest first. */
  private liveRemotes(): string[] {
    const out: string[] = [];
    for (const a of this.attempts.values()) if (a.state !== 'ended' && a.ending === undefined) out.push(a.remote);
    return out;
  }

  /**
   * Under --max-peers: whether a link to `remote` may start now, ending a worse one to make room if needed
   * (`bound.ts`). The bound counts attempts too, so racing offers and joins never take a peer above it.
   */
  private makeRoom(remote: string): boolean {
    if (!this.overlay) return true;
    const decision = admit(this.overlay, this.liveRemotes(), remote);
    if (decision.action === 'decline') return false;
    if (decision.action === 'replace') {
      const victim = this.attempts.get(decision.victim);
      if (victim) this.end(victim, `replaced by a better neighbour (--max-peers ${this.overlay.maxPeers})`);
    }
    return true;
  }

  private handleStatus(_status: SignalStatus): void {
    this.syncSignalingId();
  }

  /**
   * Notices a change of own peer id, whichever of status, member list or signal reveals it first (handlers
   * are asynchronous, so the channel may already be on its next id when a status arrives).
   */
  private syncSignalingId(): void {
    const id = this.signal.peerId;
    if (this.closed || id === this.signalingId) return;
    const previous = this.signalingId;
    this.signalingId = id;
    if (previous !== undefined) this.forgetSignalingSession();
  }

  /**
   * Our peer id died with the socket: pending attempts can never finish, the next id starts afresh.
   * Connected links stay, so replication survives a signaling outage.
   */
  private forgetSignalingSession(): void {
    this.room = new Set();
    for (const timer of this.declinedBy.values()) clearTimeout(timer);
    this.declinedBy.clear();
    for (const a of this.attempts.values()) if (a.state === 'connecting') this.end(a, 'signaling lost');
    for (const timer of this.retryTimers.values()) clearTimeout(timer);
    this.retryTimers.clear();
    this.backoff.clear();
    this.rejectedUntil.clear();
    this.early.clear();
  }

  private handleSignal(message: SignalMessage): void {
    this.syncSignalingId();
    const own = this.signal.peerId;
    if (this.closed || own === undefined) return;
    const remote = message.from;
    if (typeof remote === 'string' && isDecline(message.data)) return this.onDecline(remote, message.connectionId);
    const data = parseSignal(message.data);
    if (typeof remote !== 'string' || remote === own || !data) return this.dropped(String(remote), 'invalid signal');
    const raw = message.connectionId;
    if (raw !== undefined && (typeof raw !== 'string' || raw.length > MAX_CONNECTION_ID_CHARS)) {
      return this.dropped(remote, 'invalid connectionId');
    }
    const connectionId = raw === '' ? undefined : raw;
    const current = this.attempts.get(remote);
    const live = current && current.state !== 'ended' && current.ending === undefined ? current : undefined;
    // An initiator accepts signals without a connectionId (older RxDB); a responder's attempt is the offer's.
    const matches =
      live !== undefined && (live.connectionId === connectionId || (live.initiator && connectionId === undefined));
    if (live && matches) {
      if (data.type === 'offer' && live.initiator) return this.dropped(remote, 'offer to an initiator');
      return this.deliver(live, data);
    }
    if (isInitiator(own, remote)) return this.dropped(remote, 'outdated signal');
    if (data.type === 'candidate') {
      if (!this.early.add(remote, connectionId, data)) this.dropped(remote, 'too many early candidates');
      return;
    }
    if (data.type !== 'offer') return this.dropped(remote, `outdated ${data.type}`);
    if ((this.rejectedUntil.get(remote) ?? 0) > performance.now())
      return this.dropped(remote, 'offer from a rejected peer, backing off');
    // At the bound with nothing worse to give up: say so at once, so the remote stops this attempt, backs off and
    // tries another neighbour, instead of waiting out its connect timeout.
    if (!(current && current.state !== 'ended' && current.ending === undefined) && !this.makeRoom(remote)) {
      this.signal.sendSignal(remote, DECLINE_SIGNAL, connectionId ?? '');
      this.event({ event: 'declined', remotePeerId: remote, connectionId });
      return this.dropped(remote, 'declined: at --max-peers');
    }
    // A new offer replaces whatever we had with that remote, even a connected link: the remote restarted the
    // pair (it noticed a failure we did not, or its signaling id changed roles).
    if (current) this.end(current, 'replaced by a new offer');
    const attempt = this.start(remote, false, connectionId);
    if (!attempt) return;
    this.deliver(attempt, data);
    const early = this.early.take(remote, connectionId);
    if (early.length > 0) {
      this.event({ event: 'early-candidates', remotePeerId: remote, connectionId, count: early.length });
    }
    for (const candidate of early) this.deliver(attempt, candidate);
  }

  private maybeConnect(remote: string): void {
    const own = this.signal.peerId;
    if (this.closed || own === undefined || !this.room.has(remote)) return;
    if (this.attempts.has(remote) || this.retryTimers.has(remote) || !isInitiator(own, remote) || !this.wanted(remote))
      return;
    if (!this.makeRoom(remote)) return; // at the bound with better links; a later member list may change that
    if (!this.start(remote, true, randomToken(CONNECTION_ID_LENGTH))) this.scheduleRetry(remote);
  }

  /**
   * The remote declined our offer (at its --max-peers). The attempt ends now, without its connect timeout; the
   * retry backs off, doubling per decline. Under our own bound the remote also leaves our ideal set for that
   * long, so the next best member takes its place.
   */
  private onDecline(remote: string, connectionId: string | undefined): void {
    const attempt = this.attempts.get(remote);
    if (!attempt || !attempt.initiator || attempt.state !== 'connecting' || attempt.ending !== undefined)
      return this.dropped(remote, 'decline without an attempt');
    if ((connectionId ?? '') !== (attempt.connectionId ?? '')) return this.dropped(remote, 'outdated decline');
    attempt.error ??= new P2PSyncError('E_PEER', 'declined by the remote (at its --max-peers)');
    const own = this.signal.peerId;
    if (this.maxPeers !== undefined && own !== undefined) {
      const delayMs = nextBackoff(this.backoff.get(remote), this.backoffOptions);
      this.backoff.set(remote, delayMs);
      this.event({ event: 'retry', remotePeerId: remote, delayMs });
      clearTimeout(this.declinedBy.get(remote));
      this.declinedBy.set(
        remote,
        setTimeout(() => {
          this.declinedBy.delete(remote);
          const id = this.signal.peerId;
          if (!this.closed && id !== undefined) this.connectWanted(id);
        }, delayMs),
      );
    }
    this.end(attempt, 'declined by the remote (at its --max-peers)');
    if (own !== undefined && this.maxPeers !== undefined) this.connectWanted(own);
  }

  private start(remote: string, initiator: boolean, connectionId: string | undefined): Attempt | undefined {
    let peer: SimplePeer.Instance;
    let native: PeerConnection | undefined;
    try {
      native = createNativePeerConnection(this.config, this.certificatePemFile);
      // objectMode: text frames arrive as strings instead of Buffers
      peer = new SimplePeer({
        initiator,
        wrtc,
        config: { ...this.config, peerConnection: native },
        trickle: true,
        objectMode: true,
      });
    } catch (err) {
      native?.close();
      this.debug(`mesh: cannot create a peer for ${remote}: ${String(err)}`);
      return undefined;
    }
    let resolveClosed!: () => void;
    const attempt: Attempt = {
      remote,
      connectionId,
      initiator,
      peer,
      native,
      startedAt: performance.now(),
      closed: new Promise<void>((resolve) => (resolveClosed = resolve)),
      state: 'connecting',
      ending: undefined,
      error: undefined,
      link: undefined,
      handed: undefined,
      timer: undefined,
      tally: new CandidateTally(),
      ice: undefined,
    };
    this.attempts.set(remote, attempt);
    peer.on('signal', (data: unknown) => {
      attempt.tally.note('local', data);
      if (attempt.state !== 'ended' && attempt.ending === undefined) this.signal.sendSignal(remote, data, connectionId);
    });
    peer.once('connect', () => this.connected(attempt));
    peer.on('error', (err: Error) => {
      attempt.error ??= err;
      if (attempt.state === 'connecting') attempt.ice ??= attempt.tally.outcome(peer);
    });
    peer.once('close', () => {
      this.finished(attempt);
      resolveClosed();
    });
    attempt.timer = setTimeout(() => {
      if (attempt.state !== 'connecting') return;
      this.fail(attempt, `connect timeout after ${this.connectTimeoutMs} ms (${describePeerState(attempt.peer)})`);
    }, this.connectTimeoutMs);
    this.debug(`mesh: ${initiator ? 'offering to' : 'answering'} ${remote} (${connectionId ?? 'no connectionId'})`);
    this.event({ event: 'attempt', remotePeerId: remote, connectionId, initiator });
    return attempt;
  }

  /** Hands a signal to simple-peer on a later tick, as a network would, and never to a destroyed peer. */
  private deliver(attempt: Attempt, data: PeerSignal): void {
    attempt.tally.note('remote', data);
    setImmediate(() => {
      const { peer } = attempt;
      if (attempt.state === 'ended' || attempt.ending !== undefined || peer.destroyed) return;
      try {
        peer.signal(data as SimplePeer.SignalData);
      } catch (err) {
        this.fail(attempt, `signal rejected: ${err instanceof Error ? err.message : String(err)}`);
      }
    });
  }

  private connected(attempt: Attempt): void {
    if (attempt.state !== 'connecting' || attempt.ending !== undefined) return;
    clearTimeout(attempt.timer);
    attempt.state = 'connected';
    const link = new WebRTCLink(attempt.peer, attempt.remote);
    attempt.link = link;
    if (!this.gate) return this.handOver(attempt, link);
    const { local, remote } = fingerprintsOf(attempt.native);
    this.gate(link, { initiator: attempt.initiator, localFingerprint: local, remoteFingerprint: remote }).then(
      (vetted) => this.handOver(attempt, vetted),
      (err: unknown) => this.rejected(attempt, err instanceof Error ? err.message : String(err)),
    );
  }

  private handOver(attempt: Attempt, link: PeerLink): void {
    if (attempt.state !== 'connected' || attempt.ending !== undefined || !link.open) return;
    this.backoff.delete(attempt.remote);
    this.rejectedUntil.delete(attempt.remote);
    attempt.handed = link;
    const ms = Math.round(performance.now() - attempt.startedAt);
    this.debug(`mesh: connected to ${attempt.remote} in ${ms} ms`);
    const { remote, connectionId, initiator } = attempt;
    this.event({ event: 'connected', remotePeerId: remote, connectionId, initiator, ms });
    if (!link.open || attempt.ending !== undefined) return;
    for (const handler of [...this.linkHandlers]) {
      if (!link.open) break;
      handler(link);
    }
  }

  /**
   * The gate refused the remote: close the link and back off. The initiator's retry doubles its delay (the
   * backoff is only reset by a link that passes); a responder refuses the remote's offers for half that delay, so
   * a remote that ignores back-off cannot make us negotiate in a loop, while an honest initiator's next try lands.
   */
  private rejected(attempt: Attempt, reason: string): void {
    if (attempt.ending !== undefined) return; // we closed it ourselves (mesh closed, replaced) mid-handshake
    const { remote, connectionId } = attempt;
    this.debug(`mesh: rejected ${remote}: ${reason}`);
    this.event({ event: 'rejected', remotePeerId: remote, connectionId, reason });
    if (!attempt.initiator) {
      const delay = nextBackoff(this.backoff.get(remote), this.backoffOptions);
      this.backoff.set(remote, delay);
      this.rejectedUntil.set(remote, performance.now() + delay / 2);
    }
    this.fail(attempt, `rejected: ${reason}`);
  }

  /** Ends an attempt for a reason of ours (no retry decision here: `finished` makes it). */
  private end(attempt: Attempt, reason: string): void {
    if (attempt.state === 'ended' || attempt.ending !== undefined) return;
    attempt.ending = reason;
    clearTimeout(attempt.timer);
    if (attempt.link) attempt.link.close();
    else attempt.peer.destroy();
  }

  private fail(attempt: Attempt, reason: string): void {
    attempt.error ??= new P2PSyncError('E_PEER', reason);
    if (attempt.state === 'connecting') attempt.ice ??= attempt.tally.outcome(attempt.peer);
    this.end(attempt, reason);
  }

  /** simple-peer closed the peer: bookkeeping, and the initiator's reconnect. */
  private finished(attempt: Attempt): void {
    if (attempt.state === 'ended') return;
    const wasConnected = attempt.state === 'connected';
    attempt.state = 'ended';
    clearTimeout(attempt.timer);
    clearPeerTimers(attempt.peer);
    const reason = attempt.error?.message ?? attempt.ending ?? 'closed by the remote';
    const { remote, connectionId, initiator } = attempt;
    this.debug(`mesh: ${wasConnected ? 'link to' : 'attempt with'} ${remote} ended: ${reason}`);
    this.event(
      wasConnected
        ? { event: 'disconnected', remotePeerId: remote, connectionId, reason }
        : {
            event: 'failed',
            remotePeerId: remote,
            connectionId,
            initiator,
            reason,
            ...(attempt.ice ? { ice: attempt.ice } : {}),
          },
    );
    if (this.attempts.get(remote) !== attempt) return; // replaced by a newer attempt
    this.attempts.delete(remote);
    const own = this.signal.peerId;
    if (!this.closed && own !== undefined && this.room.has(remote) && isInitiator(own, remote) && this.wanted(remote)) {
      this.scheduleRetry(remote);
    }
    // A slot came free under --max-peers: a neighbour skipped at the bound may fit now.
    if (!this.closed && own !== undefined && this.overlay) this.connectWanted(own);
  }

  private scheduleRetry(remote: string): void {
    if (this.closed || this.retryTimers.has(remote)) return;
    const delayMs = nextBackoff(this.backoff.get(remote), this.backoffOptions);
    this.backoff.set(remote, delayMs);
    this.event({ event: 'retry', remotePeerId: remote, delayMs });
    const timer = setTimeout(() => {
      this.retryTimers.delete(remote);
      this.maybeConnect(remote);
    }, delayMs);
    this.retryTimers.set(remote, timer);
  }

  private dropped(remote: string, reason: string): void {
    this.debug(`mesh: dropped a signal from ${remote}: ${reason}`);
    this.event({ event: 'signal-dropped', remotePeerId: remote, reason });
  }

  private event(event: MeshEvent): void {
    this.events.next(event);
  }
}
