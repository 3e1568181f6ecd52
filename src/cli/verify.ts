import type { Command } from 'commander';
import type { ChalkInstance } from 'chalk';
import { exitCodeFor } from '../core/errors.js';
import type { SyncEvent } from '../core/events.js';
import { DEFAULT_VERIFY_LIMIT, DEFAULT_VERIFY_TIMEOUT_S, runVerify } from '../verify/run.js';
import { addStoreOptions, storeOptionsFrom, type StoreFlags } from './crud.js';
import { addIceOptions, iceSettingsFrom, type IceFlags } from './ice-flags.js';
import { addTrustOptions, trustOptionsFrom, type TrustFlags } from './trust-options.js';
import { parseSignalUrl, parseTopic } from './join.js';
import { installSignalHandlers } from './lifecycle.js';
import type { CliContext } from './main.js';
import { flag, parseInteger, parseSeconds } from './options.js';
import { Output } from './output.js';
import { renderJoinEvent } from './join-render.js';

interface VerifyFlags extends Partial<StoreFlags>, IceFlags, TrustFlags {
  topic: string;
  signal?: string;
  timeout: number;
  waitPeers?: number;
  limit: number;
  json: boolean;
}

const KIND_TEXT = {
  p2psync: 'p2psync replica',
  'p2psync-old': 'not verifiable: a p2psync replica from before verify',
  rxdb: 'not verifiable: announced no p2psync capability (an RxDB app)',
  observer: 'another observer (p2psync verify), skipped',
} as const;

function render(e: SyncEvent, c: ChalkInstance): string | undefined {
  switch (e.event) {
    case 'verify-peer':
      return `${e.verifiable ? c.green('+') : c.yellow('~')} peer ${e.peerId}${e.peerToken ? ` (token ${e.peerToken})` : ''}: ${KIND_TEXT[e.kind]}`;
    case 'verified': {
      const lines = e.replicas.map(
        (r) => `  ${r.name.padEnd(12)} ${String(r.documents).padStart(9)} documents  ${r.digest.slice(0, 16)}`,
      );
      const head = e.equal
        ? c.green(`equal: ${e.replicas.length} replicas hold the same ${e.replicas[0]?.documents ?? 0} documents`)
        : c.red(
            `different: ${e.differing.length}${e.complete ? '' : '+'} document${e.differing.length === 1 ? '' : 's'} differ`,
          );
      const unverified = e.notVerifiable.map((p) => c.yellow(`  not verifiable: peer ${p.peerId} (${p.kind})`));
      const details = e.differing.map(
        (d) =>
          `  ${d.id}: ` +
          Object.entries(d.replicas)
            .map(([name, leaf]) => `${name} ${leaf === null ? 'missing' : leaf.slice(0, 8)}`)
            .join(', '),
      );
      const more = e.complete
        ? []
        : [c.dim(`  (the first ${e.differing.length} in id order; more may differ, see --limit)`)];
      return [head, ...lines, ...unverified, ...details, ...more].join('\n');
    }
    case 'joined':
    case 'closed':
      return undefined;
    default:
      return renderJoinEvent(e, c);
  }
}

export function registerVerify(program: Command, ctx: CliContext): void {
  const command = program
    .command('verify')
    .description('check that the replicas of a topic hold the same documents (digests; never a full transfer)')
    .addOption(
      flag('--topic <name>', 'topic (room) to check, 6-99 characters').argParser(parseTopic).makeOptionMandatory(),
    )
    .addOption(flag('--signal <url>', 'signaling server (default: ws://127.0.0.1:8787)').argParser(parseSignalUrl));
  addStoreOptions(command, 'compare this JSON / NDJSON file too (read only, never written)');
  addTrustOptions(command);
  addIceOptions(command)
    .addOption(
      flag('--timeout <seconds>', 'exit 3 if the comparison has not finished by then')
        .argParser(parseSeconds)
        .default(DEFAULT_VERIFY_TIMEOUT_S),
    )
    .addOption(
      flag('--wait-peers <n>', 'replicas to wait for (default 1 with --store, else 2)').argParser(
        parseInteger(1, 10_000),
      ),
    )
    .addOption(
      flag('--limit <n>', 'differing ids listed at most')
        .argParser(parseInteger(1, 100_000))
        .default(DEFAULT_VERIFY_LIMIT),
    )
    .addHelpText(
      'after',
      `
Differing ids go to stdout, one per line (with --json: one "verified" event); everything else to stderr.
Exit codes: 0 equal, 1 different, 2 bad options or store file, 3 no peer, timeout, or the comparison did not
finish (a peer left or misbehaved). RxDB peers are listed as not verifiable and do not change the exit code.

Examples:
  $ p2psync verify --topic notes-demo --signal ws://10.0.0.5:8787
  $ p2psync verify --topic notes-demo --store notes.json --json
  $ p2psync verify --topic nightly-sync --wait-peers 3 --timeout 60 --limit 20`,
    )
    .action(async (flags: VerifyFlags) => {
      const out = new Output(ctx, flags.json);
      const stopper = installSignalHandlers();
      const emit = (e: SyncEvent): void => {
        out.event(e, render(e, out.color));
        if (e.event === 'verified' && !out.json) for (const d of e.differing) out.data(d.id);
      };
      try {
        const result = await runVerify({
          topic: flags.topic,
          signal: flags.signal,
          store: flags.store !== undefined ? await storeOptionsFrom(flags as StoreFlags, ctx.env) : undefined,
          ...iceSettingsFrom(flags),
          trust: await trustOptionsFrom(flags, command, emit),
          timeoutMs: flags.timeout * 1000,
          waitPeers: flags.waitPeers,
          limit: flags.limit,
          abort: stopper.signal,
          emit,
        });
        ctx.exitCode = stopper.interruptedExitCode() ?? result.exitCode;
        out.event({ event: 'closed', reason: result.reason, exitCode: ctx.exitCode });
      } catch (err) {
        ctx.exitCode = exitCodeFor(out.error(err));
        out.event({ event: 'closed', reason: 'error', exitCode: ctx.exitCode });
      } finally {
        stopper.dispose();
      }
    });
}
