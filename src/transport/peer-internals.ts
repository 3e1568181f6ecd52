import type SimplePeer from 'simple-peer';
import { MAX_FRAME_BYTES } from '../core/link.js';

/*
 * The few simple-peer 9.11.1 internals the transport reads. simple-peer is unmaintained, so they are stable;
 * every access is defensive anyway (optional chaining, type checks).
 */

/** The polyfill's RTCDataChannel, as far as the link needs it. */
export interface ChannelInternals {
  readonly bufferedAmount: number;
  bufferedAmountLowThreshold: number;
  readonly readyState: string;
  addEventListener(type: 'bufferedamountlow', listener: () => void): void;
  removeEventListener(type: 'bufferedamountlow', listener: () => void): void;
}

interface PeerInternals {
  _channel?: ChannelInternals | null;
  _pc?: {
    connectionState?: unknown;
    iceConnectionState?: unknown;
    signalingState?: unknown;
    sctp?: { maxMessageSize?: unknown } | null;
    remoteDescription?: { sdp?: unknown } | null;
  } | null;
  _iceCompleteTimer?: ReturnType<typeof setTimeout> | null;
}

function internals(peer: SimplePeer.Instance): PeerInternals {
  return peer as unknown as PeerInternals;
}

/** The data channel of a connected peer, if it still has one. */
export function channelOf(peer: SimplePeer.Instance): ChannelInternals | undefined {
  return internals(peer)._channel ?? undefined;
}

/**
 * simple-peer starts a 5 s "ICE complete" timer on the first local candidate and never clears it, which keeps
 * a process alive 5 s after its last peer closed. Clearing it is harmless once the peer is destroyed.
 */
export function clearPeerTimers(peer: SimplePeer.Instance): void {
  const timer = internals(peer)._iceCompleteTimer;
  if (timer) clearTimeout(timer);
}

/** A peer connection's states, for diagnostics: `connection/ice/signaling[/channel]`. */
export function describePeerState(peer: SimplePeer.Instance): string {
  const { _pc: pc, _channel: channel } = internals(peer);
  if (!pc) return 'closed';
  try {
    const states = [pc.connectionState, pc.iceConnectionState, pc.signalingState].map(String);
    if (channel) states.push(`channel ${channel.readyState}`);
    return states.join('/');
  } catch {
    return 'unknown';
  }
}

/** RFC 8841: a peer that advertises no `a=max-message-size` accepts 64 KiB. */
export const MAX_MESSAGE_SIZE_UNADVERTISED = 65_536;

/**
 * The largest message the remote accepts according to its SDP: the `a=max-message-size` value (0 means "no
 * limit"), 65,536 when the SDP says nothing, MAX_FRAME_BYTES when there is no SDP to read. Never more than
 * MAX_FRAME_BYTES, node-datachannel's own limit for sending.
 */
export function maxMessageSizeFromSdp(sdp: string | undefined): number {
  if (!sdp) return MAX_FRAME_BYTES;
  const match = /^a=max-message-size:(\d+)\s*$/m.exec(sdp);
  if (!match) return MAX_MESSAGE_SIZE_UNADVERTISED;
  const size = Number(match[1]);
  return size === 0 ? MAX_FRAME_BYTES : Math.min(size, MAX_FRAME_BYTES);
}

/**
 * The remote's message limit for a connected peer: the SCTP transport's figure (libdatachannel computes it from
 * the remote SDP), else the remote SDP read directly, else MAX_FRAME_BYTES.
 */
export function maxMessageSizeOf(peer: SimplePeer.Instance): number {
  const pc = internals(peer)._pc;
  let sctpSize: unknown;
  try {
    sctpSize = pc?.sctp?.maxMessageSize;
  } catch {
    sctpSize = undefined;
  }
  if (typeof sctpSize === 'number' && Number.isFinite(sctpSize) && sctpSize > 0) {
    return Math.min(sctpSize, MAX_FRAME_BYTES);
  }
  let sdp: unknown;
  try {
    sdp = pc?.remoteDescription?.sdp;
  } catch {
    sdp = undefined;
  }
  return maxMessageSizeFromSdp(typeof sdp === 'string' ? sdp : undefined);
}
