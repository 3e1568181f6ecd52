import type SimplePeer from 'simple-peer';
import { P2PSyncError, toP2PSyncError } from '../core/errors.js';
import { addListener, type Unsubscribe } from '../core/events.js';
import type { LinkPath, PeerLink } from '../core/link.js';
import { selectedPathOf } from './ice-report.js';
import { channelOf, clearPeerTimers, maxMessageSizeOf, type ChannelInternals } from './peer-internals.js';

/**
 * Low-water mark for `onDrain`: simple-peer's own back-pressure threshold (64 KiB), so its stream and our
 * drain events agree. A quarter of a maximum-size message: low enough to bound memory, high enough that the
 * channel never runs dry between a drain event and the sender's next frame on loopback.
 */
export const BUFFERED_LOW_WATER = 64 * 1024;

/**
 * A PeerLink over one connected simple-peer instance (its reliable, ordered data channel). Text frames are sent
 * as text; binary frames (RxDB peers send those) are decoded as UTF-8. The link owns the peer: closing the link
 * destroys it, and the peer closing or failing closes the link.
 *
 * Create the peer with `objectMode: true` so simple-peer hands text frames over as strings, not Buffers.
 */
export class WebRTCLink implements PeerLink {
  readonly maxMessageSize: number;
  private frameHandler: ((frame: string) => void) | undefined;
  private readonly early: string[] = [];
  private readonly closeHandlers = new Set<(reason?: Error) => void>();
  private readonly drainHandlers = new Set<() => void>();
  private readonly channel: ChannelInternals | undefined;
  private readonly onLow = (): void => {
    // The native event crosses threads and can arrive after later sends refilled the buffer; a stale one is
    // skipped, the next crossing of the threshold fires again.
    if (!this.isOpen || this.bufferedAmount() > BUFFERED_LOW_WATER) return;
    for (const h of [...this.drainHandlers]) h();
  };
  private isOpen = true;
  private closeReason: Error | undefined;

  constructor(
    private readonly peer: SimplePeer.Instance,
    readonly remotePeerId: string,
  ) {
    this.maxMessageSize = maxMessageSizeOf(peer);
    this.channel = channelOf(peer);
    if (this.channel) {
      this.channel.bufferedAmountLowThreshold = BUFFERED_LOW_WATER;
      // simple-peer owns `onbufferedamountlow`; a listener leaves its stream back-pressure intact
      this.channel.addEventListener('bufferedamountlow', this.onLow);
    }
    peer.on('data', (data: unknown) => this.receive(data));
    peer.on('error', (err: Error) => this.shutdown(err));
    peer.on('close', () => this.shutdown(this.closeReason));
    // a peer handed over already destroyed never emits 'close' again
    if (peer.destroyed || !this.channel || this.channel.readyState !== 'open') {
      queueMicrotask(() => this.fail(new P2PSyncError('E_PEER', 'data channel is not open')));
    }
  }

  get open(): boolean {
    return this.isOpen;
  }

  send(frame: string): void {
    if (!this.isOpen) return;
    try {
      this.peer.send(frame);
    } catch (err) {
      this.fail(toP2PSyncError(err, 'E_PEER'));
    }
  }

  bufferedAmount(): number {
    if (!this.isOpen || !this.channel) return 0;
    try {
      return this.channel.bufferedAmount;
    } catch {
      return 0;
    }
  }

  onFrame(handler: (frame: string) => void): Unsubscribe {
    this.frameHandler = handler;
    for (const frame of this.early.splice(0)) {
      if (this.frameHandler !== handler) break;
      handler(frame);
    }
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

  path(): LinkPath | undefined {
    return this.isOpen ? selectedPathOf(this.peer) : undefined;
  }

  close(): void {
    if (!this.isOpen) return;
    this.shutdown();
    this.peer.destroy();
  }

  private fail(err: Error): void {
    if (!this.isOpen) return;
    this.shutdown(err);
    // with the error, so that the peer's other observers (the mesh) learn why it closed
    this.peer.destroy(err);
  }

  private receive(data: unknown): void {
    if (!this.isOpen) return;
    let frame: string;
    if (typeof data === 'string') frame = data;
    else if (data instanceof Uint8Array) frame = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString();
    else return;
    if (this.frameHandler) this.frameHandler(frame);
    else this.early.push(frame);
  }

  private shutdown(reason?: Error): void {
    if (reason && !this.closeReason) this.closeReason = reason;
    if (!this.isOpen) return;
    this.isOpen = false;
    this.channel?.removeEventListener('bufferedamountlow', this.onLow);
    clearPeerTimers(this.peer);
    const handlers = [...this.closeHandlers];
    this.closeHandlers.clear();
    for (const h of handlers) h(reason);
  }
}
