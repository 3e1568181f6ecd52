import { debuglog } from 'node:util';
import { P2PSyncError } from '../core/errors.js';
import type { Checkpoint, StoreChange } from '../core/types.js';
import { skipChanges } from '../core/store.js';
import { errorJson, type LinkContext } from './context.js';
import type { RpcRequest } from './rpc.js';
import { checkWriteRows, isLwtCheckpoint, isPlainObject, type WriteRow } from './validate.js';

const debug = debuglog('p2psync');

export const MASTER_METHODS: ReadonlySet<string> = new Set(['masterChangesSince', 'masterWrite']);

/** A `masterChangesSince` answer; a page asked for ahead adds `p2psyncFrom`. */
interface PageAnswer {
  checkpoint: unknown;
  documents: unknown[];
  [PAGE_AHEAD.from]?: unknown;
}

/** Largest `p2psyncSkip`, in batches of the largest size: a fork keeps a few pages ahead, not more. */
const MAX_SKIP_PAGES = 16;

/**
 * The "in sync" marker a p2psync fork sends when both its directions are idle: `masterWrite([], {p2psyncResyncs: n})`
 * where n counts the RESYNCs it received. An RxDB master writes nothing for an empty row list, ignores the extra
 * parameter and answers `[]`, so the marker is harmless to it.
 */
export const IN_SYNC_MARKER = 'p2psyncResyncs';

/**
 * The capability a p2psync peer announces in its `token` request: `params: [{p2psync: 2}]`. RxDB answers `token`
 * whatever the params. A p2psync master strips the documents from the echo of a fork's own writes only for forks
 * that announced it (version 1 on); a p2psync fork asks pages ahead (`PAGE_AHEAD`) only from masters that announced
 * version 2 on.
 */
export const P2PSYNC_CAPABILITY = 'p2psync';
export const P2PSYNC_CAPABILITY_VERSION = 2;

/** The p2psync capability version that `token` params announce; 0 for none (an RxDB peer). */
export function announcedP2PSyncVersion(params: readonly unknown[]): number {
  const hello = params[0];
  const v = isPlainObject(hello) ? hello[P2PSYNC_CAPABILITY] : undefined;
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 1 ? v : 0;
}

/**
 * Pages ahead (p2psync extension, capability version 2): `masterChangesSince(checkpoint, size, {p2psyncSkip: n})`
 * asks for the page that follows the first n documents after `checkpoint`, without waiting for the pages before
 * it. The answer adds `p2psyncFrom`, the checkpoint where that page starts, so the fork can tell whether it still
 * continues the pages it took (the feed may have changed in between); it is empty when fewer than n documents
 * follow. An RxDB master ignores the third parameter, and a p2psync fork never sends it to one.
 */
export const PAGE_AHEAD = { skip: 'p2psyncSkip', from: 'p2psyncFrom' } as const;

/**
 * The master half of a link (docs/PROTOCOL.md §2.4-2.6, §4.5). It serves `masterChangesSince` and `masterWrite` to the peer
 * whatever the roles, one request at a time (so concurrent writes of one fork are serialised and responses leave in
 * request order), and pauses serving while the link is above its high-water mark. Once the handshake made this
 * side master it streams every store commit to the peer and sends `RESYNC`.
 *
 * Two deviations from an RxDB master:
 * - For a p2psync fork (it announced `P2PSYNC_CAPABILITY` in its `token` request), a commit that only holds its own
 *   `masterWrite` rows is streamed as `{checkpoint, documents: []}`: the fork has those documents already; the
 *   checkpoint still moves its pull position past them, so they never travel back (RxDB sends them twice more,
 *   docs/PROTOCOL.md §2.7). Other forks get the documents, as from an RxDB master: an RxDB fork holds stream events back
 *   while it pushes and may apply an older event after its own newer push succeeded; only the echo's documents
 *   restore its newer state.
 * - Under back-pressure stream events are dropped and one `RESYNC` is sent once the link drained.
 *
 * "In sync" from this side (`inSync`) needs two things. `caughtUp`: the fork has all of this side's data, known from
 * a short page computed while streaming with no event dropped since, or from the fork's in-sync marker. And no
 * `awaitingConfirm`: after the fork wrote, it may have more to write; its marker settles that. A fork that sends no
 * marker (RxDB) is prompted with `RESYNC` after `resyncPromptMs` without requests, and its next short page settles it.
 */
