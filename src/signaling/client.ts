import { parseJsonObject } from '../core/json.js';
import { debuglog } from 'node:util';
import { WebSocket, type ClientOptions, type RawData } from 'ws';
import { P2PSyncError } from '../core/errors.js';
import { addListener, type Unsubscribe } from '../core/events.js';
import { claimedPeerId, createClaimKey } from './claim.js';
import type { SignalChannel, SignalMessage, SignalStatus } from '../core/signal.js';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_PING_INTERVAL_MS,
  DEFAULT_RECONNECT,
  MAX_PAYLOAD_BYTES,
  redactUrl,
  secretsOf,
  validateOptions,
  type SignalingClientOptions,
} from './client-options.js';

export {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_PING_INTERVAL_MS,
  DEFAULT_RECONNECT,
  redactUrl,
  type SignalingClientOptions,
} from './client-options.js';

const debug = debuglog('p2psync');

/** A {@link SignalChannel} over a WebSocket, with lifecycle control. */
export interface SignalingClient extends SignalChannel {
  /** The URL with secrets (`token`, passwords) replaced by `***`: safe to print. */
  readonly url: string;
  readonly topic: string;
  /**
   * Resolves with the own peer id once connected (at once if connected now). Rejects with `E_AUTH` when the
   * server refused our credentials and the client gave up, with `E_UNREACHABLE` when `timeoutMs` passes first,
   * and with `E_SIGNALING` when the client is closed. Call it without a timeout to learn about a fatal failure.
   */
  waitConnected(timeoutMs?: number): Promise<string>;
  /** Closes the socket and stops reconnecting. Idempotent; resolves once the socket is closed. */
  close(): Promise<void>;
}

/** Opens a signaling client; it connects at once and keeps reconnecting until closed. Throws `E_BAD_OPTION`. */
export function createSignalingClient(options: SignalingClientOptions): SignalingClient {
  return new WsSignalingClient(options, validateOptions(options));
}

interface Waiter {
  resolve(peerId: string): void;
  reject(err: P2PSyncError): void;
  timer?: NodeJS.Timeout;
}

type Failure = { reason: string; httpStatus?: number };

class WsSignalingClient implements SignalingClient {
  readonly topic: string;
  /** `url` then the fallbacks; `index` is the one in use or being dialled. */
  private readonly rawUrls: string[];
  private readonly redactedUrls: string[];
  private index = 0;
  private readonly secrets: string[];
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly jitter: number;
  private readonly pingIntervalMs: number;
  private readonly connectTimeoutMs: number;
  private readonly wsOptions: ClientOptions;
  private readonly peerHandlers = new Set<(peerIds: string[]) => void>();
  private readonly signalHandlers = new Set<(message: SignalMessage) => void>();
  private readonly statusHandlers = new Set<(status: SignalStatus) => void>();
  private readonly waiters = new Set<Waiter>();

