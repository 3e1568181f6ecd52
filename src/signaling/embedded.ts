import { connect as tcpConnect, isIPv4, isIPv6 } from 'node:net';
import { debuglog } from 'node:util';
import { P2PSyncError } from '../core/errors.js';
import type { EmitEvent, Unsubscribe } from '../core/events.js';
import type { SignalMessage, SignalStatus } from '../core/signal.js';
import { createSignalingClient, type SignalingClient, type SignalingClientOptions } from './client.js';
import { DEFAULT_SIGNAL_PORT, startSignalServer, type SignalLimits, type SignalServer } from './server.js';

const debug = debuglog('p2psync');

/** What `join` uses when no `--signal` is given: a server on this machine, hosted by whichever peer came first. */
export const DEFAULT_SIGNAL_URL = `ws://127.0.0.1:${DEFAULT_SIGNAL_PORT}`;

/**
 * Reconnect timing of the embedded default. Loopback dials are cheap, so retries start fast; full jitter
 * (each wait drawn from (0, delay]) spreads the peers that lost the same host over the first 250 ms, so a
 * takeover finishes well within a second and the bind race between them stays small.
 */
export const EMBEDDED_RECONNECT = { initialMs: 250, maxMs: 2_000, jitter: 1 } as const;
/** A loopback dial answers or is refused within microseconds; this only guards against a wedged listener. */
const PROBE_TIMEOUT_MS = 1_000;
/** The hosting peer leaving gives the other peers this long to finish the closing handshake. */
const SERVER_CLOSE_TIMEOUT_MS = 2_000;

/** Options of {@link createDefaultSignaling}. */
export interface DefaultSignalingOptions {
  readonly topic: string;
  /** Loopback address to use and, if nothing answers, to host on: an IPv4 127.x.x.x or ::1. Default 127.0.0.1. */
  readonly host?: string;
  /** Default 8787. Tests pass a free ephemeral port. */
  readonly port?: number;
  /** Receives `signaling-hosted` plus the client's events. */
  readonly emit?: EmitEvent;
  /** Overrides {@link EMBEDDED_RECONNECT}. */
  readonly reconnect?: SignalingClientOptions['reconnect'];
  readonly pingIntervalMs?: number;
  readonly connectTimeoutMs?: number;
  /** Limits of the server when this peer hosts it. */
  readonly serverLimits?: Partial<SignalLimits>;
}

/** The signaling channel of the embedded default: a client, plus the server while this peer hosts it. */
export interface DefaultSignaling extends SignalingClient {
  /** True while this process hosts the signaling server. */
  readonly hosting: boolean;
}

function isLoopback(host: string): boolean {
  return (isIPv4(host) && host.startsWith('127.')) || (isIPv6(host) && /^(0*:)*:?0*1$/.test(host));
}

/**
 * Connects to the local signaling server at `host:port`, hosting it in-process when nothing answers there
 * (connection refused). When the hosting peer leaves, the others lose their sockets, and the first one to
 * find the address free hosts it again; the bind itself decides the race (losers get E_ADDR_IN_USE and connect
 * as clients). Nothing is hosted while a server answers, and only loopback is ever bound. Throws E_BAD_OPTION.
 */
export function createDefaultSignaling(options: DefaultSignalingOptions): DefaultSignaling {
  const host = options.host ?? '127.0.0.1';
  if (!isLoopback(host)) {
    throw new P2PSyncError(
      'E_BAD_OPTION',
      `the embedded signaling server only runs on loopback (127.0.0.1 or ::1), not ${host}; pass --signal to use another server`,
      {
        option: 'host',
      },
    );
  }
  const port = options.port ?? DEFAULT_SIGNAL_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new P2PSyncError(
      'E_BAD_OPTION',
      `the embedded signaling port must be a whole number from 1 to 65535, got ${String(port)}`,
      { option: 'port' },
    );
  }
  return new EmbeddedSignaling(options, host, port);
}

type ProbeResult = 'answering' | 'refused' | 'unknown';

/** Whether something accepts TCP connections at host:port. Never rejects. */
function probe(host: string, port: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host, port });
    let settled = false;
    const done = (result: ProbeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done('unknown'), PROBE_TIMEOUT_MS);
    socket.once('connect', () => done('answering'));
    socket.on('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED' ? 'refused' : 'unknown'));
  });
}

