import type { Command } from 'commander';
import type { CrudOptions } from '../store/crud.js';
import { flag, jsonFlag, parseNonEmpty } from './options.js';

/** The store flags as commander hands them over (shared with `join`). */
export interface StoreFlags {
  store: string;
  key: string;
  collection?: string;
  format?: 'json' | 'ndjson';
  json: boolean;
}

/** Adds --store, --key, --collection, --format and --json (each with its P2PSYNC_* env var). */
export function addStoreOptions(cmd: Command): Command {
  return cmd
    .addOption(flag('--store <file>', 'the JSON or NDJSON file holding the documents').argParser(parseNonEmpty).makeOptionMandatory())
    .addOption(flag('--key <field>', 'primary key field; values must be non-empty strings').argParser(parseNonEmpty).default('id'))
    .addOption(flag('--collection <name>', 'JSON only: the documents are the array under this key of a top-level object').argParser(parseNonEmpty))
    .addOption(flag('--format <format>', 'file format (default: from the extension .json / .ndjson / .jsonl)').choices(['json', 'ndjson']))
    .addOption(jsonFlag());
}

/** Store flags to the options of the store functions. */
export function storeOptionsFrom(flags: StoreFlags): CrudOptions {
  return {
    path: flags.store,
    primaryKey: flags.key,
    ...(flags.collection !== undefined ? { collection: flags.collection } : {}),
    ...(flags.format !== undefined ? { format: flags.format } : {}),
  };
}
