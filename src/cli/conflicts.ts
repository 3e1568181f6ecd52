import { InvalidArgumentError, type Command } from 'commander';
import {
  idsWithKeptVersions,
  listConflicts,
  resolveConflictRecord,
  showConflict,
  type ResolveChoice,
} from '../conflicts/index.js';
import { exitCodeFor, P2PSyncError } from '../core/errors.js';
import { addStoreOptions, storeOptionsFrom, type StoreFlags } from './crud.js';
import type { CliContext } from './main.js';
import { Output } from './output.js';

const HELP = `
Kept versions are the losing sides of conflicts this peer resolved (see --keep-conflicts on join). They live in
<store>.p2psync.conflicts beside the sidecar, never in your file. All three commands are safe while
\`p2psync join\` runs on the same file.
Exit codes: 0 ok, 1 runtime failure, 2 bad options, an id without kept versions or a version that does not exist.`;

function positive(value: string): number {
  if (!/^[1-9]\d{0,5}$/.test(value.trim()))
    throw new InvalidArgumentError(`expected a version number from 1, got "${value}"`);
  return Number(value);
}

export function registerConflicts(program: Command, ctx: CliContext): void {
  const conflicts = program
    .command('conflicts')
    .description('list, show and resolve the losing versions kept by conflict resolution');
  const run = async (json: boolean, body: (out: Output) => Promise<void>): Promise<void> => {
    const out = new Output(ctx, json);
    try {
      await body(out);
    } catch (err) {
      ctx.exitCode = exitCodeFor(out.error(err));
    }
  };

  addStoreOptions(conflicts.command('ls'))
    .description('list the documents with kept versions (id, count, newest time)')
    .addHelpText(
      'after',
      `${HELP}

Examples:
  $ p2psync conflicts ls --store notes.json
  $ p2psync conflicts ls --store notes.ndjson --json | jq -r .id`,
    )
    .action(async (flags: StoreFlags) => {
      await run(flags.json, async (out) => {
        for (const c of await listConflicts(await storeOptionsFrom(flags, ctx.env))) {
          if (out.json) out.event({ event: 'conflicted', ...c });
          else out.data(`${c.id}\t${c.versions} version${c.versions === 1 ? '' : 's'}\t${c.latest}`);
        }
      });
    });

  addStoreOptions(conflicts.command('show').argument('<id>', 'the document'))
    .description('print the current document and its kept versions, numbered from 1 (oldest first)')
    .addHelpText(
      'after',
      `${HELP}

Examples:
  $ p2psync conflicts show --store notes.json n1
  $ p2psync conflicts show --store notes.json n1 --json | jq '.versions[0].document'`,
    )
    .action(async (id: string, flags: StoreFlags) => {
      await run(flags.json, async (out) => {
        const shown = await showConflict(await storeOptionsFrom(flags, ctx.env), id);
        if (out.json) {
          out.event({ event: 'kept-versions', ...shown });
          return;
        }
        out.data(`current: ${shown.current === null ? '(deleted or absent)' : JSON.stringify(shown.current)}`);
        for (const v of shown.versions) {
          const what = v.deleted ? '(a delete) ' : '';
          const fields = v.fields ? ` fields ${v.fields.join(', ')}` : '';
          out.data(
            `${v.n}: ${v.time} ${v.strategy} ${v.side === 'local' ? 'this peer' : 'peer ' + v.peer}${fields}: ${what}${JSON.stringify(v.document)}`,
          );
        }
      });
    });

  addStoreOptions(conflicts.command('resolve').argument('<id>', 'the document'))
    .option(
      '--use <n>',
      'write kept version N as a new local write (it replicates like any write), then clear the record',
      positive,
    )
    .option('--keep-current', 'keep the current document; only clear the record', false)
    .description(
      "settle a document's kept versions: write one of them (--use N) or keep the current state (--keep-current)",
    )
    .addHelpText(
      'after',
      `${HELP}

Examples:
  $ p2psync conflicts resolve --store notes.json n1 --use 2
  $ p2psync conflicts resolve --store notes.json n1 --keep-current`,
    )
    .action(async (id: string, flags: StoreFlags & { use?: number; keepCurrent: boolean }) => {
      await run(flags.json, async (out) => {
        if ((flags.use === undefined) === !flags.keepCurrent)
          throw new P2PSyncError('E_USAGE', 'give exactly one of --use N and --keep-current');
        const choice: ResolveChoice = flags.use !== undefined ? { use: flags.use } : { keepCurrent: true };
        const r = await resolveConflictRecord(await storeOptionsFrom(flags, ctx.env), id, choice);
        const left = await idsWithKeptVersions(await storeOptionsFrom(flags, ctx.env), [id]);
        if (r.used !== undefined)
          out.event(
            { event: 'written', ids: [id], conflicts: left },
            `${r.wrote === 'rm' ? 'deleted' : 'wrote'} ${id} as kept version ${r.used}`,
          );
        out.event(
          { event: 'conflict-cleared', id, used: r.used ?? null, cleared: r.cleared },
          `cleared ${r.cleared} kept version${r.cleared === 1 ? '' : 's'} of ${id}`,
        );
      });
    });
}