class EmbeddedSignaling implements DefaultSignaling {
  private readonly client: SignalingClient;
  private server: SignalServer | undefined;
  private closing = false;
  private closedPromise: Promise<void> | undefined;
  /** The hook run in flight, so close() can wait for a server that is still starting. */
  private pending: Promise<void> = Promise.resolve();
  private lastWarning: string | undefined;

  constructor(
    private readonly options: DefaultSignalingOptions,
    private readonly host: string,
    private readonly port: number,
  ) {
    const urlHost = isIPv6(host) ? `[${host}]` : host;
    this.client = createSignalingClient({
      url: `ws://${urlHost}:${port}`,
      topic: options.topic,
      reconnect: { ...EMBEDDED_RECONNECT, ...options.reconnect },
      ...(options.pingIntervalMs !== undefined ? { pingIntervalMs: options.pingIntervalMs } : {}),
      ...(options.connectTimeoutMs !== undefined ? { connectTimeoutMs: options.connectTimeoutMs } : {}),
      ...(options.emit ? { emit: options.emit } : {}),
      beforeConnect: () => {
        this.pending = this.ensureServer();
        return this.pending;
      },
    });
  }

  get hosting(): boolean {
    return this.server !== undefined;
  }
  get url(): string {
    return this.client.url;
  }
  get topic(): string {
    return this.client.topic;
  }
  get peerId(): string | undefined {
    return this.client.peerId;
  }
  get peers(): readonly string[] {
    return this.client.peers;
  }
  onPeers(handler: (peerIds: string[]) => void): Unsubscribe {
    return this.client.onPeers(handler);
  }
  onSignal(handler: (message: SignalMessage) => void): Unsubscribe {
    return this.client.onSignal(handler);
  }
  onStatus(handler: (status: SignalStatus) => void): Unsubscribe {
    return this.client.onStatus(handler);
  }
  sendSignal(to: string, data: unknown, connectionId: string): void {
    this.client.sendSignal(to, data, connectionId);
  }
  waitConnected(timeoutMs?: number): Promise<string> {
    return this.client.waitConnected(timeoutMs);
  }

  /** Closes the client, then the server if this peer hosts it (which hands the address to the others). */
  close(): Promise<void> {
    this.closedPromise ??= (async () => {
      this.closing = true;
      await this.client.close();
      await this.pending.catch(() => undefined);
      const server = this.server;
      this.server = undefined;
      await server?.close({ timeoutMs: SERVER_CLOSE_TIMEOUT_MS });
    })();
    return this.closedPromise;
  }

  /** Runs before each connection attempt: host the server if, and only if, nothing answers at the address. */
  private async ensureServer(): Promise<void> {
    if (this.closing) return;
    const found = await probe(this.host, this.port);
    debug('embedded signaling: %s:%d is %s', this.host, this.port, found);
    if (found !== 'refused' || this.closing) return;
    const stale = this.server;
    if (stale) {
      // Our own server stopped answering (it should not): drop it and host afresh.
      this.server = undefined;
      await stale.close({ timeoutMs: 0 }).catch(() => undefined);
    }
    let server: SignalServer;
    try {
      server = await startSignalServer({
        host: this.host,
        port: this.port,
        ...(this.options.serverLimits ? { limits: this.options.serverLimits } : {}),
      });
    } catch (err) {
      if (err instanceof P2PSyncError && err.code === 'E_ADDR_IN_USE') {
        debug('embedded signaling: another peer took %s:%d first; connecting to it', this.host, this.port);
        return;
      }
      // The attempt goes ahead, is refused and retried with backoff; say why once, not on every retry.
      const error =
        err instanceof P2PSyncError
          ? err
          : new P2PSyncError('E_SIGNALING', err instanceof Error ? err.message : String(err));
      if (this.lastWarning !== error.code) {
        this.lastWarning = error.code;
        this.options.emit?.({
          event: 'warning',
          code: error.code,
          message: `cannot host the signaling server: ${error.message}`,
          details: error.details,
        });
      }
      return;
    }
    if (this.closing) {
      await server.close({ timeoutMs: 0 });
      return;
    }
    this.server = server;
    this.lastWarning = undefined;
    debug('embedded signaling: hosting %s', server.url);
    this.options.emit?.({ event: 'signaling-hosted', url: server.url, port: server.port });
  }
}
