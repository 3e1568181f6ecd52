import { describe, expect, it } from 'vitest';
import type { SyncEvent } from '../../src/core/events.js';
import { classifyTimeout, ConnectionDiagnosis } from '../../src/diagnosis/index.js';
import { candidateTypeOf, iceHint, type IceOutcome } from '../../src/transport/ice-report.js';

const counts = (local: Partial<IceOutcome['local']>, remote: Partial<IceOutcome['remote']> = {}): IceOutcome => ({
  local: { host: 0, srflx: 0, prflx: 0, relay: 0, ...local },
  remote: { host: 0, srflx: 0, prflx: 0, relay: 0, ...remote },
  iceState: 'failed',
  gatheringState: 'complete',
});

describe('classifyTimeout', () => {
  it('tells an empty topic, an ICE failure and a slow sync apart', () => {
    expect(classifyTimeout({ signaled: 0, connected: 0, handshaken: 0, waitPeers: 1 })).toBe('no-peer');
    expect(classifyTimeout({ signaled: 1, connected: 0, handshaken: 0, waitPeers: 1 })).toBe('ice-failed');
    expect(classifyTimeout({ signaled: 2, connected: 1, handshaken: 1, waitPeers: 2 })).toBe('ice-failed');
    expect(classifyTimeout({ signaled: 1, connected: 1, handshaken: 1, waitPeers: 1 })).toBe('not-in-sync');
    expect(classifyTimeout({ signaled: 1, connected: 1, handshaken: 0, waitPeers: 1 })).toBe('not-in-sync');
  });
});

describe('candidateTypeOf', () => {
  it('reads the type of simple-peer candidate signals and ignores anything else', () => {
    const signal = (line: string): unknown => ({ type: 'candidate', candidate: { candidate: line, sdpMid: '0' } });
    expect(candidateTypeOf(signal('a=candidate:1 1 UDP 2114977791 10.0.0.2 5000 typ host'))).toBe('host');
    expect(
      candidateTypeOf(signal('candidate:3 1 UDP 1048063 198.51.100.7 40075 typ relay raddr 0.0.0.0 rport 0')),
    ).toBe('relay');
    expect(candidateTypeOf(signal('candidate:3 1 UDP 1 1.2.3.4 5 typ bogus'))).toBeUndefined();
    expect(candidateTypeOf({ type: 'offer', sdp: 'typ host' })).toBeUndefined();
    expect(candidateTypeOf(null)).toBeUndefined();
  });
});

describe('iceHint', () => {
  const none = { stun: 0, turn: 0, relayOnly: false };
  it('points at the missing piece', () => {
    expect(iceHint({ ...counts({ host: 1 }, { host: 1 }), iceState: 'connected' }, none)).toMatch(
      /ICE found a path, but the DTLS/,
    );
    expect(iceHint(counts({ host: 1 }, { host: 1 }), none)).toMatch(/no ICE server is configured.*--ice-server stun:/);
    expect(iceHint(counts({ host: 1 }, { host: 1 }), { ...none, stun: 1 })).toMatch(/STUN server did not answer/);
    expect(iceHint(counts({ host: 1, srflx: 1 }, { host: 1, srflx: 1 }), { ...none, stun: 1 })).toMatch(
      /symmetric NAT.*TURN/,
    );
    expect(iceHint(counts({ host: 1, srflx: 1 }), { ...none, stun: 1 })).toMatch(/remote sent no ICE candidates/);
    expect(iceHint(counts({ host: 1 }), { ...none, turn: 1 }, '401 Unauthorized')).toMatch(
      /no relay address \(it answered 401 Unauthorized\).*credential/,
    );
    expect(iceHint(counts({ relay: 1 }, { relay: 1 }), { ...none, turn: 1, relayOnly: true })).toMatch(
      /even the relayed path failed/,
    );
    expect(iceHint(counts({ host: 1, relay: 1 }, { host: 1, relay: 1 }), { ...none, turn: 1 })).toMatch(
      /use --ice-transport relay on both sides/,
    );
  });
});

describe('ConnectionDiagnosis', () => {
  it('warns per failed attempt with the candidates, the TURN answer and a hint; counts peers for the timeout', async () => {
    const events: SyncEvent[] = [];
    const turn = { urls: 'turn:198.51.100.1:3478', username: 'u', credential: 'bad' };
    let probes = 0;
    const d = new ConnectionDiagnosis(
      { iceServers: [turn] },
      (e) => events.push(e),
      async () => (probes++, '401 Unauthorized'),
    );
    d.peers('topic-a', ['p1']);
    expect(d.timeout(5000, 0, 1).details).toMatchObject({
      diagnosis: 'ice-failed',
      peersSignaled: 1,
      peersConnected: 0,
    });
    const failed = {
      event: 'failed',
      remotePeerId: 'p1',
      connectionId: 'c',
      initiator: true,
      reason: 'connect timeout',
      ice: counts({ host: 1 }, { host: 1 }),
    } as const;
    d.meshEvent('topic-a', failed);
    d.meshEvent('topic-a', failed);
    await new Promise((r) => setImmediate(r));
    expect(probes).toBe(1); // cached between attempts
    expect(events).toHaveLength(2);
    expect(events[0]).toMatchObject({
      event: 'warning',
      code: 'E_ICE_FAILED',
      details: {
        peerId: 'p1',
        candidates: { local: { host: 1, relay: 0 } },
        turn: [{ url: 'turn:198.51.100.1:3478', ok: false, error: '401 Unauthorized' }],
      },
    });
    expect((events[0] as { message: string }).message).toMatch(/401 Unauthorized/);
    // an attempt we ended ourselves (no ICE outcome) is not a failure to report
    d.meshEvent('topic-a', {
      event: 'failed',
      remotePeerId: 'p1',
      connectionId: 'c',
      initiator: true,
      reason: 'mesh closed',
    });
    d.meshEvent('topic-a', { event: 'connected', remotePeerId: 'p1', connectionId: 'd', initiator: true, ms: 5 });
    await new Promise((r) => setImmediate(r));
    expect(events).toHaveLength(2);
    const t = d.timeout(5000, 0, 1);
    expect(t.details).toMatchObject({ diagnosis: 'not-in-sync', peersConnected: 1, iceFailures: 2 });
    expect(t.message).toMatch(/not in sync after 5 s: connected to 1 peer/);
    // a warning still waiting for its TURN probe when the run ends is dropped
    let answer!: (v: string) => void;
    const late = new ConnectionDiagnosis(
      { iceServers: [turn] },
      (e) => events.push(e),
      () => new Promise((r) => (answer = r)),
    );
    late.meshEvent('topic-a', failed);
    late.close();
    answer('401 Unauthorized');
    await new Promise((r) => setImmediate(r));
    expect(events).toHaveLength(2);
    expect(new ConnectionDiagnosis({}, () => undefined).timeout(3000, 0, 1)).toMatchObject({
      details: { diagnosis: 'no-peer' },
      message: expect.stringMatching(/no peer joined/),
    });
  });
});
