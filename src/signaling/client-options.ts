import type { WebSocket } from 'ws';
import { P2PSyncError } from '../core/errors.js';
import type { EmitEvent } from '../core/events.js';

// Options, defaults, validation and secret redaction of the signaling client (split from client.ts).

/** docs/PROTOCOL.md §1.7: the RxDB client pings every 60 s (half the server's 120 s idle timeout). */
export const DEFAULT_PING_INTERVAL_MS = 60_000;
/** docs/PROTOCOL.md §1.5: reconnect after 500 ms, doubling up to 15 s, back to 500 ms once a socket opens. */
export const DEFAULT_RECONNECT = { initialMs: 500, maxMs: 15_000 } as const;
/** One attempt (TCP + TLS + upgrade + `init`) may take this long; a black-holed address would otherwise hang ~2 min. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 15_000;
/** Signaling frames are small (SDP, member lists); anything this big is a broken or hostile server. */
export const MAX_PAYLOAD_BYTES = 8 * 1024 * 1024;

/** Options of `createSignalingClient`. */
export interface SignalingClientOptions {
  /** `ws://` or `wss://` URL, used unchanged (an access token travels as `?token=`, as RxDB clients send it). */
  readonly url: string;
  /**
   * More signaling nodes of the same cluster (`p2psync signal --redis`), tried in order after `url`: when a
   * connection ends or an attempt fails, the next attempt goes to the next URL, round robin.
   */
  readonly fallbackUrls?: readonly string[];
  /** The room to join: 6-99 UTF-16 code units (the RxDB server disconnects anything else). */
  readonly topic: string;
  /**
   * Reconnect backoff. `jitter` (0-1, default 0) draws each wait uniformly from `[delay * (1 - jitter), delay]`
   * so that many clients losing the same server do not come back in lockstep.
   */
  readonly reconnect?: { readonly initialMs?: number; readonly maxMs?: number; readonly jitter?: number };
  /** Keep-alive `ping` period while the socket is open. */
  readonly pingIntervalMs?: number;
  /** Limit for one connection attempt, from dialling until `init` arrives; then the attempt counts as failed. */
  readonly connectTimeoutMs?: number;
  /** Receives `signaling-connected`, `signaling-disconnected` and `error` events. */
  readonly emit?: EmitEvent;
  /** The WebSocket class (tests inject wrappers); defaults to ws's. */
  readonly WebSocket?: typeof WebSocket;
  /**
   * TLS settings for `wss://`: extra trusted CA certificate(s) (PEM) and whether to verify the server at all.
   * Node also honours `NODE_EXTRA_CA_CERTS=/path/ca.pem` (read at process start) without any option.
   */
  readonly tls?: {
    readonly ca?: string | Buffer | ReadonlyArray<string | Buffer>;
    readonly rejectUnauthorized?: boolean;
  };
  /**
   * By default a 401/403 before the first successful connection is fatal (wrong credentials do not fix
   * themselves; `join --once` must fail fast), while one after a success is retried (the server may have been
   * restarted with a rotated token, and established WebRTC links keep replicating meanwhile). `true` retries
   * in both cases.
   */
  readonly retryAuthFailures?: boolean;
  /**
   * Runs before every connection attempt, the first included; the attempt waits for it. Used by the embedded
   * default to host the server when nothing answers. Errors are logged and the attempt goes ahead.
   */
  readonly beforeConnect?: (info: { readonly attempt: number }) => Promise<void>;
}

/** Query parameters whose values never appear in events or logs. */
const SECRET_PARAM = /token|secret|password|passwd|pass|key|auth|sig/i;

/** The URL with credentials replaced by `***`, for events and messages. Unparsable input is fully hidden. */
export function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return '***';
  }
  if (parsed.username) parsed.username = '***';
  if (parsed.password) parsed.password = '***';
  for (const name of [...new Set(parsed.searchParams.keys())]) {
    if (SECRET_PARAM.test(name)) parsed.searchParams.set(name, '***');
  }
  return parsed.toString();
}

/** Every secret value in `url`, to scrub from error texts that might echo it. */
export function secretsOf(url: URL): string[] {
  const out: string[] = [];
  if (url.username) out.push(url.username, decodeURIComponent(url.username));
  if (url.password) out.push(url.password, decodeURIComponent(url.password));
  for (const [name, value] of url.searchParams)
    if (SECRET_PARAM.test(name) && value) out.push(value, encodeURIComponent(value));
  return out.filter((s) => s.length > 0).sort((a, b) => b.length - a.length);
}

export function validateOptions(options: SignalingClientOptions): URL {
  for (const extra of options.fallbackUrls ?? []) parseWsUrl(extra);
  const url = parseWsUrl(options.url);
  const topic: unknown = options.topic;
  if (typeof topic !== 'string' || topic.length < 6 || topic.length > 99) {
    throw new P2PSyncError(
      'E_BAD_OPTION',
      'the topic must be 6 to 99 characters long (signaling servers reject other room names)',
    );
  }
  const positive = (name: string, v: number | undefined): void => {
    if (v !== undefined && !(Number.isFinite(v) && v > 0))
      throw new P2PSyncError('E_BAD_OPTION', `${name} must be a positive number, got ${v}`);
  };
  positive('reconnect.initialMs', options.reconnect?.initialMs);
  positive('reconnect.maxMs', options.reconnect?.maxMs);
  positive('pingIntervalMs', options.pingIntervalMs);
  positive('connectTimeoutMs', options.connectTimeoutMs);
  const jitter = options.reconnect?.jitter;
  if (jitter !== undefined && !(jitter >= 0 && jitter <= 1))
    throw new P2PSyncError('E_BAD_OPTION', `reconnect.jitter must be between 0 and 1, got ${jitter}`);
  return url;
}

function parseWsUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new P2PSyncError(
      'E_BAD_OPTION',
      `invalid signaling URL "${redactUrl(raw)}": expected ws://host:port or wss://host:port`,
    );
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new P2PSyncError(
      'E_BAD_OPTION',
      `invalid signaling URL "${redactUrl(raw)}": the scheme must be ws:// or wss://`,
    );
  }
  return url;
}
