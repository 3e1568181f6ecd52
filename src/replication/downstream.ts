import { debuglog } from 'node:util';
import { P2PSyncError } from '../core/errors.js';
import type { CasWrite, DocState, Json, WriteOrigin } from '../core/types.js';
import type { LinkContext } from './context.js';
import { keepAndReport, resolveConflict } from './resolution.js';
import type { ForkState } from './fork-state.js';
import { PAGE_AHEAD } from './master.js';
import { BatchSizer } from './sizing.js';
import { checkBatch, compareCheckpoints, isPlainObject, mergeCheckpoints, type CheckedBatch } from './validate.js';

const debug = debuglog('p2psync');

/** A validated page or stream event and how many documents it carried before validation. */
interface Batch {
  checkpoint: Json;
  documents: DocState[];
  total: number;
  /** The page size asked for (pages only). */
  requested?: number;
  /** A page asked for ahead: where the master says it starts (`PAGE_AHEAD`). */
  ahead?: { from: unknown };
}

/** Pages a fork keeps asked for ahead of the one it applies, from masters that serve `PAGE_AHEAD`. */
const PAGES_AHEAD = 3;

/**
 * Pages a pull loop may have applied before the oldest of them is durable (docs/STORES.md, "Durability"): a fork
 * killed mid-pull is re-sent at most these pages (plus the one being applied), however slow its disk. The next page
 * is applied while the last one is fsynced, so a working disk rarely makes the loop wait.
 */
const PAGES_NOT_DURABLE = 2;

/** What the downstream needs from the upstream to never lose a master state it skipped (see `Upstream.recheck`). */
export interface PushWatch {
  /** True while any push is sent and not fully handled. */
  readonly anyInFlight: boolean;
  /** True while a push of the document is sent and not fully handled (answer read, conflict resolved). */
  inFlight(id: string): boolean;
  /** Pushes the document's current state again once its push in flight is handled. */
  recheck(id: string): void;
}

/**
 * The fork's downstream (docs/PROTOCOL.md §4.2). One serial runner applies, in order, pull loops and stream events:
 * - a pull loop runs from the down-checkpoint until a short page, with the next page requested while the current
 *   one is applied (each request needs the previous page's checkpoint); from a p2psync master that serves pages
 *   ahead (`PAGE_AHEAD`), a few more pages are asked for at once, each taken only if it is full and starts exactly
 *   where the one before ended (otherwise the loop goes on from there with a plain request);
 * - a stream event that arrives while a loop is pending or running is dropped and makes the loop run once more
 *   (the loop covers it, and a late event could otherwise overwrite a newer pulled version); an event whose
 *   checkpoint is not after the down-checkpoint is already covered and skipped;
 * - an event's checkpoint is merged only after its documents are stored.
 */
export class Downstream {
  private loopPending = true;
  private loopRunning = false;
  private running = false;
  private readonly events: Batch[] = [];
  private retryTimer: NodeJS.Timeout | undefined;
  /** Halved after each failed loop (a page too large for the link or the peer), reset after a good one. */
  private failureCap: number;
  private readonly sizer: BatchSizer;
  private initialDone = false;

  constructor(
    private readonly ctx: LinkContext,
    private readonly state: ForkState,
    private readonly batchSize: number,
    private readonly onFirstSync: () => void,
    private readonly onActivity: () => void,
    /** The upstream, when this fork pushes too. */
    private readonly pushes?: PushWatch,
  ) {
    this.failureCap = batchSize;
    this.sizer = new BatchSizer(batchSize, ctx.rpc.frameBytes);
  }

  get idle(): boolean {
    return (
      this.initialDone &&
      !this.running &&
      !this.loopPending &&
      this.events.length === 0 &&
      this.retryTimer === undefined
    );
  }

  inspect(): Record<string, unknown> {
    const { loopPending, loopRunning, running, initialDone } = this;
    return { loopPending, loopRunning, running, initialDone, events: this.events.length, retry: !!this.retryTimer };
  }

  start(): void {
    this.kick();
  }

  /** A RESYNC: run a pull loop (once more, if one is running). */
  requestLoop(): void {
    this.loopPending = true;
    this.kick();
  }

  onEvent(result: unknown): void {
    const checked = checkBatch(result, this.ctx.rules);
    if (typeof checked === 'string') return this.ctx.reject(`stream event refused: ${checked}`);
    if (this.loopPending || this.loopRunning || this.retryTimer) {
      this.loopPending = true;
      return;
    }
    this.events.push(this.accept(checked));
    this.kick();
  }

