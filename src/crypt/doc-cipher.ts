import { P2PSyncError } from '../core/errors.js';
import type { DocState } from '../core/types.js';
import { isEncryptedValue, type ValueCipher } from './value.js';

/** Checks an `--encrypt-fields` list: top-level user fields, not the primary key, no repeats. */
export function validateFields(fields: readonly string[], primaryKey: string): string[] {
  const out: string[] = [];
  if (fields.length === 0) throw new P2PSyncError('E_BAD_OPTION', '--encrypt-fields needs at least one field name');
  for (const f of fields) {
    if (f === '' || f.startsWith('_'))
      throw new P2PSyncError(
        'E_BAD_OPTION',
        `cannot encrypt field "${f}": use top-level field names that do not start with "_"`,
        { field: f },
      );
    if (f === primaryKey)
      throw new P2PSyncError(
        'E_BAD_OPTION',
        `cannot encrypt the primary key "${f}": ids stay readable (peers find documents by id)`,
        { field: f },
      );
    if (out.includes(f))
      throw new P2PSyncError('E_BAD_OPTION', `field "${f}" is named twice in --encrypt-fields`, { field: f });
    out.push(f);
  }
  return out;
}

/**
 * Encrypts and decrypts the chosen fields of whole documents. A value in an encrypted field that is not in the
 * encrypted format is plaintext someone wrote there (an edit of the file): it reads as itself and counts as stale.
 */
export class DocCipher {
  constructor(
    readonly primaryKey: string,
    readonly fields: readonly string[],
    /** Replaced when the keyring changes (another process ran a rekey). */
    public cipher: ValueCipher,
  ) {}

  /** A copy with every encrypted field encrypted, or the document itself when it has none of them. */
  encrypt(doc: DocState): DocState {
    const id = doc[this.primaryKey] as string;
    let out: DocState | undefined;
    for (const f of this.fields) {
      const v = doc[f];
      if (v === undefined) continue;
      out ??= { ...doc };
      out[f] = this.cipher.encrypt(v, id, f);
    }
    return out ?? doc;
  }

  /** The plaintext document (the stored one itself when it has none of the fields), or E_DECRYPT. */
  decrypt(stored: DocState): DocState {
    const id = stored[this.primaryKey] as string;
    let out: DocState | undefined;
    for (const f of this.fields) {
      const v = stored[f];
      if (!isEncryptedValue(v)) continue;
      out ??= { ...stored };
      out[f] = this.cipher.decrypt(v, id, f);
    }
    return out ?? stored;
  }

  /** True when a stored document must be rewritten: plaintext in an encrypted field, or a value under an old data key. */
  isStale(stored: DocState): boolean {
    for (const f of this.fields) {
      const v = stored[f];
      if (v === undefined) continue;
      if (!isEncryptedValue(v) || !this.cipher.isCurrent(v)) return true;
    }
    return false;
  }
}
