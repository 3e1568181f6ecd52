import { randomBytes } from 'node:crypto';
import { textFrame } from './server-frame.js';

/**
 * Close codes the server sends on violations and shutdown. RxDB clients ignore codes and just reconnect
 * with backoff; the codes and reasons are there for people debugging a client.
 */
export const SIGNAL_CLOSE_CODES = {
  /** Standard "going away": the server is shutting down. */
  shutdown: 1001,
  /** Standard "internal error": a server bug while handling a frame; only that socket is closed. */
  internalError: 1011,
  /** Not JSON, not a JSON object, or no string `type`. */
  invalidMessage: 4000,
  /** A `type` other than join, signal, ping, claim. */
  unknownType: 4001,
  /** `join` with a room that is not a string of 6-99 UTF-16 code units. */
  invalidRoom: 4002,
  /** `signal` whose `senderPeerId` is not the sender's own peer id. */
  spoofedSender: 4003,
  /** More frames than the per-socket rate limit allows. */
  rateLimited: 4004,
  /** `join` beyond the rooms-per-socket limit. */
  tooManyRooms: 4005,
  /** `join` of a room that already has the maximum number of peers. */
  roomFull: 4006,
  /** No message for the idle timeout (120 s by default). */
  idleTimeout: 4007,
  /** A newer connection claimed this socket's peer id (the same client, reconnected: docs/PROTOCOL.md §1.8). */
  replaced: 4008,
} as const;

/** Why a frame was rejected or dropped; the label values of `p2psync_signal_frames_rejected_total`. */
export type FrameRejectReason =
  | 'invalid_json'
  | 'invalid_message'
  | 'unknown_type'
  | 'invalid_room'
  | 'spoofed_sender'
  | 'rate_limited'
  | 'too_many_rooms'
  | 'room_full'
  | 'too_large'
  | 'invalid_utf8'
  | 'protocol_error'
  | 'unknown_receiver'
  | 'no_shared_room'
  | 'backplane_down';

export const FRAME_REJECT_REASONS: readonly FrameRejectReason[] = [
  'invalid_json',
  'invalid_message',
  'unknown_type',
  'invalid_room',
  'spoofed_sender',
  'rate_limited',
  'too_many_rooms',
  'room_full',
  'too_large',
  'invalid_utf8',
  'protocol_error',
  'unknown_receiver',
  'no_shared_room',
  'backplane_down',
];

/** A client frame that passed the envelope checks. `raw` is the exact text received, relayed verbatim. */
export type ClientMessage =
  | { type: 'join'; room: unknown }
  | { type: 'signal'; senderPeerId: unknown; receiverPeerId: unknown; raw: string }
  | { type: 'claim'; key: unknown }
  | { type: 'ping' };

export type ParseResult =
  | { ok: true; message: ClientMessage }
  | { ok: false; reason: 'invalid_json' | 'invalid_message' | 'unknown_type'; detail: string };

/**
 * Parses one client frame without trusting it: any JSON value is possible, including `null` (which crashes
 * RxDB's own server), arrays and deeply nested values. Only top-level fields are read, and `signal` frames
 * are relayed as the received text, so nesting depth never matters (JSON.stringify would overflow the
 * stack on deep values, JSON.parse does not).
 */
export function parseClientFrame(text: string): ParseResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'invalid_json', detail: 'invalid JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, reason: 'invalid_message', detail: 'not a JSON object' };
  }
  const msg = value as Record<string, unknown>;
  const type = Object.hasOwn(msg, 'type') ? msg.type : undefined;
  if (typeof type !== 'string') return { ok: false, reason: 'invalid_message', detail: 'missing message type' };
  switch (type) {
    case 'join':
      return { ok: true, message: { type, room: msg.room } };
    case 'signal':
      return {
        ok: true,
        message: { type, senderPeerId: msg.senderPeerId, receiverPeerId: msg.receiverPeerId, raw: text },
      };
    case 'ping':
      return { ok: true, message: { type } };
    case 'claim':
      return { ok: true, message: { type, key: msg.key } };
    default:
      return { ok: false, reason: 'unknown_type', detail: 'unknown message type' };
  }
}

/** RxDB's room rule: a JS string with 5 < length < 100 UTF-16 code units. Rejecting less would break RxDB apps. */
export function isValidRoom(room: unknown): room is string {
  return typeof room === 'string' && room.length > 5 && room.length < 100;
}

/** Length of server-assigned peer ids: 16 letters of [a-z] carry about 75 bits from the CSPRNG. */
export const PEER_ID_LENGTH = 16;

/**
 * An unguessable peer id of lowercase letters (RxDB clients compare ids as strings to pick the initiator,
 * so any unique string works). Rejection sampling keeps the letters uniform.
 */
export function createPeerId(length = PEER_ID_LENGTH): string {
  let id = '';
  while (id.length < length) {
    const byte = randomByte();
    // 234 = 9 * 26: bytes at or above it would favour the first letters.
    if (byte >= 234) continue;
    id += String.fromCharCode(97 + (byte % 26));
  }
  return id;
}

/**
 * CSPRNG bytes drawn from a pool refilled 4 KiB at a time: one `randomBytes` call per socket was a syscall and
 * an allocation on every connection of a busy server (ws pools its masking keys the same way). The pool holds
 * no secret beyond the ids it becomes, and every byte is used once.
 */
const RANDOM_POOL_BYTES = 4096;
let randomPool = Buffer.alloc(0);
let randomPoolAt = 0;
function randomByte(): number {
  if (randomPoolAt >= randomPool.length) {
    randomPool = randomBytes(RANDOM_POOL_BYTES);
    randomPoolAt = 0;
  }
  return randomPool[randomPoolAt++]!;
}

/**
 * `joined` as RxDB sends it: the full member list in join order, the receiver included, no room name. One
 * complete WebSocket frame for the whole broadcast, written unchanged to every member.
 */
export function joinedFrame(memberIds: readonly string[]): Buffer {
  return textFrame(JSON.stringify({ type: 'joined', otherPeerIds: memberIds }));
}

/** `init`, plus `claim: true`: this server takes `claim` frames (docs/PROTOCOL.md §1.8; RxDB clients ignore it). */
export function initFrame(peerId: string): Buffer {
  return textFrame(JSON.stringify({ type: 'init', yourPeerId: peerId, claim: true }));
}

/** The answer to a `claim`: the socket's peer id from now on. */
export function claimedFrame(peerId: string): Buffer {
  return textFrame(JSON.stringify({ type: 'claimed', yourPeerId: peerId }));
}
