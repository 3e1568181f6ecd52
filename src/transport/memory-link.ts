import { addListener, type Unsubscribe } from '../core/events.js';
import { MAX_FRAME_BYTES, type PeerLink } from '../core/link.js';

/**
 * How many of the frames waiting (oldest first) a memory link delivers in one turn of the event loop; the rest
 * wait for the next turn.
 */
export type Pace = (waiting: readonly string[]) => number;

export interface MemoryLinkOptions {
  /** Without a pace each frame is delivered in a turn of its own, right after the turn that sent it. */
  pace?: Pace;
}

/**
 * An in-memory PeerLink for unit tests: frames are delivered asynchronously, in order, like a data channel, at a
 * pace the test may choose (a finite bandwidth, random delays) and may hold back per direction (a peer that does
 * not read). `bufferedAmount` counts the characters sent and not yet delivered, so flow control can be observed.
 */
export class MemoryLink implements PeerLink {
  peer!: MemoryLink;
  readonly maxMessageSize = MAX_FRAME_BYTES;
  /** Largest `bufferedAmount()` since the link opened or `resetMax()`. */
  maxBuffered = 0;
  private readonly outbox: string[] = [];
  private buffered = 0;
  /** Turns scheduled: one per frame without a pace, at most one with. */
  private scheduled = 0;
  private held = false;
  private frameHandler: ((frame: string) => void) | undefined;
  private readonly early: string[] = [];
  private readonly closeHandlers = new Set<(reason?: Error) => void>();
  private readonly drainHandlers = new Set<() => void>();
  private isOpen = true;

  constructor(
    readonly remotePeerId: string,
    private readonly pace?: Pace,
  ) {}

  get open(): boolean {
    return this.isOpen;
  }

  send(frame: string): void {
    if (!this.isOpen) return;
    this.outbox.push(frame);
    this.buffered += frame.length;
    if (this.buffered > this.maxBuffered) this.maxBuffered = this.buffered;
    this.schedule();
  }

  bufferedAmount(): number {
    return this.buffered;
  }

  onFrame(handler: (frame: string) => void): Unsubscribe {
    this.frameHandler = handler;
    for (const f of this.early.splice(0)) handler(f);
    return () => {
      if (this.frameHandler === handler) this.frameHandler = undefined;
    };
  }

  onClose(handler: (reason?: Error) => void): Unsubscribe {
    return addListener(this.closeHandlers, handler);
  }

  onDrain(handler: () => void): Unsubscribe {
    return addListener(this.drainHandlers, handler);
  }

  close(): void {
    if (!this.isOpen) return;
    this.shutdown();
    // the remote notices a little later, as over a network
    setImmediate(() => this.peer.shutdown());
  }

  /** Stops delivering what this side sends (it stays buffered) until `release()`. */
  hold(): void {
    this.held = true;
  }

  release(): void {
    this.held = false;
    this.schedule();
  }

  resetMax(): void {
    this.maxBuffered = this.buffered;
  }

  private schedule(): void {
    if (this.held) return;
    const wanted = this.pace ? Math.min(1, this.outbox.length) : this.outbox.length;
    for (; this.scheduled < wanted; this.scheduled++) setImmediate(() => this.turn());
  }

  private turn(): void {
    this.scheduled--;
    if (this.held || !this.isOpen) return;
    const n = this.pace ? Math.min(this.outbox.length, this.pace(this.outbox)) : Math.min(1, this.outbox.length);
    const frames = this.outbox.splice(0, n);
    for (const f of frames) this.buffered -= f.length;
    if (n > 0 && this.buffered === 0) for (const h of [...this.drainHandlers]) h();
    for (const f of frames) this.peer.deliver(f);
    if (this.pace) this.schedule();
  }

  private deliver(frame: string): void {
    if (!this.isOpen) return;
    if (this.frameHandler) this.frameHandler(frame);
    else this.early.push(frame);
  }

  private shutdown(reason?: Error): void {
    if (!this.isOpen) return;
    this.isOpen = false;
    for (const h of [...this.closeHandlers]) h(reason);
    this.closeHandlers.clear();
  }
}

/** Two connected links: `a` talks to the peer `bId`, `b` to the peer `aId`; both deliver at `options.pace`. */
export function createMemoryLinkPair(
  aId = 'peer-a',
  bId = 'peer-b',
  options: MemoryLinkOptions = {},
): [MemoryLink, MemoryLink] {
  const a = new MemoryLink(bId, options.pace);
  const b = new MemoryLink(aId, options.pace);
  a.peer = b;
  b.peer = a;
  return [a, b];
}
