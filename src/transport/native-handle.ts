import type SimplePeer from 'simple-peer';
import type { PeerConnection } from 'node-datachannel';

/*
 * The one place that hands out node-datachannel's native PeerConnection behind a simple-peer instance (for the
 * selected candidate pair, ICE states, DTLS fingerprints). The shimmed RTCPeerConnection (wrtc.ts) creates the
 * native connection itself, passes it to the polyfill as `config.peerConnection` and registers it here.
 */
const handles = new WeakMap<object, PeerConnection>();

/** Called by the shimmed RTCPeerConnection for the native connection it created. */
export function registerNative(rtc: object, native: PeerConnection): void {
  handles.set(rtc, native);
}

/** The native PeerConnection of a simple-peer instance made with our `wrtc`; undefined once destroyed. */
export function nativeOf(peer: SimplePeer.Instance): PeerConnection | undefined {
  const rtc = (peer as unknown as { _pc?: object | null })._pc;
  return rtc ? handles.get(rtc) : undefined;
}
