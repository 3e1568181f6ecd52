import { InvalidArgumentError, type Command } from 'commander';
import { exitCodeFor, ExitCode } from '../core/errors.js';
import type { SyncEvent } from '../core/events.js';
import { conflictStrategies, runJoin, type JoinOptions } from '../session.js';
import { addStoreOptions } from './crud.js';
import { encryptionFrom, type EncryptionFlags } from './encryption.js';
import { installSignalHandlers } from './lifecycle.js';
import type { CliContext } from './main.js';
import { flag, parseInteger, parseNonEmpty, parsePort, parseSeconds } from './options.js';
import { addIceOptions, iceSettingsFrom, type IceFlags, type IceSettings } from './ice-flags.js';
import { Output } from './output.js';
import { renderJoinEvent, StatusLine } from './join-render.js';
import { addTrustOptions, trustOptionsFrom, type TrustFlags } from './trust-options.js';

interface JoinFlags extends TrustFlags, EncryptionFlags, IceFlags {
  topic: string[];
  store: string;
  signal?: string[];
  key: string;
  collection?: string;
  format?: 'json' | 'ndjson';
  lockWait: number;
  conflict: string;
  lwwField: string;
  conflictHandler?: string;
  keepConflicts: number;
  pullOnly: boolean;
  pushOnly: boolean;
  batchSize?: number;
  maxPeers?: number;
  once: boolean;
  waitPeers?: number;
  timeout?: number;
  connectTimeout: number;
  embeddedSignalPort?: number;
  storageToken?: string;
  shutdownTimeout: number;
  json: boolean;
}

/** RxDB's signaling server disconnects peers whose room name is not 6-99 characters (docs/PROTOCOL.md §1.3). */
export function parseTopic(value: string): string {
  if (value.length < 6 || value.length > 99) {
    throw new InvalidArgumentError(`a topic must be 6 to 99 characters long (RxDB's rule), got ${value.length}`);
  }
  return value;
}

function collectTopic(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), parseTopic(value)];
}

export function parseSignalUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError(`"${value}" is not a URL; expected ws://HOST:PORT or wss://HOST:PORT`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new InvalidArgumentError(`expected a ws:// or wss:// URL, got "${url.protocol}"`);
  }
  return value;
}

/** `--signal` is repeatable (failover between nodes); one value (e.g. the env var) may list several, space-separated. */
function collectSignal(value: string, previous: string[] | undefined): string[] {
  const urls = value.split(/\s+/).filter((u) => u !== '');
  if (urls.length === 0) throw new InvalidArgumentError('expected a ws:// or wss:// URL');
  return [...(previous ?? []), ...urls.map(parseSignalUrl)];
}

function parseStorageToken(value: string): string {
  if (!/^[\x21-\x7e]{1,200}$/.test(value)) throw new InvalidArgumentError('expected 1-200 printable ASCII characters');
  return value;
}

