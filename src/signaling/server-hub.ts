import type { Duplex } from 'node:stream';
import { WebSocket, type RawData } from 'ws';
import type { EventSink } from '../core/events.js';
import { claimedPeerId, isClaimKey } from './claim.js';
import type { RedisBackplane } from './cluster.js';
import { textFrame, textFrameOf } from './server-frame.js';
import { TokenBucket, type SignalLimits } from './server-limits.js';
import type { DisconnectKind, SignalGauges, SignalMetrics, UpgradeRefusal } from './server-metrics.js';
import {
  SIGNAL_CLOSE_CODES,
  claimedFrame,
  createPeerId,
  initFrame,
  isValidRoom,
  joinedFrame,
  parseClientFrame,
  type FrameRejectReason,
} from './server-protocol.js';

/** A diagnostic event of the signaling server (`SignalServer.events$`), tagged by `event` like every p2psync event. */
export type SignalServerEvent =
  | { event: 'connection'; peerId: string; remoteAddress: string }
  | { event: 'join'; peerId: string; room: string; members: number }
  /** A frame broke the protocol or a limit: `code` is the close code sent, `detail` ws's message. */
  | { event: 'violation'; peerId: string; reason: FrameRejectReason; code?: number; detail?: string }
  /** A frame was not relayed (the peer stays connected). */
  | { event: 'dropped'; peerId: string; reason: FrameRejectReason }
  | { event: 'disconnect'; peerId: string; reason: DisconnectKind; detail: string }
  | { event: 'upgrade-refused'; reason: UpgradeRefusal; status: number; remoteAddress: string; detail?: string }
  | { event: 'redis-up'; url: string }
  | { event: 'redis-down'; url: string; message: string }
  /** A Redis command failed (connection errors are reported by `redis-down`). */
  | { event: 'redis-error'; message: string }
  | { event: 'error'; peerId?: string; message: string }
  /** The last event: `close()` finished. */
  | { event: 'closed' };
export type SignalEventSink = EventSink<SignalServerEvent>;

/**
 * Bytes that may wait in one socket's send buffer. A client that stops reading while others signal it
 * would otherwise grow the server's memory without bound; past this it is dropped as a slow consumer.
 */
const MIN_MAX_BUFFERED_BYTES = 1024 * 1024;
const MAX_BUFFERED_FRAMES = 16;
/** Heartbeat slices per interval (see `heartbeat`). */
export const HEARTBEAT_SLICES = 10;

interface Peer {
  /** Assigned at connection; replaced once by a `claim` (before any join). */
  id: string;
  claimed: boolean;
  readonly socket: WebSocket;
  /**
   * The connection under `socket`. Frames go out on it directly, already framed (server-frame.ts); `ws` still owns
   * the reading side, control frames and closing.
   */
  readonly wire: Duplex;
  /** Rooms joined, with the join time (ms since the epoch: comparable across signaling nodes). */
  readonly rooms: Map<string, number>;
  readonly bucket: TokenBucket;
  lastActivity: number;
  /** Which heartbeat slice pings this socket (sockets are spread over the slices round robin). */
  readonly slot: number;
  /** Answered the last heartbeat ping, or sent a frame since the last heartbeat. */
  alive: boolean;
  /** The last heartbeat pinged it (an active socket is not pinged: its frames prove it is there). */
  pinged: boolean;
  /** Removed from the hub (closing or closed); no more frames are read from or sent to it. */
  gone: boolean;
}

function rawToText(data: RawData): string {
  // toString() without arguments is UTF-8 and skips the encoding lookup that toString('utf8') makes per frame.
  if (Buffer.isBuffer(data)) return data.toString();
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}

