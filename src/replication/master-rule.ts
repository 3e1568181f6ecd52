import { createHash } from 'node:crypto';

/** Lowercase hex SHA-256 of the UTF-8 string: RxDB's default `hashFunction`. */
export function sha256hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * docs/PROTOCOL.md §2.3: this side is master of the pair when `sha256hex(own|peer) > sha256hex(peer|own)` (a plain string
 * comparison, which on lowercase hex equals comparing the digests as numbers). For distinct tokens exactly one side
 * is master; for equal tokens neither is, and both act as forks.
 */
export function isMaster(ownToken: string, peerToken: string): boolean {
  return sha256hex(ownToken + '|' + peerToken) > sha256hex(peerToken + '|' + ownToken);
}
