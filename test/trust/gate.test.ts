import { describe, expect, it } from 'vitest';
import { LinkRejected, type LinkCredentials, type PeerLink } from '../../src/core/link.js';
import { createTrustGate } from '../../src/trust/gate.js';
import { createMemoryLinkPair } from '../../src/transport/memory-link.js';

const FP_A = 'AA:' + '11:'.repeat(30) + '11';
const FP_B = 'BB:' + '22:'.repeat(30) + '22';
const FP_M = 'CC:' + '33:'.repeat(30) + '33';
const credsA: LinkCredentials = { initiator: true, localFingerprint: FP_A, remoteFingerprint: FP_B };
const credsB: LinkCredentials = { initiator: false, localFingerprint: FP_B, remoteFingerprint: FP_A };

function gate(key: number, extra: Partial<Parameters<typeof createTrustGate>[0]> = {}, rejected: string[] = []) {
  return createTrustGate({
    room: 'p2ps-room',
    authKey: Buffer.alloc(32, key),
    onRejected: (_l, reason) => rejected.push(reason),
    ...extra,
  });
}

function frames(link: PeerLink): string[] {
  const got: string[] = [];
  link.onFrame((f) => got.push(f));
  return got;
}

function closed(link: PeerLink): Promise<void> {
  return new Promise((resolve) => link.onClose(() => resolve()));
}

describe('trust gate', () => {
  it('hands on both links after the handshake; replication frames sent right after it arrive intact and in order', async () => {
    const [a, b] = createMemoryLinkPair('peer-a', 'peer-b');
    const [ta, tb] = await Promise.all([gate(1)(a, credsA), gate(1)(b, credsB)]);
    // B starts replicating at once; A registers its handler later: nothing may be lost or reordered
    tb.send('{"id":"1","method":"token","params":[]}');
    tb.send('{"id":"2","method":"token","params":[]}');
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    const got = frames(ta);
    await new Promise((r) => setImmediate(r));
    expect(got).toEqual(['{"id":"1","method":"token","params":[]}', '{"id":"2","method":"token","params":[]}']);
    expect(ta.remotePeerId).toBe('peer-b');
    ta.close();
  });

  it('rejects a peer with the wrong key on both sides and reads none of its frames', async () => {
    const [a, b] = createMemoryLinkPair();
    const rejectedA: string[] = [];
    const pa = gate(1, {}, rejectedA)(a, credsA);
    const pb = gate(2)(b, credsB);
    await expect(pa).rejects.toBeInstanceOf(LinkRejected);
    await expect(pb).rejects.toThrow(/trust handshake failed: proof does not verify/);
    expect(rejectedA).toEqual([expect.stringMatching(/proof does not verify/)]);
  });

  it('rejects a relay in the middle: each side sees the relay certificate', async () => {
    const [a, b] = createMemoryLinkPair();
    const pa = gate(1)(a, { ...credsA, remoteFingerprint: FP_M });
    const pb = gate(1)(b, { ...credsB, remoteFingerprint: FP_M });
    await expect(pa).rejects.toThrow(/proof does not verify/);
    await expect(pb).rejects.toThrow(/proof does not verify/);
  });

  it('rejects a peer that speaks replication instead of the handshake (no frame reaches replication)', async () => {
    const [a, b] = createMemoryLinkPair();
    const pa = gate(1)(a, credsA);
    b.onFrame(() => undefined);
    b.send('{"id":"x","method":"token","params":[]}');
    await expect(pa).rejects.toThrow(/not a trust handshake frame/);
  });

  it('rejects a silent peer after the timeout, and a peer whose link closes mid-handshake', async () => {
    const [a, b] = createMemoryLinkPair();
    b.onFrame(() => undefined);
    await expect(gate(1, { timeoutMs: 50 })(a, credsA)).rejects.toThrow(/timed out after 50 ms/);
    const [c, d] = createMemoryLinkPair();
    d.onFrame(() => d.close());
    await expect(gate(1)(c, credsA)).rejects.toThrow(/link closed during the trust handshake/);
  });

  it('with an allowlist, rejects an unlisted verified fingerprint before any handshake frame is sent', async () => {
    const [a, b] = createMemoryLinkPair();
    const seen = frames(b);
    const rejected: string[] = [];
    await expect(gate(1, { allow: new Set([FP_M]) }, rejected)(a, credsA)).rejects.toThrow(
      `device id ${FP_B} is not in the allowlist`,
    );
    expect(rejected).toHaveLength(1);
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual([]);
  });

  it('with an allowlist only (no secret), passes a listed peer as is and rejects an unknown fingerprint', async () => {
    const [a] = createMemoryLinkPair();
    const g = createTrustGate({ room: 'topic-x', allow: new Set([FP_B]) });
    await expect(g(a, credsA)).resolves.toBe(a);
    await expect(g(a, { ...credsA, remoteFingerprint: undefined })).rejects.toThrow(/fingerprint is unknown/);
  });

  it("closing a link is the caller's job: the gate only decides", async () => {
    const [a, b] = createMemoryLinkPair();
    const done = closed(b);
    await expect(gate(1, { timeoutMs: 20 })(a, credsA)).rejects.toBeInstanceOf(LinkRejected);
    expect(a.open).toBe(true);
    a.close();
    await done;
  });
});
