import type { Unsubscribe } from '../core/events.js';
import type { SignalChannel, SignalMessage, SignalStatus } from '../core/signal.js';
import { open, seal, signalAad } from './seal.js';

/** Why a relayed signal was dropped before reaching WebRTC. */
export type DroppedSignalReason = 'not sealed' | 'does not open';

/**
 * A SignalChannel whose payloads travel sealed (AES-256-GCM under the topic's seal key). What the relay sees of a
 * `signal` is `data: {"sealed": "<base64url>"}`; a payload that is not sealed, or does not open under our key for
 * exactly this sender, receiver, room and attempt, is dropped and counted and never reaches the mesh.
 */
export class SealedSignalChannel implements SignalChannel {
  private readonly handlers = new Set<(message: SignalMessage) => void>();
  private unsubscribe: (() => void) | undefined;
  private droppedCount = 0;

  constructor(
    private readonly inner: SignalChannel,
    private readonly room: string,
    private readonly key: Uint8Array,
    private readonly onDropped?: (from: string, reason: DroppedSignalReason, total: number) => void,
  ) {}

  /** Signals dropped so far because they were not sealed or did not open. */
  get dropped(): number {
    return this.droppedCount;
  }

  get peerId(): string | undefined {
    return this.inner.peerId;
  }

  get peers(): readonly string[] {
    return this.inner.peers;
  }

  onPeers(handler: (peerIds: string[]) => void): Unsubscribe {
    return this.inner.onPeers(handler);
  }

  onStatus(handler: (status: SignalStatus) => void): Unsubscribe {
    return this.inner.onStatus(handler);
  }

  onSignal(handler: (message: SignalMessage) => void): Unsubscribe {
    this.handlers.add(handler);
    this.unsubscribe ??= this.inner.onSignal((m) => this.receive(m));
    return () => {
      this.handlers.delete(handler);
      if (this.handlers.size === 0) {
        this.unsubscribe?.();
        this.unsubscribe = undefined;
      }
    };
  }

  sendSignal(to: string, data: unknown, connectionId?: string): void {
    const own = this.inner.peerId;
    if (own === undefined) return; // disconnected: dropped, as the contract says
    const sealed = seal(this.key, JSON.stringify(data), signalAad(this.room, own, to, connectionId));
    this.inner.sendSignal(to, { sealed }, connectionId);
  }

  private receive(m: SignalMessage): void {
    const own = this.inner.peerId;
    const box = typeof m.data === 'object' && m.data !== null ? (m.data as { sealed?: unknown }).sealed : undefined;
    if (box === undefined || own === undefined) return this.drop(m.from, 'not sealed');
    const text = open(this.key, box, signalAad(this.room, String(m.from), own, m.connectionId));
    if (text === undefined) return this.drop(m.from, 'does not open');
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      return this.drop(m.from, 'does not open'); // sealed by a peer with our key: not expected, still not passed on
    }
    const message: SignalMessage =
      m.connectionId === undefined ? { from: m.from, data } : { from: m.from, data, connectionId: m.connectionId };
    for (const h of [...this.handlers]) h(message);
  }

  private drop(from: unknown, reason: DroppedSignalReason): void {
    this.droppedCount++;
    this.onDropped?.(String(from), reason, this.droppedCount);
  }
}
