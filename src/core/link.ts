import type { Unsubscribe } from './events.js';

/**
 * The peer-link contract replication depends on: one reliable, ordered, message-oriented channel to one remote
 * peer. Implementations: WebRTC data channel (simple-peer over node-datachannel) and in-memory pairs.
 * Every implementation passes the contract suite in test/transport/contract.ts.
 */
export interface PeerLink {
  /** The remote's peer id as given by the signaling server (unique per signaling session). */
  readonly remotePeerId: string;
  /**
   * Largest message in bytes the remote accepts (SDP `a=max-message-size`; 262,144 for node-datachannel).
   * Senders may send frames up to a third of it in UTF-16 characters without chunking (UTF-8 needs at most 3
   * bytes per character); RxDB receivers accept unchunked frames of any size they can receive.
   */
  readonly maxMessageSize: number;
  /** True until the link closed, locally or remotely. */
  readonly open: boolean;
  /**
   * Sends one text frame (at most MAX_FRAME_CHARS characters). Ordered and reliable while the link is open;
   * frames sent after close are dropped. Never throws for a closed link.
   */
  send(frame: string): void;
  /** Bytes queued locally and not yet handed to the network: the sender's back-pressure signal. */
  bufferedAmount(): number;
  /**
   * Sets the frame handler, replacing any earlier one (frames arriving while none is set are queued). The returned
   * function removes the handler if it is still the current one.
   */
  onFrame(handler: (frame: string) => void): Unsubscribe;
  /** Called once when the link closes, for whatever reason. Returns a function that removes the handler. */
  onClose(handler: (reason?: Error) => void): Unsubscribe;
  /**
   * Called when `bufferedAmount()` falls below the low-water mark after having been above it. Returns a function
   * that removes the handler.
   */
  onDrain(handler: () => void): Unsubscribe;
  /** Closes the link. Idempotent. */
  close(): void;
  /** The network path the link uses, where the transport knows it (WebRTC: ICE's selected candidate pair). */
  path?(): LinkPath | undefined;
}

/** Largest frame any transport must carry; node-datachannel's message limit is 262,144 bytes. */
export const MAX_FRAME_BYTES = 262_144;

/** What the transport knows about a freshly connected link, for a LinkGate to decide on. */
export interface LinkCredentials {
  /** Whether this side made the offer. */
  readonly initiator: boolean;
  /** Device id (SHA-256 certificate fingerprint, colon hex) of our DTLS certificate; undefined if unknown. */
  readonly localFingerprint: string | undefined;
  /** Device id of the certificate the remote presented in the DTLS handshake; undefined if unknown. */
  readonly remoteFingerprint: string | undefined;
}

/**
 * Vets a connected link before anyone replicates over it: resolves to the link to hand on (possibly a wrapper that
 * consumed some frames first), or rejects with a LinkRejected; the transport then closes the link and backs off.
 */
export type LinkGate = (link: PeerLink, credentials: LinkCredentials) => Promise<PeerLink>;

/** A gate's refusal of a peer; `reason` is shown in `peer-rejected` events. */
export class LinkRejected extends Error {
  override readonly name = 'LinkRejected';
}

/** One end of the network path a link uses (ICE's selected candidate). */
export interface PathEnd {
  /** `host`, `srflx` (NAT mapping found by STUN), `prflx` (found by the peer) or `relay` (TURN). */
  type: string;
  /** `udp` or `tcp`. */
  protocol: string;
  address: string;
  port: number;
}

/** The candidate pair a WebRTC link uses; `relayed` when either end is a TURN relay. */
export interface LinkPath {
  local: PathEnd;
  remote: PathEnd;
  relayed: boolean;
}
