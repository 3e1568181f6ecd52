import type { Command } from 'commander';
import { exitCodeFor } from '../core/errors.js';
import { rekey } from '../crypt/rekey.js';
import { addFileOptions } from './crud.js';
import { encryptionFrom, KEY_ENV } from './encryption.js';
import type { CliContext } from './main.js';
import { flag } from './options.js';
import { Output } from './output.js';

interface RekeyFlags {
  store: string;
  key: string;
  collection?: string;
  format?: 'json' | 'ndjson';
  json: boolean;
  keyFile?: string;
  newKeyFile: string;
}

export function registerRekey(program: Command, ctx: CliContext): void {
  addFileOptions(program.command('rekey'))
    .description('re-encrypt an encrypted store under a new key (stop `p2psync join` on it first)')
    .addOption(flag('--key-file <file>', `the current key (or the key itself in ${KEY_ENV})`))
    .addOption(flag('--new-key-file <file>', 'the new key').makeOptionMandatory())
    .addHelpText(
      'after',
      `
Every encrypted value, in the file and in the sidecar, is re-encrypted under a new data key that only the new key
opens. A crash at any moment leaves a store that opens with the old key or the new one (run rekey again to finish).
Refused (E_LOCKED, exit 1) while another process owns the store. Exit 2 for a missing, empty or wrong key.

Examples:
  $ p2psync rekey --store notes.json --key-file old.key --new-key-file new.key
  $ P2PSYNC_ENCRYPTION_KEY=... p2psync rekey --store notes.ndjson --new-key-file new.key --json`,
    )
    .action(async (flags: RekeyFlags) => {
      const out = new Output(ctx, flags.json);
      try {
        const r = await rekey({
          path: flags.store,
          primaryKey: flags.key,
          ...(flags.collection !== undefined ? { collection: flags.collection } : {}),
          ...(flags.format !== undefined ? { format: flags.format } : {}),
          oldKey: encryptionFrom(flags, ctx.env).key,
          newKey: { file: flags.newKeyFile },
        });
        out.event(
          { event: 'rekeyed', store: flags.store, ...r },
          `rekeyed ${flags.store}: ${r.documents} documents and ${r.peerStates} replication states re-encrypted`,
        );
      } catch (err) {
        ctx.exitCode = exitCodeFor(out.error(err));
      }
    });
}
