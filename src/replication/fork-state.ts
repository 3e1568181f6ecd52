import type { PeerStateStore } from '../core/store.js';
import type { Checkpoint, DocState, Json, PeerStateUpdate } from '../core/types.js';

/**
 * What a fork keeps per (collection, topic, master token) pair (docs/PROTOCOL.md §4.1), in memory and in the store's
 * sidecar: the down-checkpoint (master feed position), the up-checkpoint (own feed position) and the assumed
 * master state of every document. Changes are collected and written with the next `persist()`, so a batch of
 * documents costs one `setPeerState` call. Where the store offers it (`livePeerState`), `assumed` is the store's
 * own map, changed in place: 100k pulled documents then cost one big map, not two.
 */
export class ForkState {
  /** Ids whose assumed state changed since the last `persist` (may repeat). */
  private pendingIds: string[] = [];
  private upChanged = false;

  private constructor(
    readonly key: string,
    private readonly store: PeerStateStore,
    public down: Json,
    public up: Checkpoint | null,
    readonly assumed: Map<string, DocState>,
  ) {}

  /** `[collection, topic, peerToken].join('||')`, RxDB's replicationIdentifier (docs/PROTOCOL.md §2.3). */
  static key(collection: string, topic: string, peerToken: string): string {
    return [collection, topic, peerToken].join('||');
  }

  /** The saved state; its assumed states are the store's own map where the store offers it (`livePeerState`). */
  static async load(store: PeerStateStore, key: string): Promise<ForkState> {
    const saved = store.livePeerState?.(key) ?? (await store.getPeerState(key));
    return new ForkState(key, store, saved?.down ?? null, saved?.up ?? null, saved?.assumed ?? new Map());
  }

  setAssumed(id: string, doc: DocState): void {
    this.assumed.set(id, doc);
    this.pendingIds.push(id);
  }

  setUp(checkpoint: Checkpoint): void {
    this.up = checkpoint;
    this.upChanged = true;
  }

  /** Writes what changed since the last call, plus a new down-checkpoint if given. */
  async persist(down?: Json): Promise<void> {
    const update: PeerStateUpdate = {};
    let any = false;
    if (down !== undefined) {
      this.down = down;
      update.down = down;
      any = true;
    }
    if (this.upChanged) {
      update.up = this.up;
      this.upChanged = false;
      any = true;
    }
    if (this.pendingIds.length > 0) {
      update.assumed = { ids: this.pendingIds, states: this.assumed };
      this.pendingIds = [];
      any = true;
    }
    if (any) await this.store.setPeerState(this.key, update);
  }
}
