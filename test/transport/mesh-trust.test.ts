import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SyncEvent } from '../../src/core/events.js';
import { createTrustGate } from '../../src/trust/gate.js';
import { loadOrCreateIdentity, trustForTopic, type DeviceIdentity, type TrustOptions } from '../../src/trust/index.js';
import type { MeshEvent } from '../../src/transport/mesh.js';
import { MeshWorld, type TestPeer } from './mesh-world.js';

/*
 * The trust layer over real WebRTC in one process: node-datachannel's native fingerprints, a certificate read from
 * the identity file, sealed signals on a memory hub, and the mesh's rejection and back-off.
 */

const FAST_BACKOFF = { initialMs: 100, maxMs: 2_000, factor: 2 };
const ofType = <T extends MeshEvent['event']>(peer: TestPeer, event: T): Array<Extract<MeshEvent, { event: T }>> =>
  peer.events.filter((e): e is Extract<MeshEvent, { event: T }> => e.event === event);

let dir: string;
let idA: DeviceIdentity;
let idB: DeviceIdentity;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'p2psync-mesh-trust-'));
  [idA, idB] = await Promise.all([loadOrCreateIdentity(join(dir, 'a.pem')), loadOrCreateIdentity(join(dir, 'b.pem'))]);
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe('mesh with the trust layer', () => {
  let world: MeshWorld;
  afterEach(async () => world?.dispose());

  function add(
    world: MeshWorld,
    id: string,
    identity: DeviceIdentity,
    trust: TrustOptions,
    events: SyncEvent[] = [],
  ): TestPeer {
    const t = trustForTopic(trust, 'mesh-trust-topic', (e) => {
      events.push(e);
      world.notify();
    });
    return world.add(
      [id],
      { gate: t.gate, certificatePemFile: identity.pemFile, backoff: FAST_BACKOFF },
      true,
      t.signal,
    );
  }

  it('connects peers with the same secret that allowlist each other: the DTLS certificate is the identity file', async () => {
    world = new MeshWorld();
    const seen: unknown[] = [];
    world.hub.filter = (m) => {
      seen.push(m.data);
      return 'deliver';
    };
    const secret = Buffer.from('same secret');
    const a = add(world, 'aaaa', idA, { secret, allowPeers: new Set([idB.deviceId]) });
    const b = add(world, 'bbbb', idB, { secret, allowPeers: new Set([idA.deviceId]) });
    await world.until('a link each way', () => a.mesh.links().length === 1 && b.mesh.links().length === 1);
    a.mesh.links()[0]!.send('after the handshake');
    await world.until('the frame', () => (b.received.get('aaaa') ?? []).includes('after the handshake'));
    expect(b.received.get('aaaa')).toEqual(['after the handshake']); // no handshake frame leaked through
    expect(seen.length).toBeGreaterThan(0);
    for (const data of seen) expect(Object.keys(data as object)).toEqual(['sealed']);
  });

  it('never negotiates with a peer holding another secret: its signals are dropped and counted', async () => {
    world = new MeshWorld();
    const eventsA: SyncEvent[] = [];
    const eventsB: SyncEvent[] = [];
    const a = add(world, 'aaaa', idA, { secret: Buffer.from('secret one') }, eventsA);
    const b = add(world, 'bbbb', idB, { secret: Buffer.from('secret two') }, eventsB);
    // the responder (b) drops the offer; nothing reaches its WebRTC stack
    await world.until('b drops a signal', () => eventsB.some((e) => e.event === 'signal-rejected'));
    expect(eventsB.find((e) => e.event === 'signal-rejected')).toMatchObject({
      peerId: 'aaaa',
      reason: 'does not open',
    });
    expect(ofType(b, 'attempt')).toEqual([]);
    expect(a.mesh.links()).toEqual([]);
  });

  it('rejects a peer with the wrong handshake key over real DTLS, closes the link and backs off', async () => {
    world = new MeshWorld();
    const gateA = createTrustGate({ room: 'r', authKey: Buffer.alloc(32, 1) });
    const gateB = createTrustGate({ room: 'r', authKey: Buffer.alloc(32, 2) });
    const a = world.add(['aaaa'], { gate: gateA, certificatePemFile: idA.pemFile, backoff: FAST_BACKOFF });
    const b = world.add(['bbbb'], { gate: gateB, certificatePemFile: idB.pemFile, backoff: FAST_BACKOFF });
    await world.until(
      'three rejections and retries at the initiator',
      () => ofType(a, 'rejected').length >= 3 && ofType(a, 'retry').length >= 3,
    );
    // Whichever side checks the other's proof first rejects it and closes; the other may then see only the close.
    const reasons = [...ofType(a, 'rejected'), ...ofType(b, 'rejected')].map((e) => e.reason);
    expect(reasons.some((r) => /proof does not verify/.test(r))).toBe(true);
    for (const r of reasons) expect(r).toMatch(/proof does not verify|^link closed during the trust handshake$/);
    expect(ofType(b, 'rejected').length).toBeGreaterThan(0);
    expect(a.announced).toEqual([]);
    expect(b.announced).toEqual([]);
    const delays = ofType(a, 'retry').map((e) => e.delayMs);
    expect(delays.slice(0, 3)).toEqual([100, 200, 400]); // never reset by a rejected link
  });

  it('rejects an unlisted device id with the allowlist alone (no secret)', async () => {
    world = new MeshWorld();
    const eventsA: SyncEvent[] = [];
    const a = add(world, 'aaaa', idA, { allowPeers: new Set([idA.deviceId]) }, eventsA);
    const b = add(world, 'bbbb', idB, {});
    await world.until('a rejects b', () => eventsA.some((e) => e.event === 'peer-rejected'));
    expect(eventsA.find((e) => e.event === 'peer-rejected')).toMatchObject({
      peerId: 'bbbb',
      deviceId: idB.deviceId,
      reason: `device id ${idB.deviceId} is not in the allowlist`,
    });
    expect(a.announced).toEqual([]);
    void b;
  });
});
