import { readFileSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { P2PSyncError } from '../core/errors.js';
import { splitIceServerList, type IceTransportPolicy } from '../session.js';
import { flag, parseLocalAddress } from './options.js';

/** The ICE flags as commander hands them over. */
export interface IceFlags {
  iceServer?: string[];
  iceServerFile?: string;
  iceBind?: string;
  iceTransport?: IceTransportPolicy;
}

/** What the core takes: every server URL (flags, env and file, in that order), bind address and policy. */
export interface IceSettings {
  iceServers: string[];
  iceBind?: string | undefined;
  iceTransport?: IceTransportPolicy | undefined;
}

/** A repeatable flag whose values (and env var) may each hold a comma- or whitespace-separated list. */
function collectList(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), ...splitIceServerList(value)];
}

function parsePolicy(value: string): IceTransportPolicy {
  if (value !== 'all' && value !== 'relay') throw new InvalidArgumentError(`expected all or relay, got "${value}"`);
  return value;
}

/** Adds `--ice-server`, `--ice-server-file`, `--ice-bind` and `--ice-transport` (join, doctor and verify share them). */
export function addIceOptions(command: Command, what = 'STUN/TURN server'): Command {
  return command
    .addOption(
      flag(
        '--ice-server <url>',
        `${what}, repeatable; P2PSYNC_ICE_SERVER takes a comma/space separated list (default: none, host candidates only)`,
      ).argParser(collectList),
    )
    .addOption(
      flag(
        '--ice-server-file <file>',
        'read ICE server URLs from a file, one per line (# comments), so TURN credentials stay out of ps',
      ),
    )
    .addOption(
      flag('--ice-bind <addr>', 'bind ICE to this local address (e.g. 127.0.0.1 keeps WebRTC on loopback)').argParser(
        parseLocalAddress,
      ),
    )
    .addOption(
      flag('--ice-transport <policy>', 'all (direct or relayed) or relay (TURN only; needs a TURN server)').argParser(
        parsePolicy,
      ),
    );
}

/** Reads `--ice-server-file` (E_BAD_OPTION if unreadable) and merges it with the other ICE flags. */
export function iceSettingsFrom(flags: IceFlags): IceSettings {
  const servers = [...(flags.iceServer ?? [])];
  if (flags.iceServerFile !== undefined) servers.push(...readIceServerFile(flags.iceServerFile));
  return { iceServers: servers, iceBind: flags.iceBind, iceTransport: flags.iceTransport };
}

export function readIceServerFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new P2PSyncError('E_BAD_OPTION', `cannot read the ICE server file ${path}: ${reason}`, { file: path });
  }
  const urls: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    const trimmed = line.trim();
    if (trimmed !== '' && !trimmed.startsWith('#')) urls.push(trimmed);
  }
  return urls;
}
