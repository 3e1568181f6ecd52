import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/*
 * AES-256-GCM sealing of signaling payloads. A sealed box is base64url(iv[12] || ciphertext || tag[16]); the
 * associated data names who sent it to whom, in which room and attempt, so the server can neither read a payload
 * nor redirect it to another peer or attempt.
 */

const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Far above any SDP (a few KiB): a bigger box is not worth decrypting. */
export const MAX_SEALED_CHARS = 64 * 1024;

/** The associated data of one signaling payload: every routing field the relay could tamper with. */
export function signalAad(room: string, from: string, to: string, connectionId: string | undefined): Buffer {
  return Buffer.from(JSON.stringify(['p2psync signal v1', room, from, to, connectionId ?? '']), 'utf8');
}

export function seal(key: Uint8Array, plaintext: string, aad: Uint8Array): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url');
}

/** The plaintext of a sealed box, or `undefined` if it is malformed, tampered with, or sealed under another key. */
export function open(key: Uint8Array, box: unknown, aad: Uint8Array): string | undefined {
  if (typeof box !== 'string' || box.length > MAX_SEALED_CHARS || !/^[A-Za-z0-9_-]*$/.test(box)) return undefined;
  const bytes = Buffer.from(box, 'base64url');
  if (bytes.length < IV_BYTES + TAG_BYTES) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
    decipher.setAAD(aad);
    decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
    const body = bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES);
    return Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}
