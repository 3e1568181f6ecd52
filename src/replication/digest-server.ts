import { DigestSnapshot } from '../verify/digest.js';
import { checkDigestQuery, DIGEST_METHOD, type DigestQuery } from '../verify/protocol.js';
import { errorJson, type LinkContext } from './context.js';
import type { RpcRequest } from './rpc.js';

/** Digest requests waiting per link; an observer sends one at a time, so more is a misbehaving peer. */
const MAX_WAITING = 4;

/**
 * Serves `p2psyncDigest` (docs/PROTOCOL.md, "Digests for verify") to any peer of the link, whatever the roles. The
 * first request takes a snapshot of the store's live documents; every later answer on this link comes from it, so
 * an observer bisecting over several round trips sees one consistent replica. Requests are answered one at a time,
 * after the link drained, and never change the store.
 */
export class DigestServer {
  private snapshot: Promise<DigestSnapshot> | undefined;
  private readonly queue: Array<{ id: string; query: DigestQuery }> = [];
  private serving = false;
  private closed = false;

  constructor(private readonly ctx: LinkContext) {}

  handle(request: RpcRequest): void {
    const { rpc } = this.ctx;
    const refuse = (reason: string): void => {
      this.ctx.reject(`${DIGEST_METHOD} refused: ${reason}`);
      rpc.respondError(request.id, { name: 'P2PSyncError', code: 'E_PROTOCOL', message: reason });
    };
    if (this.queue.length >= MAX_WAITING) return refuse('too many digest requests waiting');
    const query = checkDigestQuery(request.params);
    if (typeof query === 'string') return refuse(query);
    this.queue.push({ id: request.id, query });
    if (!this.serving) void this.serve();
  }

  close(): void {
    this.closed = true;
    this.queue.length = 0;
    this.snapshot = undefined;
  }

  private async serve(): Promise<void> {
    const { rpc, limits, store } = this.ctx;
    this.serving = true;
    try {
      while (this.queue.length > 0 && !this.closed) {
        await rpc.writable(limits.highWaterBytes);
        const { id, query } = this.queue.shift()!;
        try {
          this.snapshot ??= this.ctx.track(store.all()).then((docs) => new DigestSnapshot(docs, store.primaryKey));
          const snapshot = await this.snapshot;
          if (!this.closed) rpc.respond(id, snapshot.answer(query));
        } catch (err) {
          this.snapshot = undefined;
          rpc.respondError(id, errorJson(err));
        }
      }
    } finally {
      this.serving = false;
    }
  }
}
