import { describe, expect, it } from 'vitest';
import type { SignalMessage } from '../../src/core/signal.js';
import { SealedSignalChannel } from '../../src/trust/sealed-signal.js';
import { MemorySignalHub } from '../../src/transport/memory-signal.js';

const OFFER = {
  type: 'offer',
  sdp: 'v=0\r\na=fingerprint:sha-256 AA:BB\r\na=candidate:1 1 UDP 1 127.0.0.1 5000 typ host\r\n',
};

function setup(keyB = 1) {
  const hub = new MemorySignalHub();
  const seen: unknown[] = [];
  hub.filter = (m) => {
    seen.push(m.data);
    return 'deliver';
  };
  const rawA = hub.createClient(['aaaa']);
  const rawB = hub.createClient(['bbbb']);
  const drops: Array<[string, string, number]> = [];
  const a = new SealedSignalChannel(rawA, 'p2ps-room', Buffer.alloc(32, 1));
  const b = new SealedSignalChannel(rawB, 'p2ps-room', Buffer.alloc(32, keyB), (from, reason, total) =>
    drops.push([from, reason, total]),
  );
  rawA.connect();
  rawB.connect();
  const got: SignalMessage[] = [];
  b.onSignal((m) => got.push(m));
  return { hub, seen, rawA, rawB, a, b, got, drops };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('sealed signal channel', () => {
  it('delivers the signal unchanged while the relay sees only a sealed box', async () => {
    const s = setup();
    s.a.sendSignal('bbbb', OFFER, 'cid1');
    await tick();
    expect(s.got).toEqual([{ from: 'aaaa', data: OFFER, connectionId: 'cid1' }]);
    expect(s.seen).toHaveLength(1);
    const relayed = JSON.stringify(s.seen[0]);
    expect(Object.keys(s.seen[0] as object)).toEqual(['sealed']);
    for (const plain of ['offer', 'sdp', 'v=0', 'fingerprint', 'candidate', '127.0.0.1'])
      expect(relayed).not.toContain(plain);
  });

  it('drops and counts a payload sealed under another key, and never delivers it', async () => {
    const s = setup(2);
    s.a.sendSignal('bbbb', OFFER, 'cid1');
    s.a.sendSignal('bbbb', OFFER, 'cid1');
    await tick();
    expect(s.got).toEqual([]);
    expect(s.b.dropped).toBe(2);
    expect(s.drops).toEqual([
      ['aaaa', 'does not open', 1],
      ['aaaa', 'does not open', 2],
    ]);
  });

  it('drops a plain (unsealed) signal from a peer without the secret', async () => {
    const s = setup();
    s.rawA.sendSignal('bbbb', OFFER, 'cid1');
    await tick();
    expect(s.got).toEqual([]);
    expect(s.drops).toEqual([['aaaa', 'not sealed', 1]]);
  });

  it('drops a sealed payload the relay re-addressed to another attempt or replayed as another sender', async () => {
    const s = setup();
    let box: unknown;
    s.hub.filter = (m) => {
      box = m.data;
      return 'drop';
    };
    s.a.sendSignal('bbbb', OFFER, 'cid1');
    s.hub.filter = () => 'deliver';
    s.rawA.sendSignal('bbbb', box, 'cid2'); // same box, another connectionId
    const rawC = s.hub.createClient(['cccc']);
    rawC.connect();
    rawC.sendSignal('bbbb', box, 'cid1'); // same box, another sender
    await tick();
    expect(s.got).toEqual([]);
    expect(s.b.dropped).toBe(2);
  });

  it('passes member lists and status through, and unsubscribes from the inner channel', async () => {
    const s = setup();
    await tick();
    expect(s.b.peerId).toBe('bbbb');
    expect(s.b.peers).toEqual(['aaaa']);
    const c = new SealedSignalChannel(s.rawB, 'p2ps-room', Buffer.alloc(32, 1));
    const off = c.onSignal(() => {
      throw new Error('should be unsubscribed');
    });
    off();
    s.a.sendSignal('bbbb', OFFER, 'x');
    await tick();
    expect(s.got).toHaveLength(1);
  });
});
