import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { ExitCode, P2PSyncError } from '../core/errors.js';
import { Output, type OutputStreams } from './output.js';
import { registerJoin } from './join.js';
import { registerSignal } from './signal.js';
import { registerCrud } from './crud.js';
import { registerId } from './id.js';
import { registerRekey } from './rekey.js';
import { registerConflicts } from './conflicts.js';
import { registerDoctor } from './doctor.js';
import { registerVerify } from './verify.js';

export interface CliContext extends OutputStreams {
  /** Set by a command's action: the process exit code. */
  exitCode: number;
}

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export function buildProgram(ctx: CliContext): Command {
  const program = new Command('p2psync')
    .description('Keep JSON / NDJSON document collections in sync peer to peer over WebRTC (RxDB-compatible).')
    .version(packageVersion(), '-V, --version')
    .showHelpAfterError()
    .configureOutput({
      writeOut: (s) => ctx.stdout.write(s),
      writeErr: (s) => ctx.stderr.write(s),
    })
    .exitOverride()
    .addHelpText(
      'after',
      `
Exit codes:
  0    ok
  1    runtime failure
  2    usage or data error (bad flag, unparsable file)
  3    timeout or unreachable service
  130  interrupted (SIGINT)

Examples:
  $ p2psync signal --port 8787
  $ p2psync join --topic notes --store notes.json
  $ p2psync join --topic notes --store notes.ndjson --signal ws://10.0.0.5:8787 --once --json
  $ p2psync help join`,
    );
  registerJoin(program, ctx);
  registerSignal(program, ctx);
  registerCrud(program, ctx);
  registerId(program, ctx);
  registerRekey(program, ctx);
  registerConflicts(program, ctx);
  registerDoctor(program, ctx);
  registerVerify(program, ctx);
  return program;
}

/** Runs the CLI with the given arguments (without `node` and the script) and returns the exit code. */
export async function main(
  argv: string[],
  io: OutputStreams = { stdout: process.stdout, stderr: process.stderr, env: process.env },
): Promise<number> {
  const ctx: CliContext = { ...io, exitCode: ExitCode.ok };
  const program = buildProgram(ctx);
  ignoreFalseBooleanEnv(program);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return ctx.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version "errors" are successes; every other commander error is a usage error (commander uses 1).
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help')
        return ExitCode.ok;
      // commander already printed the message and help on stderr; scripts reading --json events get one too.
      if (wantsJson(argv, io.env)) {
        new Output(io, true).error(new P2PSyncError('E_USAGE', err.message.replace(/^error: /, '')));
      }
      return ExitCode.usage;
    }
    throw err;
  }
}

const FALSE_VALUES = new Set(['', '0', 'false', 'no', 'off']);

/**
 * commander turns a boolean flag on whenever its env var is set, whatever the value; `P2PSYNC_ONCE=0` meaning
 * "once" would surprise anyone. Such variables with a false value are treated as unset.
 */
function ignoreFalseBooleanEnv(program: Command): void {
  for (const cmd of [program, ...program.commands]) {
    for (const option of cmd.options) {
      const name = option.envVar;
      if (!name || option.required || option.optional) continue;
      const value = process.env[name];
      if (value !== undefined && FALSE_VALUES.has(value.trim().toLowerCase())) delete process.env[name];
    }
  }
}

/** `--json` on the command line or in the environment, as far as it can be told without a successful parse. */
function wantsJson(argv: string[], env: NodeJS.ProcessEnv): boolean {
  const fromEnv = env.P2PSYNC_JSON;
  return argv.includes('--json') || (fromEnv !== undefined && !FALSE_VALUES.has(fromEnv.trim().toLowerCase()));
}