  private socket: WebSocket | undefined;
  private ownId: string | undefined;
  /**
   * Kept for the client's lifetime: on servers that take claims, the peer id is derived from it, so this peer
   * keeps one id across reconnects and failover and its open links survive a move (docs/PROTOCOL.md §1.8).
   */
  private readonly claimKey = createClaimKey();
  private readonly claimId = claimedPeerId(this.claimKey);
  /** The current socket sent its `claim` and waits for `claimed`. */
  private claiming = false;
  private roomPeers: string[] = [];
  private delay: number;
  private attempt = 0;
  private everConnected = false;
  private authErrorReported = false;
  private failure: P2PSyncError | undefined;
  /** Why the current attempt failed, first cause wins (ws follows an HTTP refusal with a generic error). */
  private lastFailure: Failure | undefined;
  /** Why the previous socket ended, kept across attempts for timeout messages. */
  private lastReason: string | undefined;
  private closing = false;
  private closedPromise: Promise<void> | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private connectTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly options: SignalingClientOptions,
    parsed: URL,
  ) {
    this.rawUrls = [options.url, ...(options.fallbackUrls ?? [])];
    this.redactedUrls = this.rawUrls.map(redactUrl);
    this.secrets = [parsed, ...(options.fallbackUrls ?? []).map((u) => new URL(u))]
      .flatMap(secretsOf)
      .sort((a, b) => b.length - a.length);
    this.topic = options.topic;
    this.initialMs = options.reconnect?.initialMs ?? DEFAULT_RECONNECT.initialMs;
    this.maxMs = Math.max(this.initialMs, options.reconnect?.maxMs ?? DEFAULT_RECONNECT.maxMs);
    this.jitter = options.reconnect?.jitter ?? 0;
    this.pingIntervalMs = options.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS;
    this.connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.delay = this.initialMs;
    this.wsOptions = {
      perMessageDeflate: false,
      maxPayload: MAX_PAYLOAD_BYTES,
      ...(options.tls?.ca !== undefined ? { ca: options.tls.ca as string | Buffer | Array<string | Buffer> } : {}),
      ...(options.tls?.rejectUnauthorized !== undefined ? { rejectUnauthorized: options.tls.rejectUnauthorized } : {}),
    };
    void this.connect();
  }

  /** The URL in use (or being dialled), redacted. */
  get url(): string {
    return this.redactedUrls[this.index]!;
  }

  get peerId(): string | undefined {
    return this.ownId;
  }

  get peers(): readonly string[] {
    return this.roomPeers;
  }

  onPeers(handler: (peerIds: string[]) => void): Unsubscribe {
    return addListener(this.peerHandlers, handler);
  }

  onSignal(handler: (message: SignalMessage) => void): Unsubscribe {
    return addListener(this.signalHandlers, handler);
  }

  onStatus(handler: (status: SignalStatus) => void): Unsubscribe {
    return addListener(this.statusHandlers, handler);
  }

  sendSignal(to: string, data: unknown, connectionId: string): void {
    if (!this.ownId) return;
    this.send({ type: 'signal', senderPeerId: this.ownId, receiverPeerId: to, room: this.topic, data, connectionId });
  }

  waitConnected(timeoutMs?: number): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closing) return Promise.reject(this.closedError());
    if (this.ownId) return Promise.resolve(this.ownId);
    return new Promise<string>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject };
      if (timeoutMs !== undefined) {
        waiter.timer = setTimeout(() => {
          this.waiters.delete(waiter);
          const last = this.lastReason ? ` (last error: ${this.lastReason})` : '';
          reject(
            new P2PSyncError(
              'E_UNREACHABLE',
              `could not connect to the signaling server ${this.url} within ${timeoutMs / 1000} s${last}`,
              {
                url: this.url,
              },
            ),
          );
        }, timeoutMs);
      }
      this.waiters.add(waiter);
    });
  }

  close(): Promise<void> {
    if (this.closedPromise) return this.closedPromise;
    this.closing = true;
    clearTimeout(this.reconnectTimer);
    this.settleWaiters(this.closedError());
    const socket = this.socket;
    this.closedPromise = new Promise<void>((resolve) => {
      if (!socket || socket.readyState === WebSocket.CLOSED) return resolve();
      socket.once('close', () => resolve());
      // A polite close frame when open; a dial in progress or a stuck peer is cut off right away.
      if (socket.readyState === WebSocket.OPEN) {
        socket.close(1000, 'client closing');
        setTimeout(() => socket.terminate(), 1_000).unref();
      } else {
        socket.terminate();
      }
    });
    return this.closedPromise;
  }

  private closedError(): P2PSyncError {
    return new P2PSyncError('E_SIGNALING', 'the signaling client was closed', { url: this.url });
  }

  private async connect(): Promise<void> {
    this.reconnectTimer = undefined;
    this.attempt++;
    if (this.options.beforeConnect) {
      try {
        await this.options.beforeConnect({ attempt: this.attempt });
      } catch (err) {
        debug('signaling beforeConnect hook failed: %s', this.scrub(String(err)));
      }
    }
    if (this.closing || this.failure) return;
    const Impl = this.options.WebSocket ?? WebSocket;
    let socket: WebSocket;
    try {
      socket = new Impl(this.rawUrls[this.index]!, this.wsOptions);
    } catch (err) {
      // Only reachable with odd URLs the constructor rejects (validated ones do not): retry like any failure.
      this.lastFailure = { reason: this.scrub(err instanceof Error ? err.message : String(err)) };
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    this.lastFailure = undefined;
    debug('signaling connecting to %s (attempt %d)', this.url, this.attempt);
    this.connectTimer = setTimeout(() => {
      this.lastFailure = { reason: `no answer within ${this.connectTimeoutMs} ms` };
      socket.terminate();
    }, this.connectTimeoutMs);

    socket.on('unexpected-response', (_req, res) => {
      this.lastFailure ??= {
        reason: `HTTP ${res.statusCode ?? 0} at the WebSocket upgrade`,
        httpStatus: res.statusCode ?? 0,
      };
      res.resume();
      socket.terminate();
    });
    socket.on('open', () => {
      this.delay = this.initialMs;
      this.pingTimer = setInterval(() => this.send({ type: 'ping' }), this.pingIntervalMs);
    });
    socket.on('message', (data: RawData) => this.onMessage(socket, data));
    socket.on('error', (err: Error) => {
      this.lastFailure ??= { reason: this.scrub(err.message) };
    });
    socket.on('close', (code: number, reason: Buffer) => this.onClose(socket, code, reason.toString('utf8')));
  }

  private onMessage(socket: WebSocket, data: RawData): void {
    if (socket !== this.socket) return;
    const msg = parseFrame(data);
    if (!msg) {
      debug('signaling ignored an unparsable frame');
      return;
    }
    switch (msg.type) {
      case 'init':
        return this.onInit(msg);
      case 'claimed':
        return this.onClaimed(msg);
      case 'joined':
        return this.onJoined(msg);
      case 'signal':
        return this.onSignalMessage(msg);
      default:
        debug('signaling ignored a frame of type %s', String(msg.type).slice(0, 40));
    }
  }

  private onInit(msg: Record<string, unknown>): void {
    const id = msg.yourPeerId;
    // One id per socket: a second `init` would silently re-address us, so it is ignored.
    if (this.ownId || this.claiming || typeof id !== 'string' || id.length === 0 || id.length > 200) return;
    if (msg.claim === true) {
      // The server takes claims: ask for our stable id first; the join waits for the answer.
      this.claiming = true;
      this.send({ type: 'claim', key: this.claimKey });
      return;
    }
    this.connected(id);
  }

  private onClaimed(msg: Record<string, unknown>): void {
    if (!this.claiming || this.ownId) return;
    this.claiming = false;
    // A server that answers with another id is not following §1.8; use what it says, as with `init`.
    const id = msg.yourPeerId;
    if (typeof id !== 'string' || id.length === 0 || id.length > 200) return;
    if (id !== this.claimId) debug('signaling server answered a claim with another id');
    this.connected(id);
  }

  private connected(id: string): void {
    clearTimeout(this.connectTimer);
    this.ownId = id;
    this.everConnected = true;
    this.authErrorReported = false;
    this.send({ type: 'join', room: this.topic });
    debug('signaling connected to %s as %s', this.url, id);
    this.options.emit?.({ event: 'signaling-connected', url: this.url, topic: this.topic, peerId: id });
    this.deliver(this.statusHandlers, { connected: true, peerId: id });
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.resolve(id);
    }
    this.waiters.clear();
  }

  private onJoined(msg: Record<string, unknown>): void {
    const own = this.ownId;
    if (!own || !Array.isArray(msg.otherPeerIds)) return;
    const seen = new Set<string>();
    for (const id of msg.otherPeerIds) if (typeof id === 'string' && id.length > 0 && id !== own) seen.add(id);
    this.roomPeers = [...seen];
    this.deliver(this.peerHandlers, [...this.roomPeers]);
  }

  private onSignalMessage(msg: Record<string, unknown>): void {
    const own = this.ownId;
    const from = msg.senderPeerId;
    if (!own || msg.receiverPeerId !== own || typeof from !== 'string' || from.length === 0) return;
    const message: SignalMessage =
      typeof msg.connectionId === 'string'
        ? { from, data: msg.data, connectionId: msg.connectionId }
        : { from, data: msg.data };
    this.deliver(this.signalHandlers, message);
  }

  private onClose(socket: WebSocket, code: number, reasonText: string): void {
    if (socket !== this.socket) return;
    this.socket = undefined;
    clearTimeout(this.connectTimer);
    clearInterval(this.pingTimer);
    const wasConnected = this.ownId !== undefined;
    this.ownId = undefined;
    this.claiming = false;
    this.roomPeers = [];
    const reason =
      wasConnected || !this.lastFailure ? describeClose(code, this.scrub(reasonText)) : this.lastFailure.reason;
    const status = wasConnected ? undefined : this.lastFailure?.httpStatus;
    this.lastReason = reason;
    if (wasConnected) this.deliver(this.statusHandlers, { connected: false });
    if (this.closing) return;
    debug('signaling socket to %s ended: %s', this.url, reason);
    if (status === 401 || status === 403) {
      if (this.onAuthFailure(status)) return;
    }
    const wait = this.scheduleReconnect();
    this.options.emit?.({ event: 'signaling-disconnected', url: this.url, topic: this.topic, reason, retryInMs: wait });
    // Failover: the next attempt goes to the next node; joining the topic there is what `init` does anyway.
    this.index = (this.index + 1) % this.rawUrls.length;
  }

  /** Reports a refused credential; returns true when the client gives up. */
  private onAuthFailure(status: number): boolean {
    const fatal = !this.everConnected && !this.options.retryAuthFailures;
    const err = new P2PSyncError(
      'E_AUTH',
      `the signaling server ${this.url} refused the connection (HTTP ${status}): check the access token (?token=)`,
      { url: this.url, status },
    );
    if (!fatal) {
      // Retried: one event per streak of refusals. A fatal refusal is not emitted: it rejects waitConnected(),
      // whose caller reports it (once).
      if (!this.authErrorReported)
        this.options.emit?.({ event: 'error', code: err.code, message: err.message, details: err.details });
      this.authErrorReported = true;
      return false;
    }
    this.failure = err;
    this.settleWaiters(err);
    return true;
  }

  /** Schedules the next attempt and returns the wait in ms. */
  private scheduleReconnect(): number {
    const base = this.delay;
    this.delay = Math.min(this.delay * 2, this.maxMs);
    const wait = Math.round(base * (1 - this.jitter * Math.random()));
    this.reconnectTimer = setTimeout(() => void this.connect(), wait);
    return wait;
  }

  private settleWaiters(err: P2PSyncError): void {
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(err);
    }
    this.waiters.clear();
  }

  private send(message: Record<string, unknown>): void {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    try {
      socket.send(JSON.stringify(message));
    } catch (err) {
      // Unserialisable `data` from a caller, or a socket that just died: the contract says never throw.
      debug('signaling send failed: %s', err instanceof Error ? err.message : String(err));
    }
  }

  private deliver<T>(handlers: Set<(value: T) => void>, value: T): void {
    for (const handler of [...handlers]) {
      try {
        handler(value);
      } catch (err) {
        // A throwing handler must not kill the socket's event loop; report it instead of hiding it.
        const message = err instanceof Error ? err.message : String(err);
        debug('signaling handler threw: %s', message);
        this.options.emit?.({ event: 'error', code: 'E_INTERNAL', message: `signaling handler failed: ${message}` });
      }
    }
  }

  private scrub(text: string): string {
    let out = text;
    for (const secret of this.secrets) out = out.split(secret).join('***');
    return out;
  }
}

/** A JSON object with a string `type`, or undefined for anything else (never throws). */
function parseFrame(data: RawData): Record<string, unknown> | undefined {
  let text: string;
  if (Buffer.isBuffer(data)) text = data.toString('utf8');
  else if (Array.isArray(data)) text = Buffer.concat(data).toString('utf8');
  else text = Buffer.from(data).toString('utf8');
  const record = parseJsonObject(text);
  if (record === undefined) return undefined;
  return typeof record.type === 'string' ? record : undefined;
}

function describeClose(code: number, reason: string): string {
  const text =
    code === 1005 ? 'closed by the server (no status)' : code === 1006 ? 'connection lost' : `closed with code ${code}`;
  return reason ? `${text}: ${reason}` : text;
}
