import { P2PSyncError } from '../core/errors.js';
import type { CasWrite, ChangeBatch, Checkpoint, DocState, WriteOrigin } from '../core/types.js';
import type { LinkContext } from './context.js';
import type { ForkState } from './fork-state.js';
import { keepAndReport, resolveConflict, type Resolution } from './resolution.js';
import { BatchSizer } from './sizing.js';
import { checkDocs, type WriteRow } from './validate.js';

/** Own-feed documents read per step while looking for changes to push (most are skipped as already known). */
const MIN_SCAN_PAGE = 2000;

interface InFlight {
  done: Promise<void>;
  checkpoint?: Checkpoint;
}

/**
 * The fork's upstream (docs/PROTOCOL.md §4.3). A cycle walks the store's own feed from the up-checkpoint and pushes every
 * document whose state differs from its assumed master state, as `masterWrite` batches of at most `batchSize` rows
 * (sized to fit one frame, see `BatchSizer`) with up to `pushWindow` batches in flight. The up-checkpoint advances
 * only past batches that were answered, in feed order, and is saved with the assumed states as it advances. Any local commit (and any commit from another peer) marks the upstream dirty and starts another cycle;
 * commits that this link's downstream made need no push and, when the upstream is at the head of the feed, simply
 * move the up-checkpoint (`selfCommit`). A document is never in two pushes at once: one that changed again waits
 * for the answer to its last push, so that its next push carries the assumed state that answer produced.
 *
 * Conflicts are resolved here with the strategy (`resolveAll`): the discarded versions are kept first; then the local
 * store gets the resolution (remote winner or merge) and `A := R` once that write landed, or the local state is
 * pushed again with `A := R` as assumed state (local winner). With `push` direction the
 * local store is never written: when the master keeps its state the local state is recorded as acknowledged
 * (`A := F`) so it is not pushed again until it changes.
 */
export class Upstream {
  private started = false;
  private running = false;
  private dirty = true;
  private atHead = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private repush: WriteRow[] = [];
  /** What to record as assumed state when a row is accepted, when that is not the row itself (push direction). */
  private readonly acks = new Map<string, DocState>();
  private readonly sizer: BatchSizer;
  /** Resolves the wait in `settleOrWake` when a commit arrives. */
  private wake: (() => void) | undefined;
  /** Rows sent and not fully handled yet (answer read, conflict resolved), per document id. */
  private readonly flying = new Map<string, number>();
  /** Documents to probe once their push in flight is handled (see `recheck`). */
  private readonly recheckAfter = new Set<string>();
  /** Documents whose current state is pushed again with the current assumed state, to learn the master's state. */
  private probes = new Set<string>();
  /** Probe rows in flight for documents without a local change (state equal to the assumed state). */
  private readonly probeRows = new Set<WriteRow>();

  constructor(
    private readonly ctx: LinkContext,
    private readonly state: ForkState,
    private readonly batchSize: number,
    private readonly onActivity: () => void,
  ) {
    this.sizer = new BatchSizer(batchSize, ctx.rpc.frameBytes);
  }

  get idle(): boolean {
    return (
      this.started &&
      !this.running &&
      !this.dirty &&
      this.repush.length === 0 &&
      this.probes.size === 0 &&
      this.retryTimer === undefined
    );
  }

  inspect(): Record<string, unknown> {
    const { started, running, dirty, atHead } = this;
    return {
      started,
      running,
      dirty,
      atHead,
      repush: this.repush.length,
      probes: this.probes.size,
      flying: this.flying.size,
      retry: !!this.retryTimer,
    };
  }

  /** True while a push of the document is sent and not fully handled (answer read, conflict resolved). */
  inFlight(id: string): boolean {
    return this.flying.size > 0 && this.flying.has(id);
  }

  get anyInFlight(): boolean {
    return this.flying.size > 0;
  }

  /**
   * The downstream skipped a master state of `id` because the fork's state differs from the assumed one, while a
   * push of `id` was in flight (or just got answered). The answer to that push may describe an older master state
   * than the skipped one (the master wrote again before it answered, or a stream event overtook the resolution),
   * and nothing else would bring the newer state: once that push is handled, the current state is pushed again with
   * the then assumed state. The master's answer, computed after the skipped state, settles it: written (the fork's
   * state is the newest) or a conflict carrying the master's current state. A push that follows the skip anyway
   * needs no such check, because its answer is at least as new as what the downstream skipped.
   */
  recheck(id: string): void {
    if (this.flying.has(id)) {
      this.recheckAfter.add(id);
      return;
    }
    this.probes.add(id);
    this.kick();
  }

