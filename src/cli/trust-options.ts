import type { Command } from 'commander';
import type { EmitEvent } from '../core/events.js';
import { loadTrustOptions, type TrustOptions } from '../trust/index.js';
import { flag } from './options.js';

/** The trust flags as commander hands them over (shared by every command that joins a topic). */
export interface TrustFlags {
  secretFile?: string;
  secret?: string;
  allowPeers?: string;
}

/** Adds --secret-file, --secret (env P2PSYNC_SECRET) and --allow-peers. */
export function addTrustOptions(cmd: Command): Command {
  return cmd
    .addOption(
      flag(
        '--secret-file <file>',
        'topic secret: only peers with the same secret find and trust each other (see README, "Peers you trust")',
      ),
    )
    .addOption(
      flag('--secret <secret>', 'the topic secret itself; prefer P2PSYNC_SECRET or --secret-file: a flag shows in ps'),
    )
    .addOption(
      flag(
        '--allow-peers <file>',
        'serve only peers whose device id (p2psync id) is listed in this file, one per line, # comments',
      ),
    );
}

/**
 * Reads and checks the trust flags before anything is opened: E_SECRET / E_ALLOWLIST (exit 2). Warns when the
 * secret came as a command-line flag, where any local user can read it in `ps`.
 */
export async function trustOptionsFrom(flags: TrustFlags, command: Command, emit: EmitEvent): Promise<TrustOptions> {
  if (flags.secret !== undefined && command.getOptionValueSource('secret') === 'cli') {
    emit({
      event: 'warning',
      code: 'W_SECRET_ON_COMMAND_LINE',
      message: '--secret shows in ps and shell history; use P2PSYNC_SECRET or --secret-file',
    });
  }
  return loadTrustOptions({ secretFile: flags.secretFile, secret: flags.secret, allowPeersFile: flags.allowPeers });
}