export class MasterServer {
  private readonly queue: RpcRequest[] = [];
  private queuedChars = 0;
  private serving = false;
  private streaming = false;
  private caughtUp = false;
  private awaitingConfirm = false;
  private promptedSinceWrite = false;
  private resyncPending = false;
  private resyncsSent = 0;
  private dropGeneration = 0;
  private promptTimer: NodeJS.Timeout | undefined;
  /** Responses waiting for the store's durability barrier (in request order, see `serve`). */
  private answering = 0;
  private answered: Promise<void> = Promise.resolve();

  constructor(private readonly ctx: LinkContext) {}

  /** Requests queued or being served. */
  get busy(): boolean {
    return this.serving || this.queue.length > 0 || this.answering > 0;
  }

  /** True when the fork has everything this side has and has finished writing, as far as this side can know. */
  get inSync(): boolean {
    if (this.busy || this.awaitingConfirm || !this.streaming) return false;
    if (this.ctx.direction === 'pull') return true;
    return this.caughtUp && !this.resyncPending && this.ctx.rpc.pressure === 0;
  }

  inspect(): Record<string, unknown> {
    const { serving, streaming, caughtUp, awaitingConfirm, resyncPending, resyncsSent } = this;
    return {
      queued: this.queue.length,
      serving,
      streaming,
      caughtUp,
      awaitingConfirm,
      resyncPending,
      resyncsSent,
      prompt: !!this.promptTimer,
    };
  }

  handle(request: RpcRequest): void {
    const { limits } = this.ctx;
    if (this.queue.length >= limits.maxPendingRequests) {
      return this.ctx.dropPeer(`more than ${limits.maxPendingRequests} requests waiting`, 'maxPendingRequests');
    }
    if (this.queuedChars + request.chars > limits.maxPendingRequestChars) {
      return this.ctx.dropPeer(
        `more than ${limits.maxPendingRequestChars} characters of requests waiting`,
        'maxPendingRequestChars',
      );
    }
    const rows = request.method === 'masterWrite' ? request.params[0] : undefined;
    if (Array.isArray(rows) && rows.length > limits.maxRowsPerRequest) {
      return this.ctx.dropPeer(
        `a masterWrite of ${rows.length} rows (at most ${limits.maxRowsPerRequest})`,
        'maxRowsPerRequest',
      );
    }
    this.queue.push(request);
    this.queuedChars += request.chars;
    this.cancelPrompt();
    if (!this.serving) {
      this.serving = true;
      void this.serve();
    }
  }

  /** Called once the handshake made this side master. */
  startStream(): void {
    if (this.streaming) return;
    this.streaming = true;
    // A pull-only side gives nothing: no stream, and its pages are empty.
    if (this.ctx.direction === 'pull') return;
    // Changes between the fork's first pull and now were not streamed: make it pull once more (docs/PROTOCOL.md §2.3).
    this.resync();
    // Until the fork says it is idle (its marker, or a short page after a prompt) it may still be applying our
    // pages or have its own changes to push: a `--once` master must not call the pair in sync before that.
    this.awaitingConfirm = true;
    this.maybePrompt();
  }

