import { createHash, timingSafeEqual } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocketServer } from 'ws';
import type { RedisBackplane } from './cluster.js';
import type { SignalEventSink, SignalHub } from './server-hub.js';
import type { SignalLimits } from './server-limits.js';
import type { SignalMetrics, UpgradeRefusal } from './server-metrics.js';

/** What the HTTP layer needs from the server instance. */
export interface HttpContext {
  readonly token: string | undefined;
  readonly limits: SignalLimits;
  readonly metrics: SignalMetrics;
  readonly hub: SignalHub;
  readonly wss: WebSocketServer;
  readonly emit: SignalEventSink;
  /** The Redis backplane with `--redis`. */
  readonly cluster: RedisBackplane | undefined;
  uptimeSeconds(): number;
  closing(): boolean;
}

/**
 * Constant-time token comparison. Hashing both sides first gives equal-length inputs for timingSafeEqual,
 * so neither the content nor the length of the expected token leaks through timing.
 */
export function tokenMatches(expected: string, candidate: string | undefined): boolean {
  if (candidate === undefined) return false;
  const a = createHash('sha256').update(expected, 'utf8').digest();
  const b = createHash('sha256').update(candidate, 'utf8').digest();
  return timingSafeEqual(a, b);
}

function splitUrl(url: string | undefined): { path: string; query: URLSearchParams } {
  const raw = url ?? '/';
  const q = raw.indexOf('?');
  return q < 0
    ? { path: raw, query: new URLSearchParams() }
    : { path: raw.slice(0, q), query: new URLSearchParams(raw.slice(q + 1)) };
}

/** The token a request presents: `?token=` (what RxDB clients can send unchanged) or `Authorization: Bearer`. */
export function presentedToken(req: IncomingMessage): string | undefined {
  const fromQuery = splitUrl(req.url).query.get('token');
  if (fromQuery !== null) return fromQuery;
  const auth = req.headers.authorization;
  const m = auth === undefined ? null : /^Bearer[ \t]+(\S+)\s*$/i.exec(auth);
  return m?.[1];
}

function authorized(ctx: HttpContext, req: IncomingMessage): boolean {
  return ctx.token === undefined || tokenMatches(ctx.token, presentedToken(req));
}

const COMMON_HEADERS = { 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' } as const;

function reply(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  contentType: string,
  body: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    ...COMMON_HEADERS,
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(body),
    ...headers,
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** `GET /healthz` (open), `GET /metrics` (token-protected when a token is set), 404 for anything else. */
export function handleRequest(ctx: HttpContext, req: IncomingMessage, res: ServerResponse): void {
  const { path } = splitUrl(req.url);
  if (path !== '/healthz' && path !== '/metrics')
    return reply(req, res, 404, 'text/plain; charset=utf-8', 'not found\n');
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    return reply(req, res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { Allow: 'GET, HEAD' });
  }
  const gauges = ctx.hub.gauges(ctx.uptimeSeconds());
  if (path === '/healthz') {
    // 503 while shutting down lets a load balancer stop routing here before the port goes away.
    // With Redis down the node still serves its local rooms, but peers on other nodes cannot reach them: 503
    // tells a load balancer to send new peers to a node that can.
    const redis = ctx.cluster?.health();
    const status = ctx.closing() ? 'shutting-down' : redis?.status === 'down' ? 'unhealthy' : 'ok';
    const body = JSON.stringify({
      status,
      uptimeSeconds: Math.floor(gauges.uptimeSeconds),
      sockets: gauges.sockets,
      rooms: gauges.rooms,
      peers: gauges.peers,
      ...(redis ? { redis } : {}),
    });
    return reply(req, res, status === 'ok' ? 200 : 503, 'application/json; charset=utf-8', body + '\n');
  }
  if (!authorized(ctx, req)) {
    return reply(req, res, 401, 'text/plain; charset=utf-8', 'unauthorized\n', {
      'WWW-Authenticate': 'Bearer realm="p2psync"',
    });
  }
  return reply(req, res, 200, 'text/plain; version=0.0.4; charset=utf-8', ctx.metrics.render(gauges, ctx.cluster));
}

/** Answers an upgrade request with a plain HTTP error and closes the connection. */
export function refuseUpgrade(socket: Duplex, status: number, headers: Record<string, string> = {}): void {
  const body = `${(STATUS_CODES[status] ?? 'error').toLowerCase()}\n`;
  const head = {
    Connection: 'close',
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(body)),
    ...headers,
  };
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
      Object.entries(head)
        .map(([k, v]) => `${k}: ${v}`)
        .join('\r\n') +
      '\r\n\r\n' +
      body,
  );
}

function refuse(
  ctx: HttpContext,
  req: IncomingMessage,
  socket: Duplex,
  reason: UpgradeRefusal,
  status: number,
  headers?: Record<string, string>,
): void {
  ctx.metrics.refuse(reason);
  ctx.emit({ event: 'upgrade-refused', reason, status, remoteAddress: req.socket.remoteAddress ?? '' });
  refuseUpgrade(socket, status, headers);
}

/** Gatekeeper for WebSocket upgrades on any path: shutdown, token, connection limit, then ws's handshake checks. */
export function handleUpgrade(ctx: HttpContext, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  // A reset during the handshake must not become an uncaught 'error' event.
  socket.on('error', () => socket.destroy());
  if (ctx.closing()) return refuse(ctx, req, socket, 'shutting_down', 503);
  if (!authorized(ctx, req))
    return refuse(ctx, req, socket, 'unauthorized', 401, { 'WWW-Authenticate': 'Bearer realm="p2psync"' });
  if (ctx.hub.openSockets >= ctx.limits.maxConnections) return refuse(ctx, req, socket, 'max_connections', 503);
  ctx.wss.handleUpgrade(req, socket, head, (ws) => ctx.hub.attach(ws, socket, () => req.socket.remoteAddress ?? ''));
}