  close(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.events.length = 0;
  }

  private kick(): void {
    if (this.running || this.retryTimer || this.ctx.closed) return;
    this.running = true;
    void this.run();
  }

  private async run(): Promise<void> {
    try {
      while (!this.ctx.closed) {
        if (this.loopPending) {
          this.loopPending = false;
          this.loopRunning = true;
          // Events still queued are older than anything this loop reads: it covers them.
          this.events.length = 0;
          this.onActivity();
          debug('replication: pull loop from %s starts at %j', this.ctx.link.remotePeerId, this.state.down);
          try {
            await this.pullLoop();
          } finally {
            this.loopRunning = false;
          }
          continue;
        }
        const event = this.events.shift();
        if (!event) break;
        await this.applyEvent(event);
      }
      if (!this.initialDone && !this.ctx.closed) {
        this.initialDone = true;
        this.onFirstSync();
      }
    } catch (err) {
      if (!this.ctx.closed) {
        this.ctx.fail(err, 'pull');
        this.events.length = 0;
        this.loopPending = true;
        // A page too large for the link or the peer shows up as a timeout or an error: try smaller pages.
        this.failureCap = Math.max(1, Math.floor(Math.min(this.failureCap, this.sizer.size) / 2));
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

  private async pullLoop(): Promise<void> {
    let checkpoint = this.state.down;
    // Barriers of the pages applied last, oldest first. A failing journal (disk full) rejects them: the loop then
    // goes on holding pages in memory as before, and the store reports the writes it owes (honest shutdown).
    const notDurable: Array<Promise<void>> = [];
    restart: for (;;) {
      const ahead = this.ctx.peerP2PSyncVersion >= 2 ? PAGES_AHEAD : 0;
      const queue: Array<Promise<Batch>> = [];
      // Documents the queued requests cover after `checkpoint`: where the next page ahead starts.
      let queuedDocs = 0;
      const ask = (from: Json): void => {
        const size = this.pageSize();
        const next = this.fetch(from, size, queuedDocs);
        next.catch(() => undefined);
        queue.push(next);
        queuedDocs += size;
      };
      ask(checkpoint);
      for (;;) {
        const page = await queue.shift()!;
        queuedDocs -= page.requested ?? 0;
        // RxDB's rule: only a full page means there may be more (docs/PROTOCOL.md §2.4).
        const more = page.total >= (page.requested ?? 0);
        // The feed may have changed since the page ahead was asked for (an updated document moves to its end):
        // drop it, and those after it, unless it continues exactly, and is full (a short one is confirmed plainly).
        if (page.ahead && (!more || compareCheckpoints(page.ahead.from, checkpoint) !== 0)) continue restart;
        if (page.total === 0) break restart;
        const merged = mergeCheckpoints(checkpoint, page.checkpoint);
        if (more) while (queue.length < Math.max(1, ahead)) ask(merged);
        if (notDurable.length >= PAGES_NOT_DURABLE) await notDurable.shift();
        await this.apply(page.documents, merged);
        notDurable.push(this.ctx.store.durable().catch(() => undefined));
        checkpoint = merged;
        if (!more) break restart;
      }
    }
    this.failureCap = this.batchSize;
  }

  private pageSize(): number {
    return Math.min(this.sizer.size, this.failureCap);
  }

  /** Asks for a page: the one after `checkpoint`, or (`skip` > 0) the one after the first `skip` documents after it. */
  private async fetch(checkpoint: Json, size: number, skip = 0): Promise<Batch> {
    const params = skip > 0 ? [checkpoint, size, { [PAGE_AHEAD.skip]: skip }] : [checkpoint, size];
    const { result, bytes } = await this.ctx.rpc.requestSized('masterChangesSince', params);
    const checked = checkBatch(result, this.ctx.rules);
    if (typeof checked === 'string') {
      this.ctx.reject(`masterChangesSince result refused: ${checked}`);
      throw new P2PSyncError('E_PROTOCOL', `invalid masterChangesSince result: ${checked}`);
    }
    const batch = this.accept(checked);
    this.sizer.observe(bytes, batch.total);
    batch.requested = size;
    if (skip > 0) batch.ahead = { from: (result as Record<string, unknown>)[PAGE_AHEAD.from] };
    return batch;
  }

  private accept(checked: CheckedBatch): Batch {
    for (const reason of checked.rejected) this.ctx.reject(`document refused: ${reason}`);
    const total = checked.documents.length + checked.rejected.length;
    this.ctx.stats.received += total;
    return { checkpoint: checked.checkpoint, documents: checked.documents, total };
  }

  private async applyEvent(event: Batch): Promise<void> {
    const order = compareCheckpoints(event.checkpoint, this.state.down);
    if (order !== undefined && order <= 0) return;
    const down = isPlainObject(event.checkpoint)
      ? mergeCheckpoints(this.state.down, event.checkpoint)
      : this.state.down;
    await this.apply(event.documents, down);
  }

  /**
   * Applies master states `M` (docs/PROTOCOL.md §4.2) with one compare-and-set write per batch, expecting the fork's
   * document to still be the assumed master state `A`:
   * - no fork document: `M` is inserted;
   * - fork document equal to `A` (nothing changed locally): replaced by `M`, or left alone if already equal;
   * - otherwise the store returns the fork state `F` as a conflict: if `F` equals `M` only `A := M` is recorded, else
   *   `F` is a local change not pushed yet and stays for the upstream to push (with `pull` direction, which never
   *   pushes, the conflict is resolved here instead). The push that settles it must be answered after `M` arrived;
   *   when a push of the document was already in flight, or got answered while this batch was written, the upstream
   *   checks it once more (`PushWatch.recheck`): the master may have answered that push with an older state.
   * Written documents come back through the change stream, which records them as assumed states (`Fork.onChange`).
   */
  private async apply(docs: DocState[], down: Json): Promise<void> {
    const { store, conflict, rules } = this.ctx;
    const pk = rules.primaryKey;
    if (docs.length > 0) {
      const assumed = this.state.assumed;
      const rows: CasWrite[] = new Array<CasWrite>(docs.length);
      const pushes = this.ctx.direction === 'both' ? this.pushes : undefined;
      let flying: Set<string> | undefined;
      for (let i = 0; i < docs.length; i++) {
        const m = docs[i]!;
        const id = m[pk] as string;
        rows[i] = { document: m, expected: assumed.get(id) ?? null };
        if (pushes?.anyInFlight && pushes.inFlight(id)) (flying ??= new Set()).add(id);
      }
      const conflicts = await this.ctx.track(store.bulkWrite(rows, this.origin()));
      if (conflicts.length > 0) {
        const isEqual = conflict.isEqual;
        const masterStates = new Map<string, CasWrite>();
        for (const row of rows) masterStates.set(row.document[pk] as string, row);
        for (const f of conflicts) {
          const id = f[pk] as string;
          const row = masterStates.get(id);
          if (row === undefined) continue;
          const m = row.document;
          const a = assumed.get(id);
          if (isEqual(f, m)) {
            if (a === undefined || !isEqual(a, m)) this.state.setAssumed(id, f);
          } else if (this.ctx.direction === 'pull' && (a === undefined || !isEqual(a, m))) {
            await this.resolveLocally(f, a, m);
          } else if (
            pushes &&
            (a === undefined || !isEqual(a, m)) &&
            (flying?.has(id) || pushes.inFlight(id) || (a ?? null) !== row.expected)
          ) {
            pushes.recheck(id);
          }
        }
      }
      this.ctx.stats.pulled += docs.length;
    }
    await this.ctx.track(this.state.persist(down));
    if (docs.length > 0) {
      this.ctx.emit({
        event: 'pulled',
        peerId: this.ctx.link.remotePeerId,
        count: docs.length,
        total: this.ctx.stats.pulled,
      });
    }
  }

  /** `pull` direction: a remote change meets an unpushed local one; the strategy decides, locally. */
  private async resolveLocally(f: DocState, a: DocState | undefined, m: DocState): Promise<void> {
    const id = m[this.ctx.rules.primaryKey] as string;
    const r = await resolveConflict(this.ctx, id, { newDocumentState: f, assumedMasterState: a, realMasterState: m });
    if (!r) return;
    await keepAndReport(this.ctx, [r]);
    this.state.setAssumed(id, m);
    if (r.winner === 'local') return;
    const origin: WriteOrigin = r.winner === 'remote' ? this.origin() : { kind: 'local' };
    await this.ctx.track(this.ctx.store.bulkWrite([{ document: r.resolved, expected: f }], origin));
  }

  private origin(): WriteOrigin {
    return { kind: 'peer', peerToken: this.ctx.peerToken ?? '' };
  }
}
