import type { Command, Option } from 'commander';
import { collect, flag } from './options.js';

/** The ICE flags every command that opens WebRTC links takes (`join`, `verify`), declared once. */
export const iceServerOption = (): Option => flag('--ice-server <url>', 'STUN/TURN server, repeatable (default: none, host candidates only)').argParser(collect);
export const iceBindOption = (): Option => flag('--ice-bind <addr>', 'bind ICE to this local address (e.g. 127.0.0.1 keeps WebRTC on loopback)');

export interface IceFlags {
  iceServer?: string[];
  iceBind?: string;
}

/** Adds every ICE flag to a command. */
export function addIceOptions(cmd: Command): Command {
  return cmd.addOption(iceServerOption()).addOption(iceBindOption());
}