  /** Every committed batch of the store (the link's PeerReplication subscribes once for both halves). */
  onChange(change: StoreChange): void {
    if (!this.streaming || this.ctx.direction === 'pull' || this.ctx.closed) return;
    if (this.resyncPending) {
      this.dropGeneration++;
      return;
    }
    if (this.ctx.rpc.pressure > this.ctx.limits.streamDropBytes) {
      this.dropGeneration++;
      this.resyncPending = true;
      this.caughtUp = false;
      void this.ctx.rpc.writable(this.ctx.limits.highWaterBytes).then(() => {
        if (this.ctx.closed) return;
        this.resyncPending = false;
        debug('replication: RESYNC to %s after dropping stream events', this.ctx.link.remotePeerId);
        this.resync();
        this.ctx.changed();
      });
      return;
    }
    const echo =
      this.ctx.peerIsP2PSync && change.origin.kind === 'peer' && change.origin.peerToken === this.ctx.peerToken;
    const documents = echo ? [] : change.documents;
    this.ctx.rpc.sendStream({ checkpoint: change.checkpoint, documents });
    this.ctx.stats.sent += documents.length;
  }

  close(): void {
    this.cancelPrompt();
    this.streaming = false;
    this.queue.length = 0;
    this.queuedChars = 0;
  }

  private resync(): void {
    this.caughtUp = false;
    this.resyncsSent++;
    this.ctx.rpc.sendStream('RESYNC');
  }

  private async serve(): Promise<void> {
    const { rpc, limits } = this.ctx;
    try {
      while (this.queue.length > 0 && !this.ctx.closed) {
        await rpc.writable(limits.highWaterBytes);
        const request = this.queue.shift();
        if (!request || this.ctx.closed) break;
        this.queuedChars -= request.chars;
        let answer: () => void;
        try {
          const result =
            request.method === 'masterWrite'
              ? await this.write(request.params)
              : await this.changesSince(request.params);
          answer = () => rpc.respond(request.id, result);
        } catch (err) {
          answer = () => rpc.respondError(request.id, errorJson(err));
        }
        // Durable acknowledgement (docs/STORES.md, "Durability"): a write is answered only once the store's journal
        // has it fsynced. The next request is served meanwhile, so the writes of a push window share one fsync;
        // answers still leave in request order (a page served after a write waits for the write's answer).
        const barrier = request.method === 'masterWrite' ? this.ctx.store.durable() : undefined;
        this.answering++;
        this.answered = this.answered
          .then(() => barrier)
          .then(answer, (err: unknown) => rpc.respondError(request.id, errorJson(err)))
          .finally(() => {
            this.answering--;
            if (this.answering === 0 && !this.serving) {
              this.maybePrompt();
              this.ctx.changed();
            }
          });
      }
    } finally {
      this.serving = false;
      this.maybePrompt();
      this.ctx.changed();
    }
  }

  private async changesSince(params: unknown[]): Promise<PageAnswer> {
    const [given, size, options] = params;
    if (typeof size !== 'number' || !(size >= 1)) {
      this.ctx.reject('masterChangesSince with an invalid batch size');
      throw new P2PSyncError('E_PROTOCOL', 'batchSize must be a number of at least 1');
    }
    const limit = Math.min(Math.floor(size), this.ctx.limits.maxBatchSize);
    const skip = isPlainObject(options) ? options[PAGE_AHEAD.skip] : undefined;
    if (
      skip !== undefined &&
      !(
        Number.isSafeInteger(skip) &&
        (skip as number) >= 0 &&
        (skip as number) <= MAX_SKIP_PAGES * this.ctx.limits.maxBatchSize
      )
    ) {
      this.ctx.reject('masterChangesSince with an invalid skip');
      throw new P2PSyncError(
        'E_PROTOCOL',
        `${PAGE_AHEAD.skip} must be a whole number from 0 to ${MAX_SKIP_PAGES} batches`,
      );
    }
    if (this.ctx.direction === 'pull') return { checkpoint: given ?? null, documents: [] };
    let checkpoint: Checkpoint | null = null;
    if (given !== null && given !== undefined) {
      // Like an RxDB master: a checkpoint this side did not produce yields an empty page echoing it.
      if (!isLwtCheckpoint(given)) return { checkpoint: given, documents: [] };
      checkpoint = { id: given.id, lwt: given.lwt };
    }
    if (typeof skip === 'number' && skip > 0) return this.pageAhead(checkpoint, skip, limit);
    const generation = this.dropGeneration;
    const streaming = this.streaming;
    const page = await this.ctx.track(this.ctx.store.changesSince(checkpoint, limit));
    if (page.documents.length < limit && streaming && generation === this.dropGeneration && !this.resyncPending) {
      this.caughtUp = true;
      if (this.promptedSinceWrite) this.awaitingConfirm = false;
    }
    this.ctx.stats.sent += page.documents.length;
    return page;
  }