/** ws error codes of frames that break the WebSocket protocol; ws has already closed the socket. */
function frameErrorReason(code: unknown): FrameRejectReason | undefined {
  if (typeof code !== 'string' || !code.startsWith('WS_ERR_')) return undefined;
  if (code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') return 'too_large';
  if (code === 'WS_ERR_INVALID_UTF8') return 'invalid_utf8';
  return 'protocol_error';
}

/**
 * Peers, rooms and the message rules of RxDB's signaling protocol (docs/PROTOCOL.md §1), hardened. Owns no
 * sockets' lifecycle beyond closing them; the HTTP layer hands over upgraded sockets with `attach`.
 */
export class SignalHub {
  private readonly peers = new Map<string, Peer>();
  /** The same peers by heartbeat slice, so that a slice visits its own sockets only. */
  private readonly slices: Array<Set<Peer>> = Array.from({ length: HEARTBEAT_SLICES }, () => new Set());
  private readonly rooms = new Map<string, Set<Peer>>();
  /** Every socket not yet fully closed, including ones already removed from rooms. */
  private readonly sockets = new Set<WebSocket>();
  private readonly maxBufferedBytes: number;
  private shuttingDown = false;
  private drainWaiters: Array<() => void> = [];
  private attached = 0;
  private beat = 0;
  /** Other signaling nodes sharing the rooms (`--redis`); undefined on a single node. */
  private cluster: RedisBackplane | undefined;

  constructor(
    private readonly limits: SignalLimits,
    private readonly metrics: SignalMetrics,
    private readonly emit: SignalEventSink,
    private readonly now: () => number = () => performance.now(),
    /**
     * Whether per-socket events (`connection`, `join`, `disconnect`, `dropped`) are wanted. A busy node handles
     * thousands of joins a second; building an event for each that nobody reads is measurable.
     */
    private readonly peerEvents: () => boolean = () => true,
  ) {
    this.maxBufferedBytes = Math.max(MIN_MAX_BUFFERED_BYTES, MAX_BUFFERED_FRAMES * limits.maxFrameBytes);
  }

  /** Shares rooms with other nodes through `cluster` (call once, before any socket is attached). */
  useCluster(cluster: RedisBackplane): void {
    this.cluster = cluster;
    cluster.bind({
      localRooms: () => this.rooms.keys(),
      hasLocalRoom: (room) => this.rooms.has(room),
      localMembers: (room) => [...(this.rooms.get(room) ?? [])].map((p) => [p.id, p.rooms.get(room) ?? 0]),
      remoteChanged: (room) => {
        const members = this.rooms.get(room);
        if (members && !this.shuttingDown) this.broadcastMembers(room, members);
      },
      deliver: (receiverId, raw: string) => {
        const receiver = this.peers.get(receiverId);
        return receiver !== undefined && this.send(receiver, textFrame(raw));
      },
    });
  }

  /** Open sockets, closing ones included: what counts against `maxConnections`. */
  get openSockets(): number {
    return this.sockets.size;
  }

  gauges(uptimeSeconds: number): SignalGauges {
    let memberships = 0;
    for (const members of this.rooms.values()) memberships += members.size;
    return { sockets: this.peers.size, rooms: this.rooms.size, peers: memberships, uptimeSeconds };
  }

  /**
   * Takes over an upgraded WebSocket; `wire` is the connection `ws` upgraded (what `handleUpgrade` was given).
   * `remoteAddress` is read only when a `connection` event is emitted (it costs a getpeername call).
   */
  attach(socket: WebSocket, wire: Duplex, remoteAddress: () => string): void {
    let id = createPeerId();
    while (this.peers.has(id)) id = createPeerId();
    const now = this.now();
    const peer: Peer = {
      id,
      socket,
      wire,
      slot: this.attached++ % HEARTBEAT_SLICES,
      rooms: new Map(),
      bucket: new TokenBucket(this.limits.maxFramesPerSecond, now),
      lastActivity: now,
      alive: true,
      pinged: false,
      claimed: false,
      gone: false,
    };
    this.peers.set(id, peer);
    this.slices[peer.slot]!.add(peer);
    this.sockets.add(socket);
    this.metrics.connectionsTotal += 1;
    socket.on('message', (data, isBinary) => {
      try {
        this.onMessage(peer, data, isBinary);
      } catch (err) {
        // A bug here must cost one socket, not the process that serves everyone else.
        this.emit({ event: 'error', peerId: peer.id, message: err instanceof Error ? err.message : String(err) });
        this.remove(peer, 'error', 'internal error');
        socket.close(SIGNAL_CLOSE_CODES.internalError, 'internal error');
      }
    });
    socket.on('pong', () => {
      peer.alive = true;
    });
    socket.on('error', (err: Error & { code?: unknown }) => {
      const reason = frameErrorReason(err.code);
      if (reason) {
        this.metrics.reject(reason);
        this.emit({ event: 'violation', peerId: peer.id, reason, detail: err.message });
      }
      this.remove(peer, reason ? 'violation' : 'error', err.message);
    });
    socket.on('close', (code) => {
      this.remove(peer, 'client', `closed with ${code}`);
      this.sockets.delete(socket);
      if (this.sockets.size === 0) this.notifyDrained();
    });
    if (this.peerEvents()) this.emit({ event: 'connection', peerId: id, remoteAddress: remoteAddress() });
    this.send(peer, initFrame(id));
  }

  /**
   * One heartbeat slice: of the sockets in the next slice, drop those that did not answer their previous ping
   * and ping the quiet rest. Called HEARTBEAT_SLICES times per heartbeat interval, each call visiting its own
   * slice only, so every socket is checked once per interval but the pings of 10k sockets do not all leave (and
   * stall relays) in the same tick, nor does every tick walk all 10k sockets. A
   * socket that sent a frame within the last interval is not pinged (its frames prove it is there; a ping and
   * its pong per socket per interval are a syscall each, on the path of every relay); once it falls quiet, it
   * is pinged at its next check and dropped at the one after, so a dead socket still goes within two intervals
   * of its last frame.
   */
  heartbeat(): void {
    const slice = this.slices[this.beat++ % HEARTBEAT_SLICES]!;
    const quietSince = this.now() - this.limits.heartbeatIntervalMs;
    // Removing the current element while iterating a Set is safe: iteration goes on with the next one.
    for (const peer of slice) {
      if (!peer.alive && peer.pinged) {
        this.remove(peer, 'heartbeat', 'no pong');
        peer.socket.terminate();
        continue;
      }
      const active = peer.alive && peer.lastActivity > quietSince;
      peer.alive = false;
      peer.pinged = !active;
      if (!active && peer.socket.readyState === WebSocket.OPEN) {
        try {
          peer.socket.ping();
        } catch {
          // the socket is going away; its close event cleans up
        }
      }
    }
  }

  /** Closes sockets that sent nothing for the idle timeout (RxDB clients ping every 60 s). */
  sweepIdle(): void {
    const deadline = this.now() - this.limits.idleTimeoutMs;
    // No copy of 10k peers every few seconds: deleting the current entry while iterating a Map is safe.
    for (const peer of this.peers.values()) {
      if (peer.lastActivity < deadline) {
        this.remove(peer, 'idle', 'idle timeout');
        peer.socket.close(SIGNAL_CLOSE_CODES.idleTimeout, 'idle timeout');
      }
    }
  }

  /** Starts a shutdown: every socket gets close code 1001; no `joined` updates are sent any more. */
  closeAll(): void {
    this.shuttingDown = true;
    for (const peer of [...this.peers.values()]) this.remove(peer, 'shutdown', 'server shutting down');
    for (const socket of this.sockets) socket.close(SIGNAL_CLOSE_CODES.shutdown, 'server shutting down');
  }

  /** Drops every socket at once, for when clients do not finish the closing handshake in time. */
  terminateAll(): void {
    for (const socket of this.sockets) socket.terminate();
  }

  /** Resolves once every socket has closed. */
  drained(): Promise<void> {
    if (this.sockets.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private notifyDrained(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  private onMessage(peer: Peer, data: RawData, isBinary: boolean): void {
    if (peer.gone) return;
    const now = this.now();
    // Like RxDB, any message counts as activity for the idle timeout, even one that is then rejected.
    peer.lastActivity = now;
    peer.alive = true;
    this.metrics.framesReceived += 1;
    if (!peer.bucket.take(now))
      return this.violation(peer, 'rate_limited', SIGNAL_CLOSE_CODES.rateLimited, 'rate limit exceeded');
    // RxDB's server accepts binary frames holding JSON, so we do too (invalid UTF-8 in them becomes U+FFFD);
    // ws has already validated text frames' UTF-8. Relayed frames always go out as text.
    const text = rawToText(data);
    const parsed = parseClientFrame(text);
    if (!parsed.ok) {
      const code =
        parsed.reason === 'unknown_type' ? SIGNAL_CLOSE_CODES.unknownType : SIGNAL_CLOSE_CODES.invalidMessage;
      return this.violation(peer, parsed.reason, code, parsed.detail);
    }
    const msg = parsed.message;
    switch (msg.type) {
      case 'join':
        return this.join(peer, msg.room);
      case 'signal':
        // A text frame is relayed as the bytes received (ws has checked their UTF-8), saving an encode per relay.
        return this.relay(peer, msg.senderPeerId, msg.receiverPeerId, isBinary || !Buffer.isBuffer(data) ? text : data);
      case 'claim':
        return this.claim(peer, msg.key);
      case 'ping':
        return;
    }
  }

  /**
   * Gives the socket the peer id its client's key derives (docs/PROTOCOL.md §1.8), so a client keeps one id on
   * every node and across reconnects. Only before the first join, and once. A socket still holding that id (the
   * same client's previous connection, half-open or not yet noticed as closed) is closed with 4008.
   */
  private claim(peer: Peer, key: unknown): void {
    if (!isClaimKey(key) || peer.claimed || peer.rooms.size > 0)
      return this.violation(peer, 'invalid_message', SIGNAL_CLOSE_CODES.invalidMessage, 'invalid claim');
    peer.claimed = true;
    const id = claimedPeerId(key);
    const previous = this.peers.get(id);
    if (previous && previous !== peer) {
      this.remove(previous, 'replaced', 'peer id claimed by a newer connection');
      previous.socket.close(SIGNAL_CLOSE_CODES.replaced, 'peer id claimed by a newer connection');
    }
    this.peers.delete(peer.id);
    peer.id = id;
    this.peers.set(id, peer);
    this.send(peer, claimedFrame(id));
  }

  private join(peer: Peer, room: unknown): void {
    if (!isValidRoom(room)) return this.violation(peer, 'invalid_room', SIGNAL_CLOSE_CODES.invalidRoom, 'invalid room');
    if (peer.rooms.has(room)) return;
    if (peer.rooms.size >= this.limits.maxRoomsPerSocket) {
      return this.violation(peer, 'too_many_rooms', SIGNAL_CLOSE_CODES.tooManyRooms, 'too many rooms');
    }
    let members = this.rooms.get(room);
    // With other nodes, the limit counts the whole room as this node knows it.
    if ((members?.size ?? 0) + (this.cluster?.view.count(room) ?? 0) >= this.limits.maxPeersPerRoom) {
      return this.violation(peer, 'room_full', SIGNAL_CLOSE_CODES.roomFull, 'room full');
    }
    if (!members) {
      members = new Set();
      this.rooms.set(room, members);
    }
    members.add(peer);
    const at = Date.now();
    peer.rooms.set(room, at);
    this.cluster?.joined(room, peer.id, at, members.size === 1);
    if (this.peerEvents()) this.emit({ event: 'join', peerId: peer.id, room, members: members.size });
    this.broadcastMembers(room, members);
  }

  private relay(peer: Peer, senderPeerId: unknown, receiverPeerId: unknown, raw: string | Buffer): void {
    if (senderPeerId !== peer.id)
      return this.violation(peer, 'spoofed_sender', SIGNAL_CLOSE_CODES.spoofedSender, 'spoofed sender');
    const receiver = typeof receiverPeerId === 'string' ? this.peers.get(receiverPeerId) : undefined;
    if (!receiver && this.cluster && typeof receiverPeerId === 'string')
      return this.relayRemote(peer, receiverPeerId, typeof raw === 'string' ? raw : raw.toString('utf8'));
    // Unknown receivers are dropped silently, as RxDB does: the receiver may just have left.
    if (!receiver) return this.dropped(peer, 'unknown_receiver');
    // RxDB relays to any known id; we only relay between members of a shared room, so knowing an id is not
    // enough to reach a peer. RxDB clients only ever signal co-members.
    if (!this.shareRoom(peer, receiver)) return this.dropped(peer, 'no_shared_room');
    if (this.send(receiver, typeof raw === 'string' ? textFrame(raw) : textFrameOf(raw)))
      this.metrics.framesRelayed += 1;
  }

  private shareRoom(a: Peer, b: Peer): boolean {
    const small = a.rooms.size <= b.rooms.size ? a.rooms : b.rooms;
    const large = small === a.rooms ? b.rooms : a.rooms;
    for (const room of small.keys()) if (large.has(room)) return true;
    return false;
  }

  /** A `signal` for a peer this node does not serve: through Redis to its node, if it shares a room with us. */
  private relayRemote(peer: Peer, receiverId: string, raw: string): void {
    const cluster = this.cluster!;
    for (const room of peer.rooms.keys()) {
      const node = cluster.view.nodeOf(room, receiverId);
      if (node === undefined) continue;
      if (cluster.relay(node, receiverId, raw)) this.metrics.framesRelayed += 1;
      else this.dropped(peer, 'backplane_down');
      return;
    }
    this.dropped(peer, 'unknown_receiver');
  }

  private dropped(peer: Peer, reason: FrameRejectReason): void {
    this.metrics.reject(reason);
    if (this.peerEvents()) this.emit({ event: 'dropped', peerId: peer.id, reason });
  }

  private violation(peer: Peer, reason: FrameRejectReason, code: number, closeReason: string): void {
    this.metrics.reject(reason);
    this.emit({ event: 'violation', peerId: peer.id, reason, code });
    this.remove(peer, 'violation', closeReason);
    peer.socket.close(code, closeReason);
  }

  /** Takes a peer out of its rooms and tells the remaining members. Idempotent. */
  private remove(peer: Peer, kind: DisconnectKind, detail: string): void {
    if (peer.gone) return;
    peer.gone = true;
    this.peers.delete(peer.id);
    this.slices[peer.slot]!.delete(peer);
    for (const room of peer.rooms.keys()) {
      const members = this.rooms.get(room);
      if (!members) continue;
      members.delete(peer);
      this.cluster?.left(room, peer.id, members.size === 0);
      if (members.size === 0) this.rooms.delete(room);
      else if (!this.shuttingDown) this.broadcastMembers(room, members);
    }
    this.metrics.disconnected(kind);
    if (this.peerEvents()) this.emit({ event: 'disconnect', peerId: peer.id, reason: kind, detail });
  }

  private broadcastMembers(room: string, members: Set<Peer>): void {
    const frame = joinedFrame(this.cluster ? this.clusterMembers(room, members) : [...members].map((m) => m.id));
    for (const member of [...members]) this.send(member, frame);
  }

  /**
   * Local and remote members merged in join order. A remote entry for a local member's id is the same client's
   * membership on the node it left (kept until that node notices or its keys expire): the local one wins.
   */
  private clusterMembers(room: string, members: Set<Peer>): string[] {
    const all: Array<[string, number]> = [...members].map((m) => [m.id, m.rooms.get(room) ?? 0]);
    for (const [id, member] of this.cluster!.view.entries(room)) if (!this.peers.has(id)) all.push([id, member.at]);
    return all.sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1)).map(([id]) => id);
  }

  private isSlow(peer: Peer): boolean {
    // What waits in the connection's buffer, ws's own frames included (ws queues nothing itself without deflate).
    return peer.wire.writableLength > this.maxBufferedBytes;
  }

  private dropSlow(peer: Peer): void {
    if (peer.gone) return;
    this.remove(peer, 'slow_consumer', 'send buffer full');
    // close() would queue its frame behind the data the client does not read; terminate frees it now.
    peer.socket.terminate();
  }

  /** Writes a complete text frame (server-frame.ts) if the socket is open and keeping up; false if not sent. */
  private send(peer: Peer, frame: Buffer): boolean {
    if (peer.gone || peer.socket.readyState !== WebSocket.OPEN || !peer.wire.writable) return false;
    if (this.isSlow(peer)) {
      // Dropped after the current loop: removing a member mid-broadcast would send the newer member list
      // first and this older one after it, and clients act on the last list they get.
      queueMicrotask(() => this.dropSlow(peer));
      return false;
    }
    peer.wire.write(frame);
    this.metrics.framesSent += 1;
    return true;
  }
}
