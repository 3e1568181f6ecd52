import type { PeerLink } from '../../src/core/link.js';
import { MAX_FRAME_BYTES } from '../../src/core/link.js';
import type { CasWrite, ChangeBatch, Checkpoint, DocState, WriteOrigin } from '../../src/core/types.js';
import { MemoryStore } from '../../src/store/memory-store.js';

/** A small seeded PRNG (mulberry32): a soak seed gives the same choices on every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Resolves after `n` turns of the event loop. */
export async function hops(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((r) => setImmediate(r));
}

/**
 * A link pair that delivers frames in order, like a data channel, but after a random number of event-loop turns
 * each: the requests, responses and stream events of the two sides interleave differently for every seed.
 */
export function createJitterLinkPair(random: () => number, aId = 'peer-a', bId = 'peer-b'): [PeerLink, PeerLink] {
  const a = new JitterLink(bId, random);
  const b = new JitterLink(aId, random);
  a.peer = b;
  b.peer = a;
  return [a, b];
}

class JitterLink implements PeerLink {
  peer!: JitterLink;
  readonly maxMessageSize = MAX_FRAME_BYTES;
  private readonly outbox: string[] = [];
  private buffered = 0;
  private pumping = false;
  private frameHandler: ((frame: string) => void) | undefined;
  private readonly early: string[] = [];
  private readonly closeHandlers: Array<(reason?: Error) => void> = [];
  private readonly drainHandlers: Array<() => void> = [];
  private isOpen = true;

  constructor(
    readonly remotePeerId: string,
    private readonly random: () => number,
  ) {}

  get open(): boolean {
    return this.isOpen;
  }

  send(frame: string): void {
    if (!this.isOpen) return;
    this.outbox.push(frame);
    this.buffered += frame.length;
    if (!this.pumping) {
      this.pumping = true;
      setImmediate(() => this.pump());
    }
  }

  bufferedAmount(): number {
    return this.buffered;
  }

  onFrame(handler: (frame: string) => void): void {
    this.frameHandler = handler;
    for (const f of this.early.splice(0)) handler(f);
  }

  onClose(handler: (reason?: Error) => void): void {
    this.closeHandlers.push(handler);
  }

  onDrain(handler: () => void): void {
    this.drainHandlers.push(handler);
  }

  close(): void {
    if (!this.isOpen) return;
    this.shutdown();
    setImmediate(() => this.peer.shutdown());
  }

  /** Each turn delivers the next frame with probability 1/2, so a frame waits a random (geometric) time. */
  private pump(): void {
    if (!this.isOpen) return;
    while (this.outbox.length > 0 && this.random() < 0.5) {
      const f = this.outbox.shift()!;
      this.buffered -= f.length;
      this.peer.deliver(f);
    }
    if (this.outbox.length > 0) {
      setImmediate(() => this.pump());
      return;
    }
    this.pumping = false;
    for (const h of this.drainHandlers) h();
  }

  private deliver(frame: string): void {
    if (!this.isOpen) return;
    if (this.frameHandler) this.frameHandler(frame);
    else this.early.push(frame);
  }

  private shutdown(): void {
    if (!this.isOpen) return;
    this.isOpen = false;
    for (const h of this.closeHandlers) h();
  }
}

/** A memory store whose reads and writes take a random number of event-loop turns, like a store doing I/O. */
export class JitterStore extends MemoryStore {
  constructor(
    token: string,
    private readonly random: () => number,
  ) {
    super({ storageToken: token });
  }

  override async bulkWrite(rows: readonly CasWrite[], origin: WriteOrigin): Promise<DocState[]> {
    await hops(Math.floor(this.random() * 3));
    return super.bulkWrite(rows, origin);
  }

  override async changesSince(checkpoint: Checkpoint | null, limit: number): Promise<ChangeBatch> {
    await hops(Math.floor(this.random() * 3));
    return super.changesSince(checkpoint, limit);
  }
}