export function registerJoin(program: Command, ctx: CliContext): void {
  const command = program
    .command('join')
    .description('join a topic and replicate a JSON / NDJSON file live with every peer in it')
    .addOption(
      flag('--topic <name>', 'topic (room) to join, 6-99 characters; repeat to bridge several topics')
        .argParser(collectTopic)
        .makeOptionMandatory(),
    );
  addStoreOptions(command)
    .addOption(
      flag(
        '--signal <url>',
        'signaling server; repeat (or space-separate) to fail over between nodes (default: ws://127.0.0.1:8787, hosted in-process if nothing answers)',
      ).argParser(collectSignal),
    )
    .addOption(
      flag(
        '--conflict <strategy>',
        'conflict strategy: master (the master side wins, like RxDB), lww (last write wins) or merge (three-way, per field)',
      )
        .choices(conflictStrategies.names())
        .default('master'),
    )
    .addOption(
      flag('--lww-field <field>', 'with --conflict lww: the timestamp field compared')
        .argParser(parseNonEmpty)
        .default('updatedAt'),
    )
    .addOption(
      flag(
        '--conflict-handler <file>',
        'an ES module exporting an RxDB conflict handler ({isEqual, resolve}); overrides --conflict',
      ).argParser(parseNonEmpty),
    )
    .addOption(
      flag(
        '--keep-conflicts <n>',
        'losing versions kept per document beside the sidecar (see p2psync conflicts); 0 keeps none',
      )
        .argParser(parseInteger(0, 1000))
        .default(10),
    )
    .addOption(flag('--pull-only', 'only receive changes from peers').default(false).conflicts('pushOnly'))
    .addOption(flag('--push-only', 'only send changes to peers').default(false))
    .addOption(
      flag(
        '--batch-size <n>',
        'largest pull page or push batch; smaller batches are used to fit one frame (default 1000; RxDB uses 20)',
      ).argParser(parseInteger(1, 100_000)),
    )
    .addOption(
      flag(
        '--max-peers <n>',
        'keep at most N links per topic (ring + chords by id hash; changes reach the rest through neighbours); default: every peer',
      ).argParser(parseInteger(2, 10_000)),
    );
  addIceOptions(command)
    .addOption(
      flag('--once', 'exit 0 once in sync with every connected peer (see --wait-peers, --timeout)').default(false),
    )
    .addOption(
      flag('--wait-peers <n>', 'with --once: peers that must have been seen first').argParser(parseInteger(0, 10_000)),
    )
    .addOption(flag('--timeout <seconds>', 'with --once: exit 3 if not in sync by then').argParser(parseSeconds))
    .addOption(
      flag('--connect-timeout <seconds>', 'with --once: exit 3 (E_UNREACHABLE) if no signaling server answered by then')
        .argParser(parseSeconds)
        .default(30),
    )
    // Hidden: lets tests run the embedded default (no --signal) on an ephemeral port instead of the shared 8787.
    .addOption(
      flag('--embedded-signal-port <port>', 'port of the embedded signaling default').argParser(parsePort).hideHelp(),
    )
    .addOption(
      flag(
        '--storage-token <token>',
        'advanced: identity for a new sidecar (decides replication roles); ignored if the sidecar exists',
      ).argParser(parseStorageToken),
    )
    .addOption(
      flag('--shutdown-timeout <seconds>', 'time allowed for a graceful shutdown').argParser(parseSeconds).default(10),
    );
  addTrustOptions(command)
    .addHelpText(
      'after',
      `
Examples:
  $ p2psync join --topic notes-demo --store notes.json
  $ p2psync join --topic notes-demo --store db.json --collection posts --signal wss://sig.example.com:8787/?token=...
  $ p2psync join --topic nightly-sync --store data.ndjson --once --wait-peers 2 --timeout 60 --json
  $ p2psync join --topic nightly-sync --store data.ndjson --signal ws://sig.example.com:8787 --ice-server stun:stun.example.com:3478 --ice-server-file /etc/p2psync/turn.txt
  $ P2PSYNC_TOPIC=notes-demo P2PSYNC_STORE=notes.ndjson p2psync join --conflict lww --lww-field updatedAt
  $ p2psync join --topic db-sync --store db.ndjson --secret-file /etc/p2psync/secret --allow-peers /etc/p2psync/peers`,
    )
    .action(async (flags: JoinFlags, command: Command) => {
      if (!flags.once) {
        const onceOnly = [
          ['--wait-peers', flags.waitPeers !== undefined],
          ['--timeout', flags.timeout !== undefined],
          ['--connect-timeout', command.getOptionValueSource('connectTimeout') !== 'default'],
        ] as const;
        const given = onceOnly.find(([, set]) => set);
        if (given) command.error(`error: ${given[0]} only applies with --once`, { exitCode: ExitCode.usage });
      }
      const out = new Output(ctx, flags.json);
      const stopper = installSignalHandlers();
      const status = new StatusLine(out);
      const emit = (e: SyncEvent): void => {
        out.event(e, renderJoinEvent(e, out.color));
        status.update(e);
      };
      let ice: IceSettings;
      try {
        ice = iceSettingsFrom(flags);
      } catch (err) {
        ctx.exitCode = exitCodeFor(out.error(err));
        emit({ event: 'closed', reason: 'error', exitCode: ctx.exitCode });
        stopper.dispose();
        return;
      }
      const options: JoinOptions = {
        topics: [...new Set(flags.topic)],
        storePath: flags.store,
        format: flags.format,
        primaryKey: flags.key,
        collection: flags.collection,
        encryption: encryptionFrom(flags, ctx.env),
        signal: flags.signal?.[0],
        signalFallbacks: flags.signal?.slice(1),
        embeddedSignalPort: flags.embeddedSignalPort,
        conflict: flags.conflict,
        lwwField: flags.lwwField,
        conflictHandler: flags.conflictHandler,
        keepConflicts: flags.keepConflicts,
        direction: flags.pullOnly ? 'pull' : flags.pushOnly ? 'push' : 'both',
        batchSize: flags.batchSize,
        ...ice,
        maxPeers: flags.maxPeers,
        once: flags.once
          ? {
              waitPeers: flags.waitPeers ?? 1,
              timeoutMs: flags.timeout !== undefined ? flags.timeout * 1000 : undefined,
              connectTimeoutMs: flags.connectTimeout * 1000,
            }
          : undefined,
        storageToken: flags.storageToken,
        lockTimeoutMs: flags.lockWait * 1000,
        shutdownTimeoutMs: flags.shutdownTimeout * 1000,
        abort: stopper.signal,
        emit,
      };
      try {
        options.trust = await trustOptionsFrom(flags, command, emit);
        const result = await runJoin(options);
        // The one place a join's outcome becomes an exit code (with exitCodeFor's table of error codes).
        ctx.exitCode =
          stopper.interruptedExitCode() ?? (result.error ? exitCodeFor(out.error(result.error)) : ExitCode.ok);
        emit({ event: 'closed', reason: result.reason, exitCode: ctx.exitCode });
      } catch (err) {
        ctx.exitCode = exitCodeFor(out.error(err));
        emit({ event: 'closed', reason: 'error', exitCode: ctx.exitCode });
      } finally {
        status.stop();
        stopper.dispose();
      }
    });
}
