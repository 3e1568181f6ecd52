import { P2PSyncError } from '../core/errors.js';

/** Resource limits of the signaling server. Every field is a positive whole number. */
export interface SignalLimits {
  /** Largest WebSocket message accepted, in bytes (ws `maxPayload`); bigger ones close the socket with 1009. */
  maxFrameBytes: number;
  /** Rooms one socket may join. RxDB clients use one socket per topic, so they need 1. */
  maxRoomsPerSocket: number;
  /** Members per room; the joiner beyond it is closed with 4006. */
  maxPeersPerRoom: number;
  /** Sustained frames per second per socket (token bucket holding two seconds' worth); beyond it 4004. */
  maxFramesPerSecond: number;
  /** Open WebSocket connections in total; upgrades beyond it get HTTP 503. */
  maxConnections: number;
  /** Application-level idle timeout: a socket that sends no message for this long is closed with 4007. */
  idleTimeoutMs: number;
  /** Interval of WebSocket pings; a socket that has not answered the previous ping is dropped. */
  heartbeatIntervalMs: number;
}

/**
 * Defaults, sized for WebRTC mesh rooms (a few dozen peers at most) on a small machine:
 * - 64 KiB frames hold any SDP offer with all its candidates many times over (offers are 1-10 KB);
 * - 16 rooms per socket is generous: RxDB opens one socket per topic;
 * - 100 peers per room is past the point where a full WebRTC mesh is practical, and bounds the O(n²)
 *   `joined` broadcast to about 150 KB per join or leave;
 * - 100 frames/s with a burst of 200 covers a joiner that sends an offer and its trickled candidates to
 *   every peer of a large room at once;
 * - 1000 connections stays below the common 1024 open-files limit;
 * - 120 s idle timeout is RxDB's own and well above its clients' 60 s ping;
 * - a 10 s heartbeat drops half-open sockets within 10-20 s instead of RxDB's 120-125 s.
 */
export const DEFAULT_SIGNAL_LIMITS: Readonly<SignalLimits> = Object.freeze({
  maxFrameBytes: 64 * 1024,
  maxRoomsPerSocket: 16,
  maxPeersPerRoom: 100,
  maxFramesPerSecond: 100,
  maxConnections: 1000,
  idleTimeoutMs: 120_000,
  heartbeatIntervalMs: 10_000,
});

/** Burst size of the per-socket rate limit, in seconds of the sustained rate. */
export const RATE_BURST_SECONDS = 2;

/** Fills in defaults and rejects anything that is not a positive safe integer (E_BAD_OPTION). */
export function resolveLimits(partial: Partial<SignalLimits> = {}): SignalLimits {
  const limits: SignalLimits = { ...DEFAULT_SIGNAL_LIMITS };
  for (const key of Object.keys(DEFAULT_SIGNAL_LIMITS) as Array<keyof SignalLimits>) {
    const value = partial[key];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
      throw new P2PSyncError(
        'E_BAD_OPTION',
        `signal server limit ${key} must be a positive whole number, got ${String(value)}`,
        { option: key },
      );
    }
    limits[key] = value;
  }
  return limits;
}

/**
 * Per-socket token bucket. It refills lazily on each take, so an idle socket costs no timer.
 * `now` is a monotonic clock in milliseconds.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly capacity: number;

  constructor(
    private readonly perSecond: number,
    now: number,
  ) {
    this.capacity = perSecond * RATE_BURST_SECONDS;
    this.tokens = this.capacity;
    this.last = now;
  }

  /** Takes one token; false when the bucket is empty. */
  take(now: number): boolean {
    const elapsed = Math.max(0, now - this.last);
    this.last = now;
    this.tokens = Math.min(this.capacity, this.tokens + (elapsed * this.perSecond) / 1000);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
