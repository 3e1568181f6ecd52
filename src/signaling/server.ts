import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { debuglog } from 'node:util';
import { Subject, type Observable } from 'rxjs';
import { WebSocketServer } from 'ws';
import { P2PSyncError } from '../core/errors.js';
import { RedisBackplane, validateClusterOptions, type ClusterOptions } from './cluster.js';
import { handleRequest, handleUpgrade, refuseUpgrade, type HttpContext } from './server-http.js';
import { HEARTBEAT_SLICES, SignalHub, type SignalEventSink, type SignalServerEvent } from './server-hub.js';
import { resolveLimits, type SignalLimits } from './server-limits.js';
import { SignalMetrics } from './server-metrics.js';

export { DEFAULT_SIGNAL_LIMITS, type SignalLimits } from './server-limits.js';
export { SIGNAL_CLOSE_CODES } from './server-protocol.js';
export type { SignalServerEvent } from './server-hub.js';

const debug = debuglog('p2psync');

export const DEFAULT_SIGNAL_PORT = 8787;
export const DEFAULT_SIGNAL_HOST = '127.0.0.1';
/** How long `close()` waits for clients to finish the closing handshake before dropping them. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 5_000;

/**
 * Slow-loris guards for the plain HTTP side: a client must send its request headers within 10 s and the
 * whole request within 15 s. Upgraded WebSockets are not affected (they leave the HTTP server).
 */
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 15_000;
/**
 * TCP connections allowed beyond `maxConnections`, so health checks, scrapes and the 503 answer to an
 * upgrade over the limit still get through; past that, the kernel-level accept is refused outright.
 */
const TCP_HEADROOM = 64;

export interface SignalServerOptions {
  /** TCP port; default 8787; 0 picks a free ephemeral port (read it back from `SignalServer.port`). */
  port?: number;
  /** Interface to bind; default 127.0.0.1 (loopback only). Use 0.0.0.0 or :: to serve a network. */
  host?: string;
  /** Access token clients must present as `?token=` (or `Authorization: Bearer`); unset = open server. */
  token?: string;
  /** PEM certificate (chain) and private key: serve wss:// and https://. Bad material rejects with E_TLS_FILE. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Overrides of DEFAULT_SIGNAL_LIMITS. */
  limits?: Partial<SignalLimits>;
  /**
   * Share rooms with other signaling nodes through Redis (`redis://host:port`). Peers of one room may then
   * connect to different nodes. Redis down: the node keeps serving its local rooms and /healthz answers 503.
   */
  redis?: ClusterOptions;
  /**
   * Whether `events$` also carries the per-socket events (`connection`, `join`, `disconnect`, `dropped`); default
   * true. A subscriber that only wants operational news (Redis state, errors) sets false, so a busy node builds no
   * event per join. They are not built either while nobody subscribes. `NODE_DEBUG=p2psync` logs them either way.
   */
  peerEvents?: boolean;
}

export interface SignalServer {
  /** The host it was asked to bind. */
  readonly host: string;
  /** The bound port (the real one when 0 was asked). */
  readonly port: number;
  /** `ws://host:port/` or `wss://host:port/`, without any token. */
  readonly url: string;
  /**
   * Diagnostics (`connection`, `join`, `violation`, `dropped`, `disconnect`, `upgrade-refused`, `redis-up`,
   * `redis-down`, `redis-error`, `error`), ending with `closed` and completion when `close()` finishes. Events of
   * the start (Redis connecting) are held for one turn of the event loop, so a subscriber attached right after
   * `await startSignalServer()` sees them. Subscribers must not throw (rxjs rethrows asynchronously).
   */
  readonly events$: Observable<SignalServerEvent>;
  /**
   * Stops listening, closes every WebSocket with 1001, waits up to `timeoutMs` (default 5000) for clients to
   * finish the closing handshake, then drops the rest. Idempotent: every call returns the same promise.
   */
  close(opts?: { timeoutMs?: number }): Promise<void>;
}

function badOption(option: string, message: string): P2PSyncError {
  return new P2PSyncError('E_BAD_OPTION', message, { option });
}

function validate(options: SignalServerOptions): { port: number; host: string } {
  const port = options.port ?? DEFAULT_SIGNAL_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65_535)
    throw badOption('port', `port must be a whole number from 0 to 65535, got ${String(port)}`);
  const host = options.host ?? DEFAULT_SIGNAL_HOST;
  if (typeof host !== 'string' || host.trim() === '') throw badOption('host', 'host must be a non-empty string');
  if (options.token !== undefined && (typeof options.token !== 'string' || options.token === '')) {
    throw badOption('token', 'the access token must be a non-empty string');
  }
  if (options.redis !== undefined) validateClusterOptions(options.redis);
  if (options.tls !== undefined) {
    const { cert, key } = options.tls;
    if (!cert || cert.length === 0)
      throw new P2PSyncError('E_TLS_FILE', 'the TLS certificate is empty', { option: 'tls.cert' });
    if (!key || key.length === 0) throw new P2PSyncError('E_TLS_FILE', 'the TLS key is empty', { option: 'tls.key' });
  }
  return { port, host };
}

function createBaseServer(tls: SignalServerOptions['tls']): HttpServer {
  if (!tls) return createHttpServer();
  try {
    return createHttpsServer({ cert: tls.cert, key: tls.key });
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new P2PSyncError('E_TLS_FILE', `invalid TLS certificate or key: ${reason}`, {}, { cause: err });
  }
}

