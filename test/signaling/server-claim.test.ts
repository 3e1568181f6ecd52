import { afterEach, describe, expect, it } from 'vitest';
import { SIGNAL_CLOSE_CODES } from '../../src/signaling/server.js';
import { claimedPeerId, createClaimKey, isClaimKey } from '../../src/signaling/claim.js';
import { Harness, httpGet, httpUrl, metric } from './server-helpers.js';

const h = new Harness();
afterEach(() => h.cleanup());

describe('peer id claims (docs/PROTOCOL.md §1.8)', () => {
  it('derives one 16-letter id per key, different for different keys', () => {
    const key = createClaimKey();
    expect(isClaimKey(key)).toBe(true);
    expect(claimedPeerId(key)).toMatch(/^[a-z]{16}$/);
    expect(claimedPeerId(key)).toBe(claimedPeerId(key));
    expect(claimedPeerId(createClaimKey())).not.toBe(claimedPeerId(key));
    for (const bad of ['', 'short', 'x'.repeat(44), `${'a'.repeat(42)}+`, 42, null])
      expect(isClaimKey(bad)).toBe(false);
  });

  it('gives the claimed id on any server, and the room sees that id', async () => {
    const [s1, s2] = [await h.server(), await h.server()];
    const key = createClaimKey();
    for (const s of [s1, s2]) {
      const c = await h.client(s.url);
      const assigned = await c.init();
      c.send({ type: 'claim', key });
      const claimed = await c.waitFor((m) => m.type === 'claimed');
      expect(claimed).toEqual({ type: 'claimed', yourPeerId: claimedPeerId(key) });
      expect(assigned).not.toBe(claimedPeerId(key));
      c.send({ type: 'join', room: 'claim-room' });
      await c.joined([claimedPeerId(key)]);
    }
  });

  it('a newer connection with the same key takes the id over; the old socket is closed with 4008 and leaves', async () => {
    const s = await h.server();
    const key = createClaimKey();
    const id = claimedPeerId(key);
    const other = await h.member(s.url, 'claim-room');
    const old = await h.client(s.url);
    await old.init();
    old.send({ type: 'claim', key });
    await old.waitFor((m) => m.type === 'claimed');
    old.send({ type: 'join', room: 'claim-room' });
    await other.joined([other.peerId, id]);
    const fresh = await h.client(s.url);
    await fresh.init();
    fresh.send({ type: 'claim', key });
    await fresh.waitFor((m) => m.type === 'claimed');
    expect((await old.closedWithin()).code).toBe(SIGNAL_CLOSE_CODES.replaced);
    await other.joined([other.peerId]);
    fresh.send({ type: 'join', room: 'claim-room' });
    await other.joined([other.peerId, id]);
    // Signals to the id reach the new socket.
    other.send({ type: 'signal', senderPeerId: other.peerId, receiverPeerId: id, room: 'claim-room', data: { n: 1 } });
    await fresh.waitFor((m) => m.type === 'signal' && (m.data as { n?: number }).n === 1);
    const m = await httpGet(httpUrl(s, '/metrics'));
    expect(metric(m.body, 'p2psync_signal_disconnects_total{reason="replaced"}')).toBe(1);
  });

  for (const [name, frames] of [
    ['a malformed key', [{ type: 'claim', key: 'not-a-key' }]],
    [
      'a claim after a join',
      [
        { type: 'join', room: 'claim-room' },
        { type: 'claim', key: createClaimKey() },
      ],
    ],
    [
      'a second claim',
      [
        { type: 'claim', key: createClaimKey() },
        { type: 'claim', key: createClaimKey() },
      ],
    ],
  ] as const) {
    it(`closes the socket with 4000 on ${name}`, async () => {
      const s = await h.server();
      const c = await h.client(s.url);
      await c.init();
      for (const f of frames) c.send(f);
      expect((await c.closedWithin()).code).toBe(SIGNAL_CLOSE_CODES.invalidMessage);
    });
  }
});
