import type { Command } from 'commander';
import type { CliContext } from './main.js';

// Placeholder: replaced by the signaling server work (issue 2).
export function registerSignal(program: Command, _ctx: CliContext): void {
  program.command('signal').description('host a signaling server');
}
