import type { Command } from 'commander';
import { StoreEncryption } from '../crypt/store-encryption.js';
import type { CrudOptions } from '../store/crud.js';
import { addEncryptionOptions, encryptionFrom, type EncryptionFlags } from './encryption.js';
import { flag, jsonFlag, parseNonEmpty, parseSeconds } from './options.js';

/** The store flags as commander hands them over (shared with `join`). */
export interface StoreFlags extends EncryptionFlags {
  store: string;
  key: string;
  collection?: string;
  format?: 'json' | 'ndjson';
  lockWait: number;
  json: boolean;
}

/**
 * Adds --store, --key, --collection, --format, --json and the encryption flags (each with its P2PSYNC_* env var).
 * `optionalStore`: the description of a --store that may be left out (`verify`).
 */
export function addStoreOptions(cmd: Command, optionalStore?: string): Command {
  return addEncryptionOptions(addFileOptions(cmd, optionalStore));
}

/** Adds --store, --key, --collection, --format and --json (each with its P2PSYNC_* env var). */
export function addFileOptions(cmd: Command, optionalStore?: string): Command {
  const store = optionalStore
    ? flag('--store <file>', optionalStore).argParser(parseNonEmpty)
    : flag('--store <file>', 'the JSON or NDJSON file holding the documents')
        .argParser(parseNonEmpty)
        .makeOptionMandatory();
  return cmd
    .addOption(store)
    .addOption(
      flag('--key <field>', 'primary key field; values must be non-empty strings')
        .argParser(parseNonEmpty)
        .default('id'),
    )
    .addOption(
      flag(
        '--collection <name>',
        'JSON only: the documents are the array under this key of a top-level object',
      ).argParser(parseNonEmpty),
    )
    .addOption(
      flag('--format <format>', 'file format (default: from the extension .json / .ndjson / .jsonl)').choices([
        'json',
        'ndjson',
      ]),
    )
    .addOption(
      flag(
        '--lock-wait <seconds>',
        "how long to wait for another p2psync process's short lock on the store (a put, rm or a peer starting)",
      )
        .argParser(parseSeconds)
        .default(10),
    )
    .addOption(jsonFlag());
}

/** Store flags to the options of the store functions; for an encrypted store the key is checked here. */
export async function storeOptionsFrom(flags: StoreFlags, env: NodeJS.ProcessEnv): Promise<CrudOptions> {
  const options: CrudOptions = {
    path: flags.store,
    primaryKey: flags.key,
    ...(flags.collection !== undefined ? { collection: flags.collection } : {}),
    ...(flags.format !== undefined ? { format: flags.format } : {}),
    lockTimeoutMs: flags.lockWait * 1000,
  };
  const codec = await StoreEncryption.prepare(options, encryptionFrom(flags, env));
  return codec ? { ...options, codec } : options;
}
