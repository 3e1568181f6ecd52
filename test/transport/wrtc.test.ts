import { describe, expect, it } from 'vitest';
import { MemorySignalHub } from '../../src/transport/memory-signal.js';
import { createMesh, type Mesh } from '../../src/transport/mesh.js';
import { rtcConfig, shutdownWebRTC, WebRTCRuntime, wrtc } from '../../src/transport/wrtc.js';
import { LOOPBACK, NET_TIMEOUT_MS, waitFor } from './helpers.js';

describe('the wrtc object for simple-peer', () => {
  it('creates offers as plain, writable {type, sdp} objects and leaves the SDP untouched', async () => {
    const pc = new wrtc.RTCPeerConnection(rtcConfig(LOOPBACK));
    try {
      pc.createDataChannel('probe');
      const offer = await pc.createOffer();
      expect(Object.keys(offer).sort()).toEqual(['sdp', 'type']);
      expect(offer.type).toBe('offer');
      expect(offer.sdp).toMatch(/^v=0/);
      // the DTLS role stays `actpass`, as browsers and RxDB apps require
      expect(offer.sdp).toContain('a=setup:actpass');
      offer.sdp = `${offer.sdp}`; // what simple-peer does; the polyfill's own object throws here
      expect(offer).toBeInstanceOf(Object);
    } finally {
      pc.close();
    }
  });

  it('maps the ICE options to the config simple-peer hands to libdatachannel', () => {
    expect(rtcConfig()).toEqual({ iceServers: [] });
    const servers = [{ urls: 'stun:stun.example.org:3478' }];
    const config = rtcConfig({ iceServers: servers, bindAddress: '127.0.0.1' });
    expect(config).toEqual({ iceServers: [{ urls: 'stun:stun.example.org:3478' }], bindAddress: '127.0.0.1' });
    // the polyfill normalises urls in place: the caller's objects must not change
    expect((config['iceServers'] as unknown[])[0]).not.toBe(servers[0]);
  });
});

describe('WebRTCRuntime', () => {
  it('counts users, releases idempotently, and only the last release cleans up', () => {
    let cleanups = 0;
    const runtime = new WebRTCRuntime({ cleanup: () => cleanups++ });
    const r1 = runtime.retain();
    const r2 = runtime.retain();
    expect(runtime.activeUsers).toBe(2);
    r1();
    r1();
    expect(runtime.activeUsers).toBe(1);
    expect(cleanups).toBe(0);
    r2();
    expect(runtime.activeUsers).toBe(0);
    expect(cleanups).toBe(1);
    runtime.retain()();
    expect(cleanups).toBe(2);
    const idle = new WebRTCRuntime({ cleanupWhenIdle: false, cleanup: () => cleanups++ });
    idle.retain()();
    expect(cleanups).toBe(2);
  });

  it('really cleans node-datachannel up after the last mesh closed, and WebRTC still works afterwards', async () => {
    let cleanups = 0;
    const runtime = new WebRTCRuntime({ cleanup: () => (cleanups++, shutdownWebRTC()) });
    const connectPair = async (): Promise<Mesh[]> => {
      const hub = new MemorySignalHub();
      const clients = [hub.createClient(), hub.createClient()];
      const meshes = clients.map((signal) => createMesh({ signal, ice: LOOPBACK, runtime }));
      const linked = meshes.map((m) => waitFor<void>('a link', (done) => m.onLink(() => done()), NET_TIMEOUT_MS));
      for (const c of clients) c.connect();
      await Promise.all(linked);
      for (const c of clients) c.disconnect();
      return meshes;
    };
    const first = await connectPair();
    const second = await connectPair();
    expect(runtime.activeUsers).toBe(4);
    await Promise.all(first.map((m) => m.close()));
    expect(cleanups).toBe(0);
    // the other meshes' links are untouched and still carry frames
    const [x, y] = second.map((m) => m.links()[0]!);
    const got = waitFor<string>('a frame', (done) => y!.onFrame(done), NET_TIMEOUT_MS);
    x!.send('still here');
    expect(await got).toBe('still here');
    await Promise.all(second.map((m) => m.close()));
    expect(cleanups).toBe(1);
    const third = await connectPair();
    expect(third.every((m) => m.links().length === 1)).toBe(true);
    await Promise.all(third.map((m) => m.close()));
    expect(cleanups).toBe(2);
  });
});
