import { createCipheriv, createDecipheriv, randomBytes, randomFillSync } from 'node:crypto';
import { P2PSyncError } from '../core/errors.js';
import type { Json } from '../core/types.js';

/**
 * The on-disk format of one encrypted value (docs/STORES.md, "Encryption at rest"):
 *
 *     "p2psync:v1:" + base64url( keyId[4] | nonce[12] | ciphertext | tag[16] )
 *
 * The plaintext is the value's JSON text, so any JSON value (string, number, object...) can be encrypted and comes
 * back with its type. AES-256-GCM with a fresh random 96-bit nonce per value; the associated data binds the value
 * to its document id and field name, so a value copied into another document or field does not decrypt.
 * `keyId` names the data key (several exist only while a `rekey` is under way).
 */
export const VALUE_PREFIX = 'p2psync:v1:';

const KEY_ID_BYTES = 4;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** Shortest possible body: key id, nonce, one byte of ciphertext (`0` is the shortest JSON text) and the tag. */
const MIN_BODY = KEY_ID_BYTES + NONCE_BYTES + 1 + TAG_BYTES;

/** A data key: 32 random bytes that encrypt values, named by a 4-byte id (hex). */
export interface DataKey {
  readonly id: string;
  readonly key: Buffer;
}

export function newDataKey(): DataKey {
  return { id: randomBytes(KEY_ID_BYTES).toString('hex'), key: randomBytes(32) };
}

/** True for a string in the encrypted-value format (it may still fail to decrypt). */
export function isEncryptedValue(v: unknown): v is string {
  return typeof v === 'string' && v.startsWith(VALUE_PREFIX);
}

/** The key id an encrypted value names, or undefined if it is not one or too short to name any. */
export function keyIdOf(v: string): string | undefined {
  if (!isEncryptedValue(v)) return undefined;
  const body = Buffer.from(v.slice(VALUE_PREFIX.length, VALUE_PREFIX.length + 8), 'base64url');
  return body.length >= KEY_ID_BYTES ? body.subarray(0, KEY_ID_BYTES).toString('hex') : undefined;
}

/**
 * Random nonces drawn from a pool refilled 4,096 at a time: one CSPRNG call per value cost about a third of the
 * time to encrypt it. Each nonce is used once, for one value, as with `randomBytes(12)` per value.
 */
class NoncePool {
  private readonly pool = Buffer.allocUnsafe(NONCE_BYTES * 4096);
  private next = this.pool.length;

  take(): Buffer {
    if (this.next === this.pool.length) {
      randomFillSync(this.pool);
      this.next = 0;
    }
    const nonce = this.pool.subarray(this.next, this.next + NONCE_BYTES);
    this.next += NONCE_BYTES;
    return nonce;
  }
}

function aad(docId: string, field: string): Buffer {
  return Buffer.from(JSON.stringify([VALUE_PREFIX, docId, field]), 'utf8');
}

/** Encrypts values with the current data key and decrypts values of any key it holds. */
export class ValueCipher {
  private readonly byId: Map<string, DataKey>;
  private readonly currentKeyId: Buffer;
  private readonly nonces = new NoncePool();

  constructor(
    keys: readonly DataKey[],
    /** New values are encrypted with this key. */
    readonly current: DataKey,
  ) {
    this.byId = new Map(keys.map((k) => [k.id, k]));
    this.byId.set(current.id, current);
    this.currentKeyId = Buffer.from(current.id, 'hex');
  }

  encrypt(value: Json, docId: string, field: string): string {
    const nonce = this.nonces.take();
    const c = createCipheriv('aes-256-gcm', this.current.key, nonce);
    c.setAAD(aad(docId, field));
    const body = Buffer.concat([
      this.currentKeyId,
      nonce,
      c.update(JSON.stringify(value), 'utf8'),
      c.final(),
      c.getAuthTag(),
    ]);
    return VALUE_PREFIX + body.toString('base64url');
  }

  /** The value, or E_DECRYPT naming the field and the document. */
  decrypt(text: string, docId: string, field: string): Json {
    const fail = (why: string): never => {
      throw new P2PSyncError('E_DECRYPT', `field "${field}" of document "${docId}" does not decrypt: ${why}`, {
        id: docId,
        field,
      });
    };
    if (!isEncryptedValue(text)) fail(`not an encrypted value (no "${VALUE_PREFIX}" prefix)`);
    const encoded = text.slice(VALUE_PREFIX.length);
    if (!/^[A-Za-z0-9_-]*$/.test(encoded)) fail('not base64url');
    const body = Buffer.from(encoded, 'base64url');
    if (body.length < MIN_BODY) fail('too short');
    const keyId = body.subarray(0, KEY_ID_BYTES).toString('hex');
    const key = this.byId.get(keyId);
    if (!key)
      fail(`encrypted with data key ${keyId}, which this store's keyring does not hold (a value from another store?)`);
    const d = createDecipheriv('aes-256-gcm', key!.key, body.subarray(KEY_ID_BYTES, KEY_ID_BYTES + NONCE_BYTES));
    d.setAAD(aad(docId, field));
    d.setAuthTag(body.subarray(body.length - TAG_BYTES));
    let json: string;
    try {
      json = Buffer.concat([
        d.update(body.subarray(KEY_ID_BYTES + NONCE_BYTES, body.length - TAG_BYTES)),
        d.final(),
      ]).toString('utf8');
    } catch {
      return fail(
        'the authentication tag does not match (the value was changed, or moved from another document or field)',
      );
    }
    try {
      return JSON.parse(json) as Json;
    } catch {
      return fail('the decrypted text is not JSON');
    }
  }

  /** True if `text` is encrypted with the current data key (a rekey re-encrypts values for which this is false). */
  isCurrent(text: string): boolean {
    return keyIdOf(text) === this.current.id;
  }
}