function listenError(err: NodeJS.ErrnoException, host: string, port: number): P2PSyncError {
  const where = `${host}:${port}`;
  switch (err.code) {
    case 'EADDRINUSE':
      return new P2PSyncError(
        'E_ADDR_IN_USE',
        `cannot listen on ${where}: the address is already in use`,
        { host, port },
        { cause: err },
      );
    case 'EACCES':
      return new P2PSyncError('E_IO', `cannot listen on ${where}: permission denied`, { host, port }, { cause: err });
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NONAME':
      return new P2PSyncError(
        'E_BAD_OPTION',
        `cannot listen on ${where}: no such local address`,
        { host, port, option: 'host' },
        { cause: err },
      );
    default:
      return new P2PSyncError('E_IO', `cannot listen on ${where}: ${err.message}`, { host, port }, { cause: err });
  }
}

function formatUrl(tls: boolean, host: string, port: number): string {
  const h = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return `${tls ? 'wss' : 'ws'}://${h}:${port}/`;
}

function listen(server: HttpServer, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      reject(listenError(err, host, port));
    };
    const onListening = (): void => {
      server.off('error', onError);
      const addr = server.address();
      resolve(typeof addr === 'object' && addr !== null ? addr.port : port);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ port, host });
  });
}

/** Resolves after `ms`, or at once if `ms` <= 0; the timer does not keep the process alive. */
function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)).unref());
}

/**
 * Starts a signaling server that stock RxDB 17 clients use unchanged (docs/PROTOCOL.md §1), hardened with
 * limits, an optional token, TLS, heartbeats, /healthz and /metrics. Rejects with a P2PSyncError:
 * E_ADDR_IN_USE when the port is taken, E_TLS_FILE for bad TLS material, E_BAD_OPTION for bad options.
 */
export async function startSignalServer(options: SignalServerOptions = {}): Promise<SignalServer> {
  const { port: askedPort, host } = validate(options);
  const limits = resolveLimits(options.limits);
  const events = new Subject<SignalServerEvent>();
  let held: SignalServerEvent[] | undefined = [];
  // Read once: calling a disabled debuglog still costs a call with rest arguments per event.
  const tracing = debug.enabled;
  const emit: SignalEventSink = (e) => {
    if (tracing) debug('signal server: %s %j', e.event, e);
    if (held) held.push(e);
    else events.next(e);
  };
  const release = (): void => {
    const early = held ?? [];
    held = undefined;
    for (const e of early) events.next(e);
  };
  const server = createBaseServer(options.tls);
  const metrics = new SignalMetrics();
  const wantPeerEvents = options.peerEvents !== false;
  const peerEvents = (): boolean => tracing || (wantPeerEvents && (held !== undefined || events.observed));
  const hub = new SignalHub(limits, metrics, emit, undefined, peerEvents);
  const cluster = options.redis ? new RedisBackplane(options.redis, emit) : undefined;
  if (cluster) hub.useCluster(cluster);
  // permessage-deflate stays off: it costs memory per socket and invites decompression bombs, and
  // signaling frames are small.
  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    perMessageDeflate: false,
    maxPayload: limits.maxFrameBytes,
  });
  let closing = false;
  let startedAt = performance.now();

  const ctx: HttpContext = {
    token: options.token,
    limits,
    metrics,
    hub,
    wss,
    emit,
    cluster,
    uptimeSeconds: () => (performance.now() - startedAt) / 1000,
    closing: () => closing,
  };
  wss.on('wsClientError', (err, socket, req) => {
    metrics.refuse('bad_handshake');
    emit({
      event: 'upgrade-refused',
      reason: 'bad_handshake',
      status: 400,
      detail: err.message,
      remoteAddress: req.socket.remoteAddress ?? '',
    });
    refuseUpgrade(socket, 400);
  });

  // Every TCP connection, so that close() can end the ones that linger (half-open sockets, idle keep-alives).
  const connections = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    connections.add(socket);
    socket.once('close', () => connections.delete(socket));
  });
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.maxConnections = limits.maxConnections + TCP_HEADROOM;
  server.on('request', (req, res) => handleRequest(ctx, req, res));
  server.on('upgrade', (req, socket, head) => handleUpgrade(ctx, req, socket, head));

  let port: number;
  try {
    port = await listen(server, host, askedPort);
  } catch (err) {
    await cluster?.close(0);
    throw err;
  }
  startedAt = performance.now();
  server.on('error', (err) => emit({ event: 'error', message: err.message }));

  const heartbeat = setInterval(
    () => hub.heartbeat(),
    Math.max(1, Math.floor(limits.heartbeatIntervalMs / HEARTBEAT_SLICES)),
  ).unref();
  // A quarter of the idle timeout keeps the overshoot small; 5 s (RxDB's period) is plenty for 120 s.
  const sweepEvery = Math.min(5_000, Math.max(20, Math.floor(limits.idleTimeoutMs / 4)));
  const idleSweep = setInterval(() => hub.sweepIdle(), sweepEvery).unref();

  const shutdown = async (timeoutMs: number): Promise<void> => {
    closing = true;
    clearInterval(heartbeat);
    clearInterval(idleSweep);
    const deadline = performance.now() + timeoutMs;
    const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
    hub.closeAll();
    const clusterClosed = cluster?.close();
    server.closeIdleConnections();
    await Promise.race([hub.drained(), delay(timeoutMs)]);
    hub.terminateAll();
    await Promise.race([stopped, delay(deadline - performance.now())]);
    for (const socket of connections) socket.destroy();
    await stopped;
    wss.close();
    await clusterClosed;
    emit({ event: 'closed' });
    release();
    events.complete();
  };

  let closed: Promise<void> | undefined;
  const url = formatUrl(options.tls !== undefined, host, port);
  setImmediate(release);
  return {
    host,
    port,
    url,
    events$: events.asObservable(),
    close(opts?: { timeoutMs?: number }): Promise<void> {
      closed ??= shutdown(Math.max(0, opts?.timeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS));
      return closed;
    },
  };
}
