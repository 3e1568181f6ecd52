import type { KeptVersion } from '../core/conflicts.js';
import { P2PSyncError, toP2PSyncError } from '../core/errors.js';
import { randomToken } from '../core/random.js';
import type { DocState } from '../core/types.js';
import { discardedBy, winnerOf, type ConflictInput } from './conflict.js';
import type { LinkContext } from './context.js';

/** A conflict the strategy settled: what to write, who won, and the versions it discarded. */
export interface Resolution {
  id: string;
  input: ConflictInput;
  resolved: DocState;
  winner: 'local' | 'remote' | 'merged';
  kept: KeptVersion[];
}

/**
 * Asks the link's strategy to settle a conflict (the local state is `input.newDocumentState`, the peer's
 * `input.realMasterState`). A strategy that throws, rejects or returns something that is not a document is reported as
 * an `error` event naming the document, and undefined is returned: the caller leaves the document as it was and
 * goes on with the others.
 */
export async function resolveConflict(
  ctx: LinkContext,
  id: string,
  input: ConflictInput,
): Promise<Resolution | undefined> {
  const { conflict } = ctx;
  let resolved: DocState;
  let discarded;
  try {
    const r = conflict.resolve(input);
    resolved = r instanceof Promise ? await r : r;
    // Right after `resolve`, with no turn in between: a strategy may remember what it just resolved.
    discarded = discardedBy(conflict, input, resolved);
  } catch (err) {
    const e = toP2PSyncError(err, 'E_CONFLICT_HANDLER');
    ctx.fail(
      new P2PSyncError(e.code, e.message, { ...e.details, id }, { cause: err }),
      `resolving the conflict on "${id}"`,
    );
    return undefined;
  }
  const winner = winnerOf(resolved, input.newDocumentState, input.realMasterState, conflict.isEqual);
  const time = new Date().toISOString();
  const peer = ctx.peerToken ?? '';
  const kept: KeptVersion[] = ctx.keeper
    ? discarded.map((d) => ({
        vid: randomToken(12),
        id,
        time,
        peer,
        strategy: conflict.name,
        side: d.side,
        ...(d.fields ? { fields: d.fields } : {}),
        document: d.side === 'local' ? input.newDocumentState : input.realMasterState,
      }))
    : [];
  return { id, input, resolved, winner, kept };
}

/**
 * Keeps the versions these resolutions discard (durably, before any resolution is written over them: a failure
 * throws and nothing is written), then reports each as a `conflict` event saying what was kept.
 */
export async function keepAndReport(ctx: LinkContext, resolutions: readonly Resolution[]): Promise<void> {
  const kept = resolutions.flatMap((r) => r.kept);
  if (kept.length > 0 && ctx.keeper) await ctx.track(ctx.keeper.keep(kept));
  for (const r of resolutions) {
    ctx.stats.conflicts++;
    ctx.emit({
      event: 'conflict',
      peerId: ctx.link.remotePeerId,
      id: r.id,
      strategy: ctx.conflict.name,
      local: r.input.newDocumentState,
      remote: r.input.realMasterState,
      winner: r.winner,
      resolved: r.resolved,
      kept: r.kept.map((k) => ({ side: k.side, vid: k.vid, ...(k.fields ? { fields: k.fields } : {}) })),
    });
  }
}
