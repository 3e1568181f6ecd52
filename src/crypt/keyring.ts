import { createCipheriv, createDecipheriv, randomBytes, scrypt } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { P2PSyncError } from '../core/errors.js';
import { writeFileAtomic } from '../store/fs-util.js';
import { newDataKey, ValueCipher, type DataKey } from './value.js';

/**
 * The keyring: a small JSON file beside the sidecar (`<sidecar>.keys`) that holds what encryption needs besides
 * the user's key. It is written whole and atomically (temp file, fsync, rename, fsync of the directory).
 *
 * Values are encrypted with random data keys; the keyring holds those data keys wrapped (AES-256-GCM) by one or
 * more key-encryption keys, each derived with scrypt from a user key and a per-slot random salt. A wrong user key
 * fails the wrap's authentication tag, which is how a wrong key is told before anything is read or written. The
 * field list and the current data key id are authenticated with every slot, so nobody can edit the file to turn
 * encryption off for a field.
 *
 * Two slots (the old user key and the new one) and two data keys exist only while `rekey` runs: either key then
 * opens every value, so a crash at any point leaves a store that opens with the old key or the new one.
 */
export interface KeyringFile {
  p2psyncKeyring: 1;
  /** Top-level fields encrypted in every document. */
  fields: string[];
  /** Id of the data key new values are encrypted with. */
  current: string;
  slots: KeySlot[];
}

export interface KeySlot {
  kdf: 'scrypt';
  N: number;
  r: number;
  p: number;
  /** base64 */
  salt: string;
  /** base64 */
  nonce: string;
  /** base64: AES-256-GCM of `[[keyId, base64 key], ...]` with the tag appended. */
  keys: string;
}

/** An unlocked keyring. */
export interface Keyring {
  readonly fields: readonly string[];
  readonly cipher: ValueCipher;
  /** Every data key (more than one while a rekey is unfinished). */
  readonly dataKeys: readonly DataKey[];
  /** The file's text as read, to notice a change by another process. */
  readonly text: string;
}

/** scrypt cost: 2^15 x 8 x 1 takes about 100 ms and 32 MiB, once per open. Recorded per slot, so it can change. */
export const SCRYPT = { N: 1 << 15, r: 8, p: 1 } as const;
function kek(secret: Buffer, salt: Buffer, slot: Pick<KeySlot, 'N' | 'r' | 'p'>): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(
      secret,
      salt,
      32,
      { N: slot.N, r: slot.r, p: slot.p, maxmem: 256 * slot.N * slot.r + (1 << 20) },
      (err, key) => (err ? reject(err) : resolve(key)),
    );
  });
}

function slotAad(fields: readonly string[], current: string): Buffer {
  return Buffer.from(JSON.stringify(['p2psync-keyring', 1, fields, current]), 'utf8');
}

async function makeSlot(
  secret: Buffer,
  keys: readonly DataKey[],
  fields: readonly string[],
  current: string,
): Promise<KeySlot> {
  const salt = randomBytes(16);
  const nonce = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', await kek(secret, salt, SCRYPT), nonce);
  c.setAAD(slotAad(fields, current));
  const plain = JSON.stringify(keys.map((k) => [k.id, k.key.toString('base64')]));
  const box = Buffer.concat([c.update(plain, 'utf8'), c.final(), c.getAuthTag()]);
  return {
    kdf: 'scrypt',
    ...SCRYPT,
    salt: salt.toString('base64'),
    nonce: nonce.toString('base64'),
    keys: box.toString('base64'),
  };
}

/** Data keys from the first slot the secret opens, or undefined if it opens none. */
async function openSlots(file: KeyringFile, secret: Buffer): Promise<DataKey[] | undefined> {
  for (const slot of file.slots) {
    const box = Buffer.from(slot.keys, 'base64');
    const d = createDecipheriv(
      'aes-256-gcm',
      await kek(secret, Buffer.from(slot.salt, 'base64'), slot),
      Buffer.from(slot.nonce, 'base64'),
    );
    d.setAAD(slotAad(file.fields, file.current));
    d.setAuthTag(box.subarray(box.length - 16));
    let plain: string;
    try {
      plain = Buffer.concat([d.update(box.subarray(0, box.length - 16)), d.final()]).toString('utf8');
    } catch {
      continue;
    }
    return (JSON.parse(plain) as Array<[string, string]>).map(([id, key]) => ({ id, key: Buffer.from(key, 'base64') }));
  }
  return undefined;
}