  /** A page asked for ahead (`PAGE_AHEAD`). It never counts as the fork catching up: the fork may drop it. */
  private async pageAhead(after: Checkpoint | null, skip: number, limit: number): Promise<PageAnswer> {
    const { store } = this.ctx;
    const skipped = await this.ctx.track(skipChanges(store, after, skip));
    if (skipped.skipped < skip) return { checkpoint: after, documents: [] };
    const page = await this.ctx.track(store.changesSince(skipped.checkpoint, limit));
    this.ctx.stats.sent += page.documents.length;
    return { ...page, [PAGE_AHEAD.from]: skipped.checkpoint };
  }

  private async write(params: unknown[]): Promise<unknown[]> {
    const rows = checkWriteRows(params, this.ctx.rules);
    if (typeof rows === 'string') {
      this.ctx.reject(`masterWrite refused: ${rows}`);
      throw new P2PSyncError('E_PROTOCOL', rows);
    }
    if (rows.length === 0) {
      this.marker(params[1]);
      return [];
    }
    this.ctx.stats.received += rows.length;
    this.awaitingConfirm = true;
    this.promptedSinceWrite = false;
    if (this.ctx.direction === 'push') return [];
    // For a duplicated id the last row wins (docs/PROTOCOL.md §2.5).
    const byId = new Map<string, WriteRow>();
    const pk = this.ctx.rules.primaryKey;
    for (const row of rows) byId.set(row.newDocumentState[pk] as string, row);
    const writes = [...byId.values()].map((r) => ({
      document: r.newDocumentState,
      expected: r.assumedMasterState ?? null,
    }));
    const origin = { kind: 'peer' as const, peerToken: this.ctx.peerToken ?? '' };
    const conflicts = await this.ctx.track(this.ctx.store.bulkWrite(writes, origin));
    this.ctx.stats.sent += conflicts.length;
    // What the fork pushed and we kept is what we received from that peer: the same `pulled` a fork reports.
    const applied = writes.length - conflicts.length;
    if (applied > 0) {
      this.ctx.stats.pulled += applied;
      this.ctx.emit({
        event: 'pulled',
        peerId: this.ctx.link.remotePeerId,
        count: applied,
        total: this.ctx.stats.pulled,
      });
    }
    return conflicts;
  }

  /** The fork's in-sync marker; one sent before the latest RESYNC reached the fork is out of date and ignored. */
  private marker(extra: unknown): void {
    if (!isPlainObject(extra) || extra[IN_SYNC_MARKER] !== this.resyncsSent || !this.streaming) return;
    this.caughtUp = !this.resyncPending;
    this.awaitingConfirm = false;
  }

  private maybePrompt(): void {
    if (!this.streaming || !this.awaitingConfirm || this.busy || this.promptTimer || this.ctx.closed) return;
    this.promptTimer = setTimeout(() => {
      this.promptTimer = undefined;
      if (this.ctx.closed || this.busy || !this.awaitingConfirm) return;
      debug('replication: RESYNC to %s to confirm its writes', this.ctx.link.remotePeerId);
      this.promptedSinceWrite = true;
      this.resync();
      this.ctx.changed();
    }, this.ctx.limits.resyncPromptMs);
  }

  private cancelPrompt(): void {
    if (this.promptTimer) clearTimeout(this.promptTimer);
    this.promptTimer = undefined;
  }
}
