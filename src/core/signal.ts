import type { Unsubscribe } from './events.js';

/**
 * The contract between a signaling client and the WebRTC mesh (docs/PROTOCOL.md §1.5). The mesh only needs to know who
 * it is, who else is in the topic, and how to exchange opaque simple-peer signals with them.
 *
 * Implementations: the WebSocket client in src/signaling/client.ts and the in-process hub in
 * src/transport/memory-signal.ts (tests). Both deliver every handler call asynchronously (never from inside
 * `sendSignal` or a handler registration).
 */

/** One relayed simple-peer signal, addressed to this peer. */
export interface SignalMessage {
  /** The sender's peer id (`senderPeerId` on the wire). */
  readonly from: string;
  /** The simple-peer signal: `{type:'offer'|'answer',sdp}` or `{type:'candidate',candidate}`. Untrusted. */
  readonly data: unknown;
  /** The attempt's id, when the sender included one (older RxDB clients do not). */
  readonly connectionId?: string;
}

/** Connection state of the signaling channel. */
export interface SignalStatus {
  /** True while connected and `init` has assigned an id. */
  readonly connected: boolean;
  /** Own peer id while connected; a new id after every reconnect. */
  readonly peerId?: string;
}

export interface SignalChannel {
  /** Own peer id while connected to signaling (after `init`), `undefined` otherwise. */
  readonly peerId: string | undefined;
  /**
   * The latest room member list minus own id (from the last `joined`), in join order; empty while
   * disconnected. Lets a mesh created after the channel connected start from the current room.
   */
  readonly peers: readonly string[];
  /**
   * Called on every `joined` with the full member list minus own id (possibly unchanged or empty).
   * Returns a function that removes the handler.
   */
  onPeers(handler: (peerIds: string[]) => void): Unsubscribe;
  /**
   * Called for each `signal` addressed to the current own peer id (others are dropped by the channel).
   * Returns a function that removes the handler.
   */
  onSignal(handler: (message: SignalMessage) => void): Unsubscribe;
  /**
   * Called on every change of connection state: `{connected: true, peerId}` after `init`,
   * `{connected: false}` when the socket is lost (the channel then reconnects by itself, with a new id).
   * Returns a function that removes the handler.
   */
  onStatus(handler: (status: SignalStatus) => void): Unsubscribe;
  /**
   * Sends a simple-peer signal to `to` in the current room, tagged with `connectionId` (omitted on the wire
   * when undefined: only when answering an old client whose offer carried none). Silently dropped while
   * disconnected; never throws.
   */
  sendSignal(to: string, data: unknown, connectionId?: string): void;
}