function damaged(path: string, why: string): P2PSyncError {
  return new P2PSyncError(
    'E_KEYRING',
    `the keyring ${path} is damaged (${why}); without it the encrypted values cannot be read: restore it from a backup`,
    { file: path },
  );
}

function validate(path: string, text: string): KeyringFile {
  let f: unknown;
  try {
    f = JSON.parse(text);
  } catch {
    throw damaged(path, 'not JSON');
  }
  const k = f as KeyringFile;
  if (typeof f !== 'object' || f === null || k.p2psyncKeyring !== 1)
    throw damaged(path, 'not a p2psync keyring of version 1');
  const isStr = (v: unknown): v is string => typeof v === 'string';
  const isInt = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) > 0;
  if (!Array.isArray(k.fields) || k.fields.length === 0 || !k.fields.every(isStr) || !isStr(k.current))
    throw damaged(path, 'bad field list');
  if (!Array.isArray(k.slots) || k.slots.length === 0) throw damaged(path, 'no key slots');
  for (const s of k.slots) {
    if (
      typeof s !== 'object' ||
      s === null ||
      s.kdf !== 'scrypt' ||
      !isInt(s.N) ||
      !isInt(s.r) ||
      !isInt(s.p) ||
      !isStr(s.salt) ||
      !isStr(s.nonce) ||
      !isStr(s.keys)
    ) {
      throw damaged(path, 'bad key slot');
    }
    // A hostile keyring must not make us burn memory: scrypt needs 128 * N * r bytes.
    if (s.N > 1 << 20 || s.r > 32 || s.p > 16 || (s.N & (s.N - 1)) !== 0)
      throw damaged(path, 'key slot with unreasonable scrypt parameters');
  }
  return k;
}

/** The keyring's text and content, or undefined if there is none (the store is not encrypted). */
export async function readKeyring(path: string): Promise<{ text: string; file: KeyringFile } | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new P2PSyncError(
      'E_IO',
      `cannot read the keyring ${path}: ${(err as Error).message}`,
      { file: path },
      { cause: err },
    );
  }
  return { text, file: validate(path, text) };
}

/** Unlocks a keyring with a user key: E_WRONG_KEY if no slot opens with it. */
export async function unlockKeyring(
  path: string,
  read: { text: string; file: KeyringFile },
  secret: Buffer,
): Promise<Keyring> {
  const { file, text } = read;
  const dataKeys = await openSlots(file, secret);
  if (!dataKeys)
    throw new P2PSyncError(
      'E_WRONG_KEY',
      `the key does not open the store (keyring ${path}): a wrong key, or a keyring that was altered`,
      { file: path },
    );
  const current = dataKeys.find((k) => k.id === file.current);
  if (!current || dataKeys.some((k) => k.key.length !== 32)) throw damaged(path, 'the current data key is missing');
  return { fields: file.fields, dataKeys, cipher: new ValueCipher(dataKeys, current), text };
}

/** A new keyring for these fields and one user key, written atomically; returns it unlocked. */
export function createKeyring(path: string, fields: readonly string[], secret: Buffer): Promise<Keyring> {
  const key = newDataKey();
  return writeKeyring(path, fields, [key], key, [secret]);
}

/**
 * Writes a keyring whose data keys are `keys` (new values use `current`), opened by each of `secrets`.
 * Used by rekey: first {old, new} keys under {old, new} secrets, then {new} under {new}.
 */
export async function writeKeyring(
  path: string,
  fields: readonly string[],
  keys: readonly DataKey[],
  current: DataKey,
  secrets: readonly Buffer[],
): Promise<Keyring> {
  const slots: KeySlot[] = [];
  for (const s of secrets) slots.push(await makeSlot(s, keys, fields, current.id));
  const file: KeyringFile = { p2psyncKeyring: 1, fields: [...fields], current: current.id, slots };
  const text = JSON.stringify(file, null, 2) + '\n';
  await writeFileAtomic(path, text);
  return { fields: file.fields, dataKeys: keys, cipher: new ValueCipher(keys, current), text };
}
