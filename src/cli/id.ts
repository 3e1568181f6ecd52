import type { Command } from 'commander';
import { exitCodeFor } from '../core/errors.js';
import { openDeviceIdentity } from '../session.js';
import type { CliContext } from './main.js';
import { flag, jsonFlag } from './options.js';
import { Output } from './output.js';

interface IdFlags {
  store: string;
  collection?: string;
  json: boolean;
}

export function registerId(program: Command, ctx: CliContext): void {
  program
    .command('id')
    .description(
      "print this store's device id (the SHA-256 fingerprint of its DTLS certificate), creating the identity if missing",
    )
    .addOption(flag('--store <file>', 'the JSON or NDJSON file whose identity to print').makeOptionMandatory())
    .addOption(flag('--collection <name>', 'JSON only: the collection (each has its own sidecar and identity)'))
    .addOption(jsonFlag())
    .addHelpText(
      'after',
      `
The identity lives beside the sidecar, in <store>.p2psync.identity.pem (certificate and private key, mode 0600).
Other peers list the id in their --allow-peers file. Exit codes: 0 ok, 2 damaged identity file.

Examples:
  $ p2psync id --store notes.ndjson
  $ p2psync id --store notes.ndjson >> ../other-server/allowed-peers.txt`,
    )
    .action(async (flags: IdFlags) => {
      const out = new Output(ctx, flags.json);
      try {
        const id = await openDeviceIdentity(flags.store, flags.collection);
        if (out.json) out.event({ event: 'identity', deviceId: id.deviceId, file: id.pemFile, created: id.created });
        else out.data(id.deviceId);
      } catch (err) {
        ctx.exitCode = exitCodeFor(out.error(err));
      }
    });
}
