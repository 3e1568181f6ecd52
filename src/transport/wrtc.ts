import { randomBytes } from 'node:crypto';
import { cleanup, PeerConnection, type RtcConfig } from 'node-datachannel';
import polyfill from 'node-datachannel/polyfill';
import { nativeIceServers, type IceServer } from './ice.js';
import { registerNative } from './native-handle.js';

export { rtcConfig, type IceConfig, type IceServer } from './ice.js';

interface PlainDescription {
  type: string;
  sdp: string;
}

function plain(description: { type?: unknown; sdp?: unknown }): PlainDescription {
  return { type: String(description.type), sdp: String(description.sdp) };
}

/**
 * The polyfill resolves createOffer/createAnswer to an RTCSessionDescription whose `sdp` is a getter without
 * setter; simple-peer 9 assigns `offer.sdp = sdpTransform(offer.sdp)` and dies with ERR_CREATE_OFFER. Handing
 * simple-peer plain `{type, sdp}` objects fixes that without touching the SDP (in particular `a=setup:actpass`
 * stays, which browsers and RxDB apps require).
 */
class ShimmedRTCPeerConnection extends polyfill.RTCPeerConnection {
  /**
   * Creates the native connection itself (the polyfill accepts one as `config.peerConnection`) so that
   * `nativeOf(peer)` can reach it, and hands libdatachannel structured ICE servers instead of the polyfill's
   * unescaped `turn:user:pass@host` strings.
   */
  constructor(config: Record<string, unknown> = {}) {
    const servers = Array.isArray(config['iceServers']) ? (config['iceServers'] as IceServer[]) : [];
    const nativeConfig: RtcConfig = { iceServers: nativeIceServers(servers) };
    if (typeof config['bindAddress'] === 'string') nativeConfig.bindAddress = config['bindAddress'];
    if (config['iceTransportPolicy'] === 'relay') nativeConfig.iceTransportPolicy = 'relay';
    const native = new PeerConnection(`p2psync-${randomBytes(4).toString('hex')}`, nativeConfig);
    try {
      super({ ...config, peerConnection: native } as ConstructorParameters<typeof polyfill.RTCPeerConnection>[0]);
    } catch (err) {
      native.close();
      throw err;
    }
    registerNative(this, native);
  }

  override async createOffer(): Promise<PlainDescription> {
    return plain(await super.createOffer());
  }

  override async createAnswer(): Promise<PlainDescription> {
    return plain(await super.createAnswer());
  }
}

/** The object simple-peer expects as its `wrtc` option. Immutable: safe to share between meshes. */
export const wrtc = Object.freeze({
  RTCPeerConnection: ShimmedRTCPeerConnection,
  RTCSessionDescription: polyfill.RTCSessionDescription,
  RTCIceCandidate: polyfill.RTCIceCandidate,
});

/**
 * Releases node-datachannel's native threads and closes every native peer connection in the process. Call it
 * once at the very end (the CLI does, before exiting), or let a WebRTCRuntime call it when its last user leaves.
 * Never call it while another mesh or link is still in use: it kills their connections too.
 */
export function shutdownWebRTC(): void {
  cleanup();
}

/**
 * Counts the meshes using node-datachannel in this process so that the last one to close can call
 * `shutdownWebRTC()`. One runtime is shared by every mesh of a process (pass the same instance to each).
 */
export class WebRTCRuntime {
  private users = 0;
  private readonly cleanupWhenIdle: boolean;
  private readonly cleanup: () => void;

  /**
   * @param options.cleanupWhenIdle call `cleanup` when the last user releases (default true)
   * @param options.cleanup what cleaning up means (default `shutdownWebRTC`; tests pass a spy)
   */
  constructor(options: { cleanupWhenIdle?: boolean; cleanup?: () => void } = {}) {
    this.cleanupWhenIdle = options.cleanupWhenIdle ?? true;
    this.cleanup = options.cleanup ?? shutdownWebRTC;
  }

  /** Number of meshes currently holding the runtime. */
  get activeUsers(): number {
    return this.users;
  }

  /** Registers one user; returns its (idempotent) release function. */
  retain(): () => void {
    this.users++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.users--;
      if (this.users === 0 && this.cleanupWhenIdle) this.cleanup();
    };
  }
}
