import { cleanup, PeerConnection, type RtcConfig } from 'node-datachannel';
import polyfill from 'node-datachannel/polyfill';
import { randomToken } from '../core/random.js';
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
   * Uses the native connection the mesh made (`config.peerConnection`, with the device certificate) or creates one,
   * so that `nativeOf(peer)` can always reach it (the polyfill accepts one as `config.peerConnection`).
   */
  constructor(config: Record<string, unknown> = {}) {
    const given = config['peerConnection'] instanceof PeerConnection ? config['peerConnection'] : undefined;
    const native = given ?? createNativePeerConnection(config);
    try {
      super({ ...config, peerConnection: native } as ConstructorParameters<typeof polyfill.RTCPeerConnection>[0]);
    } catch (err) {
      if (!given) native.close();
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
 * A native libdatachannel peer connection for one attempt, built from the mesh's RTCConfiguration as the polyfill
 * would build it, plus the device certificate. The polyfill accepts it as `config.peerConnection` and then uses it
 * instead of creating its own, so the mesh keeps a handle on it: the polyfill's getFingerprints() is a stub, and
 * only the native object tells which certificate the remote presented in DTLS.
 *
 * @param pemFile a PEM file holding the certificate and its private key (both read from the same file)
 */
export function createNativePeerConnection(config: Record<string, unknown>, pemFile?: string): PeerConnection {
  const servers = Array.isArray(config['iceServers']) ? (config['iceServers'] as IceServer[]) : [];
  // structured ICE servers: the polyfill's inline `turn:user:pass@host` breaks on credentials with `@` or `:`
  const native: RtcConfig = { iceServers: nativeIceServers(servers) };
  if (typeof config['bindAddress'] === 'string') native.bindAddress = config['bindAddress'];
  if (config['iceTransportPolicy'] === 'relay') native.iceTransportPolicy = 'relay';
  if (pemFile !== undefined) {
    native.certificatePemFile = pemFile;
    native.keyPemFile = pemFile;
  }
  return new PeerConnection(`p2psync-${randomToken(7)}`, native);
}

/** SHA-256 fingerprints of a connected native peer connection, upper-case colon hex; undefined when unknown. */
export function fingerprintsOf(pc: PeerConnection): { local: string | undefined; remote: string | undefined } {
  let local: string | undefined;
  let remote: string | undefined;
  try {
    // libdatachannel offers no getter for its own certificate; its SDP carries the fingerprint the remote checks
    local = /^a=fingerprint:sha-256 ([0-9A-Fa-f:]+)\s*$/m.exec(pc.localDescription()?.sdp ?? '')?.[1]?.toUpperCase();
  } catch {
    local = undefined;
  }
  try {
    const fp = pc.remoteFingerprint();
    if (fp.algorithm === 'sha-256' && fp.value) remote = fp.value.toUpperCase();
  } catch {
    remote = undefined;
  }
  return { local, remote };
}

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
