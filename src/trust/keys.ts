import { createHmac, hkdfSync, scryptSync } from 'node:crypto';

/**
 * Keys of one topic under one secret. Everything a peer needs to find the others (the room name) and to prove it
 * knows the secret (seal and handshake keys) comes from `scrypt(secret, topic)`, so peers with another secret or
 * another topic share nothing, and the signaling server never learns the topic.
 */
export interface TopicKeys {
  /** The room name sent to the signaling server: a keyed hash of the topic, 48 characters (RxDB's 6-99 rule). */
  readonly room: string;
  /** AES-256-GCM key that seals every signaling payload. */
  readonly sealKey: Buffer;
  /** HMAC-SHA-256 key of the trust handshake on the data channel. */
  readonly authKey: Buffer;
}

/**
 * scrypt cost: N = 2^15, r = 8 (32 MiB, about 0.1 s on one core). Secrets may be passphrases, so the root key is
 * stretched once per topic at start-up; everything after it is a cheap HKDF.
 */
export const SCRYPT_PARAMS = { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;

/** Domain-separation labels; changing any of them is a new protocol version. */
const ROOT_SALT = 'p2psync trust v1 root\0';
const INFO = {
  room: 'p2psync trust v1 room',
  seal: 'p2psync trust v1 signal seal',
  auth: 'p2psync trust v1 handshake',
};
const ROOM_PREFIX = 'p2ps-';

/**
 * Derives a topic's keys: root = scrypt(secret, salt = label || topic); then HKDF-SHA-256(root) with one info label
 * per key. The room name is `p2ps-` + base64url(HMAC-SHA-256(roomKey, topic)).
 */
export function deriveTopicKeys(secret: Uint8Array, topic: string): TopicKeys {
  if (secret.length === 0) throw new Error('the secret is empty');
  const root = scryptSync(secret, Buffer.from(ROOT_SALT + topic, 'utf8'), 32, SCRYPT_PARAMS);
  const hkdf = (info: string): Buffer => Buffer.from(hkdfSync('sha256', root, Buffer.alloc(0), info, 32));
  const roomKey = hkdf(INFO.room);
  const room = ROOM_PREFIX + createHmac('sha256', roomKey).update(topic, 'utf8').digest('base64url');
  return { room, sealKey: hkdf(INFO.seal), authKey: hkdf(INFO.auth) };
}
