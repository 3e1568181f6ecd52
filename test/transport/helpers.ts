import SimplePeer from 'simple-peer';
import type { PeerLink } from '../../src/core/link.js';
import { createMemoryLinkPair } from '../../src/transport/memory-link.js';
import { MemorySignalHub } from '../../src/transport/memory-signal.js';
import { clearPeerTimers } from '../../src/transport/peer-internals.js';
import { WebRTCLink } from '../../src/transport/webrtc-link.js';
import { rtcConfig, wrtc, type IceConfig } from '../../src/transport/wrtc.js';
import type { LinkPair } from './contract.js';

/** ICE on loopback only, as every WebRTC test must use. */
export const LOOPBACK: IceConfig = { iceServers: [], bindAddress: '127.0.0.1' };

/** Generous: the machine is shared and a DTLS retransmit alone costs 1 s. */
export const NET_TIMEOUT_MS = 20_000;

/**
 * Connect timeout for test meshes and pairs: far above the 1 s DTLS stall, low enough that a setup failure
 * which never reports an error (docs/PROTOCOL.md §5) is retried well within NET_TIMEOUT_MS.
 */
export const TEST_CONNECT_TIMEOUT_MS = 8_000;

/** Resolves when `start` calls `done`; rejects after `ms`. */
export function waitFor<T>(what: string, start: (done: (value: T) => void) => void, ms = NET_TIMEOUT_MS): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
    start((value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

export async function memoryPair(): Promise<LinkPair> {
  const [a, b] = createMemoryLinkPair('peer-a', 'peer-b');
  return {
    a,
    b,
    // memory links deliver on the next setImmediate turn
    arrived: () => new Promise((resolve) => setImmediate(() => setImmediate(resolve))),
    dispose: async () => {
      a.close();
      b.close();
    },
  };
}

function peerClosed(peer: SimplePeer.Instance): Promise<void> {
  return new Promise((resolve) => {
    if (peer.destroyed) resolve();
    else peer.once('close', () => resolve());
  });
}

async function connectPeers(): Promise<[SimplePeer.Instance, SimplePeer.Instance]> {
  const hub = new MemorySignalHub();
  const ca = hub.createClient(['peer-a']);
  const cb = hub.createClient(['peer-b']);
  ca.connect();
  cb.connect();
  const options = { wrtc, config: rtcConfig(LOOPBACK), trickle: true, objectMode: true } as SimplePeer.Options;
  const pa = new SimplePeer({ ...options, initiator: true });
  const pb = new SimplePeer({ ...options, initiator: false });
  pa.on('signal', (d: unknown) => ca.sendSignal('peer-b', d, 'connection'));
  pb.on('signal', (d: unknown) => cb.sendSignal('peer-a', d, 'connection'));
  ca.onSignal((m) => !pa.destroyed && pa.signal(m.data as SimplePeer.SignalData));
  cb.onSignal((m) => !pb.destroyed && pb.signal(m.data as SimplePeer.SignalData));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error('timed out waiting for a WebRTC pair to connect')),
        TEST_CONNECT_TIMEOUT_MS,
      );
      let n = 0;
      const one = (): void => {
        if (++n < 2) return;
        clearTimeout(timer);
        resolve();
      };
      const fail = (err: Error): void => {
        clearTimeout(timer);
        reject(err);
      };
      pa.once('connect', one);
      pb.once('connect', one);
      pa.once('error', fail);
      pb.once('error', fail);
    });
    return [pa, pb];
  } catch (err) {
    pa.destroy();
    pb.destroy();
    await Promise.all([peerClosed(pa), peerClosed(pb)]);
    clearPeerTimers(pa);
    clearPeerTimers(pb);
    throw err;
  }
}

/**
 * Two simple-peers in this process, signaled through the memory hub, wrapped in WebRTCLinks. Setup fails
 * intermittently (docs/PROTOCOL.md §5), so like the mesh it retries.
 */
export async function webrtcPair(): Promise<LinkPair & { peers: [SimplePeer.Instance, SimplePeer.Instance] }> {
  let peers: [SimplePeer.Instance, SimplePeer.Instance] | undefined;
  let lastError: unknown;
  for (let attempt = 0; attempt < 3 && !peers; attempt++) {
    try {
      peers = await connectPeers();
    } catch (err) {
      lastError = err;
    }
  }
  if (!peers) throw lastError;
  const [pa, pb] = peers;
  const counts = { a: 0, b: 0 };
  const waiters: Array<() => void> = [];
  const count = (side: 'a' | 'b') => () => {
    counts[side]++;
    for (const w of waiters.splice(0)) w();
  };
  pa.on('data', count('a'));
  pb.on('data', count('b'));
  const a: PeerLink = new WebRTCLink(pa, 'peer-b');
  const b: PeerLink = new WebRTCLink(pb, 'peer-a');
  return {
    a,
    b,
    peers,
    arrived: (side, n) =>
      waitFor<void>(`${n} frames at ${side}`, (done) => {
        const check = (): void => {
          if (counts[side] >= n) done();
          else waiters.push(check);
        };
        check();
      }),
    dispose: async () => {
      a.close();
      b.close();
      await Promise.all([peerClosed(pa), peerClosed(pb)]);
      clearPeerTimers(pa);
      clearPeerTimers(pb);
    },
  };
}
