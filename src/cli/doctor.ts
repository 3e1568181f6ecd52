import type { Command } from 'commander';
import { ExitCode, exitCodeFor } from '../core/errors.js';
import { runDoctor, type DoctorCheck } from '../doctor/index.js';
import { iceServerFromUrl, validateIceConfig } from '../session.js';
import { addIceOptions, iceSettingsFrom, type IceFlags } from './ice-flags.js';
import { parseSignalUrl } from './join.js';
import type { CliContext } from './context.js';
import { flag, jsonFlag, parseSeconds } from './options.js';
import { Output } from './output.js';

interface DoctorFlags extends IceFlags {
  signal?: string;
  timeout: number;
  json: boolean;
}

export function registerDoctor(program: Command, ctx: CliContext): void {
  const command = program
    .command('doctor')
    .description(
      'check the signaling server, STUN and TURN servers and local addresses a join would use; exit 0 when all pass',
    )
    .addOption(
      flag('--signal <url>', 'signaling server to check (connect, token, join/leave round trip, latency)').argParser(
        parseSignalUrl,
      ),
    )
    .addOption(flag('--timeout <seconds>', 'limit for each check').argParser(parseSeconds).default(5))
    .addOption(jsonFlag());
  addIceOptions(command, 'STUN/TURN server to check')
    .addHelpText(
      'after',
      `
Two STUN servers (or two ports of one) also tell whether this host is behind a symmetric NAT (TURN needed).

Examples:
  $ p2psync doctor --signal wss://sig.example.com:8787/?token=... --ice-server stun:stun.example.com:3478
  $ p2psync doctor --ice-server stun:stun.example.com:3478 --ice-server stun:stun.example.com:3479 --ice-server-file turn.txt --json`,
    )
    .action(async (flags: DoctorFlags) => {
      const out = new Output(ctx, flags.json);
      try {
        const ice = iceSettingsFrom(flags);
        validateIceConfig({
          iceServers: ice.iceServers.map(iceServerFromUrl),
          ...(ice.iceBind ? { bindAddress: ice.iceBind } : {}),
          ...(ice.iceTransport ? { transportPolicy: ice.iceTransport } : {}),
        });
        const checks = await runDoctor({
          signal: flags.signal,
          iceServers: ice.iceServers,
          bindAddress: ice.iceBind,
          timeoutMs: flags.timeout * 1000,
          emit: (c) => out.event({ event: 'check', ...c }, render(c, out)),
        });
        const failed = checks.filter((c) => !c.ok).length;
        ctx.exitCode = failed === 0 ? ExitCode.ok : ExitCode.failure;
        out.info(
          failed === 0
            ? out.color.green(`all ${checks.length} checks passed`)
            : out.color.red(`${failed} of ${checks.length} checks failed`),
        );
        out.event({ event: 'closed', reason: failed === 0 ? 'passed' : 'failed', exitCode: ctx.exitCode });
      } catch (err) {
        ctx.exitCode = exitCodeFor(out.error(err));
      }
    });
}

function render(c: DoctorCheck, out: Output): string {
  const mark = c.ok ? out.color.green('✓') : out.color.red('✗');
  return `${mark} ${c.check.padEnd(6)} ${c.target}: ${c.reason}`;
}
