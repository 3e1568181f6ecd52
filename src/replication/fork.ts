import type { StoreChange } from '../core/types.js';
import type { LinkContext } from './context.js';
import { Downstream } from './downstream.js';
import { ForkState } from './fork-state.js';
import { IN_SYNC_MARKER } from './master.js';
import { Upstream } from './upstream.js';

/**
 * The fork half of a link (docs/PROTOCOL.md §4): it drives both directions. Order at start: the pull loop runs first; the
 * upstream starts once the downstream was idle for the first time, so an initial sync in both directions does not
 * pull back what it is pushing. RESYNC runs both directions again.
 *
 * Whenever both directions become idle after a pull loop, a push or a RESYNC, the fork tells the master with the
 * in-sync marker (see `IN_SYNC_MARKER`), so that a p2psync master knows the pair is in sync without guessing from
 * timing. Applying stream events needs no marker: the master knows what it streamed.
 */
export class Fork {
  private state: ForkState | undefined;
  private downstream: Downstream | undefined;
  private upstream: Upstream | undefined;
  private closed = false;
  private confirmNeeded = true;
  private confirming = false;
  private confirmRetry: NodeJS.Timeout | undefined;

  constructor(
    private readonly ctx: LinkContext,
    private readonly key: string,
    private readonly batchSize: number,
    /** RESYNCs received from the master so far (counted from the handshake on, by the link). */
    private readonly resyncsReceived: () => number,
  ) {}

  /** Loads the pair's saved state and starts. Errors are reported, not thrown. */
  async start(): Promise<void> {
    try {
      this.state = await this.ctx.track(ForkState.load(this.ctx.meta, this.key));
    } catch (err) {
      this.ctx.fail(err, 'load replication state');
      return;
    }
    if (this.closed || this.ctx.closed) return;
    const state = this.state;
    const { direction } = this.ctx;
    const activity = (): void => {
      this.confirmNeeded = true;
    };
    this.upstream = new Upstream(this.ctx, state, this.batchSize, activity);
    if (direction === 'push') {
      this.upstream.start();
    } else {
      const onFirstSync = (): void => {
        if (direction === 'both') this.upstream?.start();
      };
      this.downstream = new Downstream(this.ctx, state, this.batchSize, onFirstSync, activity, this.upstream);
      this.downstream.start();
    }
    this.ctx.changed();
  }

  /**
   * True when both directions are idle (everything pulled until a short page, every local change answered) and the
   * master was told so.
   */
  get inSync(): boolean {
    return this.directionsIdle && !this.confirmNeeded && !this.confirming;
  }

  inspect(): Record<string, unknown> {
    const { confirmNeeded, confirming } = this;
    return {
      loaded: !!this.state,
      confirmNeeded,
      confirming,
      down: this.downstream?.inspect(),
      up: this.upstream?.inspect(),
      downCp: this.state?.down,
      upCp: this.state?.up,
    };
  }

  /** Sends the in-sync marker when both directions just became idle. Called on every state change of the link. */
  maybeConfirm(): void {
    if (!this.confirmNeeded || this.confirming || this.closed || this.confirmRetry || !this.directionsIdle) return;
    this.confirmNeeded = false;
    this.confirming = true;
    this.ctx.rpc
      .request('masterWrite', [[], { [IN_SYNC_MARKER]: this.resyncsReceived() }])
      .catch((err: unknown) => {
        if (this.closed) return;
        this.confirmNeeded = true;
        this.ctx.fail(err, 'in-sync marker');
        this.confirmRetry = setTimeout(() => {
          this.confirmRetry = undefined;
          this.ctx.changed();
        }, this.ctx.retryDelayMs);
      })
      .finally(() => {
        this.confirming = false;
        this.ctx.changed();
      });
  }

  onStream(result: unknown): void {
    if (!this.state || this.closed) return; // the first pull covers whatever came before
    if (result === 'RESYNC') {
      this.downstream?.requestLoop();
      this.upstream?.markDirty();
      this.confirmNeeded = true;
      return;
    }
    this.downstream?.onEvent(result);
  }

  onChange(change: StoreChange): void {
    const state = this.state;
    if (!state || this.closed) return;
    const { origin } = change;
    if (origin.kind === 'peer' && origin.peerToken === this.ctx.peerToken) {
      // Written for this master (downstream, or a resolution the master won): the stored object is now the
      // assumed state, which also makes the upstream's "already known?" test an identity check.
      const pk = this.ctx.rules.primaryKey;
      for (const doc of change.documents) state.setAssumed(doc[pk] as string, doc);
      this.upstream?.selfCommit(change.checkpoint);
      return;
    }
    if (this.ctx.direction !== 'pull') this.upstream?.markDirty();
  }

  close(): void {
    this.closed = true;
    if (this.confirmRetry) clearTimeout(this.confirmRetry);
    this.downstream?.close();
    this.upstream?.close();
  }

  private get directionsIdle(): boolean {
    if (!this.state) return false;
    const { direction } = this.ctx;
    const down = direction === 'push' || (this.downstream?.idle ?? false);
    const up = direction === 'pull' || (this.upstream?.idle ?? false);
    return down && up;
  }
}
