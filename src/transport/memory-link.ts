import { MAX_FRAME_BYTES, type PeerLink } from '../core/link.js';

/**
 * An in-memory PeerLink pair for unit tests: frames are delivered asynchronously, in order, like a data channel.
 * `bufferedAmount` counts the characters sent but not yet delivered, so flow control can be observed.
 */
class MemoryLink implements PeerLink {
  peer!: MemoryLink;
  private frameHandler: ((frame: string) => void) | undefined;
  private readonly early: string[] = [];
  private readonly closeHandlers: Array<(reason?: Error) => void> = [];
  private readonly drainHandlers: Array<() => void> = [];
  private inFlight = 0;
  private isOpen = true;
  readonly maxMessageSize = MAX_FRAME_BYTES;

  constructor(readonly remotePeerId: string) {}

  get open(): boolean {
    return this.isOpen;
  }

  send(frame: string): void {
    if (!this.isOpen) return;
    this.inFlight += frame.length;
    setImmediate(() => {
      this.inFlight -= frame.length;
      if (this.inFlight === 0) for (const h of this.drainHandlers) h();
      if (this.isOpen) this.peer.deliver(frame);
    });
  }

  bufferedAmount(): number {
    return this.inFlight;
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
    // the remote notices a little later, as over a network
    setImmediate(() => this.peer.shutdown());
  }

  private deliver(frame: string): void {
    if (!this.isOpen) return;
    if (this.frameHandler) this.frameHandler(frame);
    else this.early.push(frame);
  }

  private shutdown(reason?: Error): void {
    if (!this.isOpen) return;
    this.isOpen = false;
    for (const h of this.closeHandlers) h(reason);
  }
}

/** Two connected links: `a` talks to the peer `bId`, `b` to the peer `aId`. */
export function createMemoryLinkPair(aId = 'peer-a', bId = 'peer-b'): [PeerLink, PeerLink] {
  const a = new MemoryLink(bId);
  const b = new MemoryLink(aId);
  a.peer = b;
  b.peer = a;
  return [a, b];
}
