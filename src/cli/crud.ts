import type { Command } from 'commander';
import { idsWithKeptVersions } from '../conflicts/index.js';
import { P2PSyncError, exitCodeFor } from '../core/errors.js';
import type { EmitEvent } from '../core/events.js';
import {
  getDocuments,
  listDocuments,
  parseDocumentsInput,
  putDocuments,
  removeDocuments,
  type UserDoc,
} from '../store/crud.js';
import type { CliContext } from './context.js';
import { addStoreOptions, storeOptionsFrom, type StoreFlags } from './store-options.js';
import { renderJoinEvent } from './join-render.js';
import { Output } from './output.js';

const COMMON_HELP = `
Documents are printed as NDJSON on stdout (user fields only); with --json each one is wrapped in a
{"event":"document","document":{...}} line and errors are {"event":"error","code":...} lines.
Exit codes: 0 ok, 1 a named document does not exist (E_NOT_FOUND) or a runtime failure, 2 bad input or options.`;

async function run(ctx: CliContext, json: boolean, body: (out: Output) => Promise<void>): Promise<void> {
  const out = new Output(ctx, json);
  try {
    await body(out);
  } catch (err) {
    ctx.exitCode = exitCodeFor(out.error(err));
  }
}

/** Ids shown in a human summary line; the rest are counted (`--json` lists them all). */
const SHOWN_IDS = 5;

/** `a, b, c` or, for long lists, `a, b, c, d, e and 995 more`. */
export function listIds(ids: readonly string[]): string {
  const shown = ids.slice(0, SHOWN_IDS).join(', ');
  return ids.length > SHOWN_IDS ? `${shown} and ${ids.length - SHOWN_IDS} more` : shown;
}

/**
 * What opening the store for a write says as `join` would say it: a torn sidecar tail it recovered
 * (W_SIDECAR_TORN), a collection it is about to create (W_NEW_COLLECTION).
 */
function storeWarnings(out: Output): EmitEvent {
  return (e) => {
    if (e.event === 'warning') out.event(e, renderJoinEvent(e, out.color));
  };
}

function printDocs(out: Output, docs: UserDoc[]): void {
  for (const document of docs) {
    if (out.json) out.event({ event: 'document', document });
    else out.data(JSON.stringify(document));
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin)
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

export function registerCrud(program: Command, ctx: CliContext): void {
  addStoreOptions(program.command('ls'))
    .description('print every document of a store as NDJSON')
    .addHelpText(
      'after',
      `${COMMON_HELP}

Examples:
  $ p2psync ls --store notes.json
  $ p2psync ls --store db.json --collection posts | jq -r .title
  $ P2PSYNC_STORE=notes.ndjson p2psync ls --json`,
    )
    .action(async (flags: StoreFlags) => {
      await run(ctx, flags.json, async (out) =>
        printDocs(out, await listDocuments(await storeOptionsFrom(flags, ctx.env))),
      );
    });

  addStoreOptions(program.command('get').argument('<id...>', 'ids of the documents to print'))
    .description('print documents by id as NDJSON')
    .addHelpText(
      'after',
      `${COMMON_HELP}

Examples:
  $ p2psync get --store notes.json n1 n2
  $ p2psync get --store users.ndjson --key email ada@example.org`,
    )
    .action(async (ids: string[], flags: StoreFlags) => {
      await run(ctx, flags.json, async (out) => {
        const { found, missing } = await getDocuments(await storeOptionsFrom(flags, ctx.env), ids);
        printDocs(out, found);
        if (missing.length > 0)
          throw new P2PSyncError(
            'E_NOT_FOUND',
            `no document with ${flags.key} ${missing.map((m) => JSON.stringify(m)).join(', ')}`,
            { ids: missing },
          );
      });
    });

  addStoreOptions(
    program
      .command('put')
      .argument('[document...]', 'JSON documents; without any, NDJSON (or one JSON array) is read from stdin'),
  )
    .description('insert or replace documents (upsert); safe while `p2psync join` runs on the same file')
    .addHelpText(
      'after',
      `${COMMON_HELP}

Examples:
  $ p2psync put --store notes.json '{"id":"n1","title":"hello"}'
  $ jq -c '.[]' export.json | p2psync put --store notes.ndjson
  $ p2psync put --store db.json --collection posts --json '{"id":"p1","draft":true}'`,
    )
    .action(async (docs: string[], flags: StoreFlags) => {
      await run(ctx, flags.json, async (out) => {
        if (docs.length === 0 && process.stdin.isTTY) {
          throw new P2PSyncError('E_USAGE', 'give documents as arguments, or pipe NDJSON into stdin');
        }
        const parsed = parseDocumentsInput(
          docs.length > 0 ? { args: docs } : { args: [], stdin: await readStdin() },
          flags.key,
        );
        const r = await putDocuments({ ...(await storeOptionsFrom(flags, ctx.env)), emit: storeWarnings(out) }, parsed);
        const ids = [...r.created, ...r.updated, ...r.unchanged];
        const parts = [
          r.created.length > 0 ? `created ${listIds(r.created)}` : '',
          r.updated.length > 0 ? `updated ${listIds(r.updated)}` : '',
          r.unchanged.length > 0 ? `unchanged ${listIds(r.unchanged)}` : '',
        ].filter(Boolean);
        const conflicts = await idsWithKeptVersions(await storeOptionsFrom(flags, ctx.env), ids);
        out.event(
          { event: 'written', ids, conflicts },
          `put ${ids.length} document${ids.length === 1 ? '' : 's'}${parts.length ? ` (${parts.join('; ')})` : ''}`,
        );
      });
    });

  addStoreOptions(program.command('rm').argument('<id...>', 'ids of the documents to delete'))
    .option('-f, --force', 'ids that do not exist are not an error', false)
    .description('delete documents by id (deletes replicate as tombstones); safe while `p2psync join` runs')
    .addHelpText(
      'after',
      `${COMMON_HELP}

Examples:
  $ p2psync rm --store notes.json n1 n2
  $ p2psync rm --store notes.ndjson --force maybe-gone`,
    )
    .action(async (ids: string[], flags: StoreFlags & { force: boolean }) => {
      await run(ctx, flags.json, async (out) => {
        const r = await removeDocuments({ ...(await storeOptionsFrom(flags, ctx.env)), emit: storeWarnings(out) }, ids);
        const conflicts = await idsWithKeptVersions(await storeOptionsFrom(flags, ctx.env), r.removed);
        out.event(
          { event: 'written', ids: r.removed, conflicts },
          `removed ${r.removed.length} document${r.removed.length === 1 ? '' : 's'}${r.removed.length ? ` (${listIds(r.removed)})` : ''}`,
        );
        if (r.missing.length > 0 && !flags.force) {
          throw new P2PSyncError(
            'E_NOT_FOUND',
            `no document with ${flags.key} ${r.missing.map((m) => JSON.stringify(m)).join(', ')}`,
            { ids: r.missing },
          );
        }
      });
    });
}
