import { InvalidArgumentError, type Command } from 'commander';
import type { EncryptionOptions } from '../crypt/store-encryption.js';
import { flag } from './options.js';

/** The key itself in the environment (a key file is better: environments leak into child processes and logs). */
export const KEY_ENV = 'P2PSYNC_ENCRYPTION_KEY';

/** The encryption flags as commander hands them over. */
export interface EncryptionFlags {
  encryptFields?: string[];
  keyFile?: string;
}

function parseFields(value: string): string[] {
  const fields = value.split(',').map((f) => f.trim());
  if (fields.some((f) => f === ''))
    throw new InvalidArgumentError(`expected field names separated by commas, got "${value}"`);
  return fields;
}

/** Adds --encrypt-fields and --key-file (P2PSYNC_ENCRYPT_FIELDS, P2PSYNC_KEY_FILE). */
export function addEncryptionOptions(cmd: Command): Command {
  return cmd
    .addOption(
      flag(
        '--encrypt-fields <a,b>',
        'encrypt these top-level fields at rest; named once, when the store is created (later: the key alone)',
      ).argParser(parseFields),
    )
    .addOption(
      flag(
        '--key-file <file>',
        `the encryption key (its bytes; one final line break ignored); or the key itself in ${KEY_ENV}`,
      ),
    );
}

/** Flags + environment to encryption options; `--key-file` (or P2PSYNC_KEY_FILE) wins over the key in the environment. */
export function encryptionFrom(flags: EncryptionFlags, env: NodeJS.ProcessEnv): EncryptionOptions {
  const text = env[KEY_ENV];
  return {
    fields: flags.encryptFields,
    key:
      flags.keyFile !== undefined ? { file: flags.keyFile } : text !== undefined ? { text, name: KEY_ENV } : undefined,
  };
}
