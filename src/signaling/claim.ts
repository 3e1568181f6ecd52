import { createHash, randomBytes } from 'node:crypto';
import { PEER_ID_LENGTH } from './server-protocol.js';

/*
 * Stable peer ids across signaling nodes (docs/PROTOCOL.md §1.8). A server assigns every socket a random id, so
 * a peer that moves to another node would come back as a stranger and every link it has would be renegotiated.
 * Instead, a p2psync client keeps a random claim key for its lifetime and, on a server that offers it, claims the
 * id derived from that key: the same id on every node and after every reconnect. Only the holder of the key can
 * claim its id (the derivation is one-way), so ids stay unforgeable by other clients.
 */

/** Claim keys are 32 random bytes in base64url (43 characters). */
const KEY_BYTES = 32;
const KEY_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** A fresh claim key (once per client, kept across reconnects). */
export function createClaimKey(): string {
  return randomBytes(KEY_BYTES).toString('base64url');
}

export function isClaimKey(key: unknown): key is string {
  return typeof key === 'string' && KEY_PATTERN.test(key);
}

/**
 * The peer id a key claims: 16 letters [a-z] from SHA-256 of the key, like a server-assigned id. Bytes at or
 * above 234 (= 9 * 26) are skipped so the letters stay uniform; a digest with too few usable bytes (about one
 * in 10^9) is extended by hashing it again.
 */
export function claimedPeerId(key: string): string {
  let id = '';
  let digest = createHash('sha256').update(`p2psync-peer-id:${key}`).digest();
  for (;;) {
    for (const byte of digest) {
      if (byte >= 234) continue;
      id += String.fromCharCode(97 + (byte % 26));
      if (id.length === PEER_ID_LENGTH) return id;
    }
    digest = createHash('sha256').update(digest).digest();
  }
}