  start(): void {
    this.started = true;
    this.kick();
  }

  /** A commit that may need pushing, or a RESYNC. */
  markDirty(): void {
    this.dirty = true;
    this.atHead = false;
    this.wake?.();
    this.kick();
  }

  /** A commit made for this link's master (downstream writes): nothing to push; keep the up-checkpoint at the head. */
  selfCommit(checkpoint: Checkpoint): void {
    if (this.started && this.atHead && !this.running && !this.dirty && this.retryTimer === undefined)
      this.state.setUp(checkpoint);
  }

  close(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  private kick(): void {
    if (!this.started || this.running || this.retryTimer || this.ctx.closed) return;
    this.running = true;
    void this.run();
  }

  private async run(): Promise<void> {
    try {
      while ((this.dirty || this.repush.length > 0 || this.probes.size > 0) && !this.ctx.closed) {
        this.dirty = false;
        await this.cycle();
      }
      this.atHead = true;
    } catch (err) {
      if (!this.ctx.closed) {
        this.ctx.fail(err, 'push');
        this.dirty = true;
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.kick();
        }, this.ctx.retryDelayMs);
      }
    } finally {
      this.running = false;
      this.ctx.changed();
    }
  }

  private async cycle(): Promise<void> {
    const { conflict, rules } = this.ctx;
    const pk = rules.primaryKey;
    const isEqual = conflict.isEqual;
    const window: InFlight[] = [];
    try {
      if (this.repush.length > 0 || this.probes.size > 0) await this.sendRepush(window);
      const scan = Math.max(this.batchSize, MIN_SCAN_PAGE);
      let checkpoint = this.state.up;
      for (;;) {
        let page = await this.scan(checkpoint, scan);
        // A document that changed again while its last push is unanswered waits for that answer, then is read again:
        // pushed at once it would carry the assumed state the answer is about to replace, and conflict with itself.
        const waiting = (): boolean =>
          this.flying.size > 0 && page.documents.some((f) => this.flying.has(f[pk] as string));
        while (waiting() && window.length > 0) {
          while (waiting() && window.length > 0) await this.settle(window);
          page = await this.scan(checkpoint, scan);
        }
        const rows: WriteRow[] = [];
        for (const f of page.documents) {
          const id = f[pk] as string;
          const a = this.state.assumed.get(id);
          if (a !== undefined && (a === f || isEqual(a, f))) continue;
          rows.push(a === undefined ? { newDocumentState: f } : { newDocumentState: f, assumedMasterState: a });
        }
        const last = page.scanned > 0 ? (page.checkpoint ?? undefined) : undefined;
        if (rows.length === 0 && last) window.push({ done: Promise.resolve(), checkpoint: last });
        for (let i = 0; i < rows.length;) {
          const batch = rows.slice(i, i + this.sizer.size);
          i += batch.length;
          await this.send(window, batch, i >= rows.length ? last : undefined);
        }
        checkpoint = page.checkpoint;
        if (page.scanned >= scan) continue;
        // At the head of the feed: wait for the answers, but read new commits as soon as they come, so a steady
        // stream of local writes stays pipelined instead of waiting a round trip per cycle.
        while (!this.dirty && window.length > 0) await this.settleOrWake(window);
        if (!this.dirty) break;
        this.dirty = false;
      }
    } catch (err) {
      await Promise.allSettled(window.map((w) => w.done));
      throw err;
    } finally {
      await this.ctx.track(this.state.persist());
    }
  }

  /**
   * The next `limit` changes of the own feed after `checkpoint`, less (where the store can tell without reading them)
   * those whose state is the assumed one: after a pull, nearly all of them.
   */
  private scan(checkpoint: Checkpoint | null, limit: number): Promise<ChangeBatch & { scanned: number }> {
    const { store } = this.ctx;
    if (store.changesSinceExcept)
      return this.ctx.track(store.changesSinceExcept(checkpoint, limit, this.state.assumed));
    return this.ctx.track(store.changesSince(checkpoint, limit).then((p) => ({ ...p, scanned: p.documents.length })));
  }

  private async send(window: InFlight[], rows: WriteRow[], checkpoint?: Checkpoint): Promise<void> {
    while (window.length >= this.ctx.limits.pushWindow) await this.settle(window);
    const done = this.push(rows);
    done.catch(() => undefined);
    window.push(checkpoint ? { done, checkpoint } : { done });
  }

  /** Waits for the oldest batch; once it and all before it are answered, its checkpoint is safe to keep. */
  private async settle(window: InFlight[]): Promise<void> {
    const head = window[0]!;
    await head.done;
    window.shift();
    if (head.checkpoint) {
      this.state.setUp(head.checkpoint);
      await this.ctx.track(this.state.persist());
    }
  }

  /** Like `settle`, but returns early when a new commit marks the upstream dirty. */
  private async settleOrWake(window: InFlight[]): Promise<void> {
    const head = window[0]!;
    let settled = false;
    const answered = head.done.then(() => {
      settled = true;
    });
    await Promise.race([answered, new Promise<void>((resolve) => (this.wake = resolve))]);
    this.wake = undefined;
    if (!settled) return;
    window.shift();
    if (head.checkpoint) {
      this.state.setUp(head.checkpoint);
      await this.ctx.track(this.state.persist());
    }
  }

  /**
   * Rows to push again after a conflict the local side won (skipped if the document changed locally since), and
   * probes (`recheck`): the current state with the current assumed state.
   */
  private async sendRepush(window: InFlight[]): Promise<void> {
    const pk = this.ctx.rules.primaryKey;
    const rows = this.repush;
    const probes = this.probes;
    this.repush = [];
    this.probes = new Set();
    const ids = rows.map((r) => r.newDocumentState[pk] as string);
    const current = await this.ctx.track(this.ctx.store.get(probes.size > 0 ? [...ids, ...probes] : ids));
    const keep = rows.filter((r) => {
      const id = r.newDocumentState[pk] as string;
      const local = this.acks.get(id) ?? r.newDocumentState;
      const now = current.get(id);
      return now !== undefined && (now === local || this.ctx.conflict.isEqual(now, local));
    });
    // A row pushed again anyway answers the probe as well.
    for (const r of keep) probes.delete(r.newDocumentState[pk] as string);
    for (const id of probes) {
      const f = current.get(id);
      if (f === undefined) continue;
      const a = this.state.assumed.get(id);
      const row: WriteRow = a === undefined ? { newDocumentState: f } : { newDocumentState: f, assumedMasterState: a };
      if (a !== undefined && (a === f || this.ctx.conflict.isEqual(a, f))) this.probeRows.add(row);
      keep.push(row);
    }
    for (let i = 0; i < keep.length;) {
      const batch = keep.slice(i, i + this.sizer.size);
      i += batch.length;
      await this.send(window, batch);
    }
  }

  private async push(rows: WriteRow[]): Promise<void> {
    const { rules, stats } = this.ctx;
    const pk = rules.primaryKey;
    stats.pushed += rows.length;
    stats.sent += rows.length;
    this.onActivity();
    for (const row of rows) {
      const id = row.newDocumentState[pk] as string;
      this.flying.set(id, (this.flying.get(id) ?? 0) + 1);
    }
    try {
      await this.pushFlying(rows);
    } finally {
      for (const row of rows) {
        const id = row.newDocumentState[pk] as string;
        this.probeRows.delete(row);
        const n = (this.flying.get(id) ?? 1) - 1;
        if (n > 0) {
          this.flying.set(id, n);
        } else {
          this.flying.delete(id);
          if (this.recheckAfter.delete(id)) this.probes.add(id);
        }
      }
    }
  }

  /** Sends one batch and handles its answer: accepted rows become assumed states, conflicts are resolved. */
  private async pushFlying(rows: WriteRow[]): Promise<void> {
    const { rpc, rules, stats } = this.ctx;
    const pk = rules.primaryKey;
    const answer = rpc.request('masterWrite', [rows]);
    this.sizer.observe(rpc.lastSentBytes, rows.length);
    const result = await answer;
    const checked = checkDocs(result, rules);
    if (typeof checked === 'string') {
      this.ctx.reject(`masterWrite result refused: ${checked}`);
      throw new P2PSyncError('E_PROTOCOL', 'the master answered masterWrite without an array of conflicts');
    }
    stats.received += checked.documents.length;
    for (const reason of checked.rejected) this.ctx.reject(`conflict document refused: ${reason}`);
    const conflicts = new Map<string, DocState>();
    for (const c of checked.documents) conflicts.set(c[pk] as string, c);
    const refused: Array<[WriteRow, DocState]> = [];
    for (const row of rows) {
      const id = row.newDocumentState[pk] as string;
      const real = conflicts.get(id);
      // A probe written was a no-op. Its document may since hold a newer master state from the downstream.
      if (real === undefined && this.probeRows.has(row)) continue;
      if (real === undefined) {
        const ack = this.acks.size > 0 ? this.acks.get(id) : undefined;
        if (ack) this.acks.delete(id);
        this.state.setAssumed(id, ack ?? row.newDocumentState);
        continue;
      }
      refused.push([row, real]);
    }
    if (refused.length > 0) await this.resolveAll(refused);
    this.ctx.emit({
      event: 'pushed',
      peerId: this.ctx.link.remotePeerId,
      count: rows.length,
      conflicts: refused.length,
      total: stats.pushed,
    });
  }

  /**
   * Settles the refused rows of one batch: every conflict is resolved first, the versions the resolutions discard
   * are kept (one durable write for the batch), and only then are the resolutions written, in one write per origin.
   */
  private async resolveAll(refused: ReadonlyArray<[WriteRow, DocState]>): Promise<void> {
    const resolutions: Resolution[] = [];
    for (const [row, real] of refused) {
      const r = await this.resolve(row, real);
      if (r) resolutions.push(r);
    }
    if (resolutions.length === 0) return;
    await keepAndReport(this.ctx, resolutions);
    const peerWrites: CasWrite[] = [];
    const localWrites: CasWrite[] = [];
    const realOf = new Map<string, DocState>();
    for (const r of resolutions) {
      const { id, resolved, winner } = r;
      const { newDocumentState: mine, realMasterState: real } = r.input;
      if (this.ctx.direction === 'push') {
        if (winner === 'remote') {
          this.state.setAssumed(id, mine);
          continue;
        }
        this.state.setAssumed(id, real);
        if (winner === 'merged') this.acks.set(id, mine);
        this.repush.push({ newDocumentState: resolved, assumedMasterState: real });
        continue;
      }
      if (winner === 'local') {
        this.state.setAssumed(id, real);
        this.repush.push({ newDocumentState: mine, assumedMasterState: real });
        continue;
      }
      (winner === 'remote' ? peerWrites : localWrites).push({ document: resolved, expected: mine });
      realOf.set(id, real);
    }
    // A local write that raced with this makes the compare-and-set fail. That newer write is pushed next, and must
    // meet the master's state as a conflict of its own (resolved, its loser kept): so the assumed state stays what
    // it was. Recording `real` would let it overwrite the master's state unseen, which is RxDB's behaviour and loses
    // the master's write.
    const store = this.ctx.store;
    const apply = async (rows: CasWrite[], origin: WriteOrigin): Promise<void> => {
      if (rows.length === 0) return;
      const pk = this.ctx.rules.primaryKey;
      const refusedIds = new Set((await this.ctx.track(store.bulkWrite(rows, origin))).map((d) => d[pk] as string));
      for (const row of rows) {
        const id = row.document[pk] as string;
        if (!refusedIds.has(id)) this.state.setAssumed(id, realOf.get(id)!);
      }
    };
    await apply(peerWrites, { kind: 'peer', peerToken: this.ctx.peerToken ?? '' });
    await apply(localWrites, { kind: 'local' });
  }

  /** One refused row: a probe's answer or an echo is handled here; a real conflict is resolved (not yet written). */
  private async resolve(row: WriteRow, real: DocState): Promise<Resolution | undefined> {
    const { conflict, rules } = this.ctx;
    const id = row.newDocumentState[rules.primaryKey] as string;
    const mine = this.acks.get(id) ?? row.newDocumentState;
    this.acks.delete(id);
    if (this.probeRows.has(row)) {
      // A probe of a document without a local change: the master moved on, so take its state as the downstream
      // would. Unless the downstream stored another master state meanwhile: which is newer is unknown, ask again.
      if (this.state.assumed.get(id) !== row.assumedMasterState) {
        this.probes.add(id);
      } else if (!conflict.isEqual(row.newDocumentState, real)) {
        // The write records `real` as assumed state when it lands (`Fork.onChange`), not before: until then the
        // feed still shows the old state, which must not look like a local change to push.
        const origin: WriteOrigin = { kind: 'peer', peerToken: this.ctx.peerToken ?? '' };
        await this.ctx.track(this.ctx.store.bulkWrite([{ document: real, expected: row.newDocumentState }], origin));
      }
      return undefined;
    }
    // The master already has this state (say, a write raced with an earlier push of ours): nothing to resolve.
    if (conflict.isEqual(row.newDocumentState, real)) {
      this.state.setAssumed(id, real);
      return undefined;
    }
    return resolveConflict(this.ctx, id, {
      newDocumentState: mine,
      assumedMasterState: row.assumedMasterState,
      realMasterState: real,
    });
  }
}
