import { afterEach, describe, expect, it } from 'vitest';
import { SIGNAL_CLOSE_CODES, type SignalServerEvent } from '../../src/signaling/server.js';
import { createPeerId, isValidRoom, parseClientFrame } from '../../src/signaling/server-protocol.js';
import { TokenBucket, resolveLimits, DEFAULT_SIGNAL_LIMITS } from '../../src/signaling/server-limits.js';
import { tokenMatches } from '../../src/signaling/server-http.js';
import { Harness, httpGet, httpUrl, metric } from './server-helpers.js';

const h = new Harness();
afterEach(() => h.cleanup());

describe('signaling protocol (RxDB 17 compatible)', () => {
  it('sends init with an unguessable server-assigned id right after the upgrade', async () => {
    const s = await h.server();
    const a = await h.client(s.url);
    const b = await h.client(s.url);
    const [ida, idb] = await Promise.all([a.init(), b.init()]);
    expect(ida).toMatch(/^[a-z]{16}$/);
    expect(idb).toMatch(/^[a-z]{16}$/);
    expect(ida).not.toBe(idb);
    expect(a.received[0]).toEqual({ type: 'init', yourPeerId: ida, claim: true });
  });

  it('reports connection, join and disconnect on events$, then closed, and completes it on close', async () => {
    const s = await h.server();
    const seen: Array<SignalServerEvent['event']> = [];
    let completed = false;
    s.events$.subscribe({ next: (e) => void seen.push(e.event), complete: () => (completed = true) });
    await h.member(s.url, 'events-room');
    expect(seen).toEqual(['connection', 'join']);
    await s.close();
    expect(seen).toEqual(['connection', 'join', 'disconnect', 'closed']);
    expect(completed).toBe(true);
  });

  it('sends the full member list, receiver included, in join order, to every member on join and leave', async () => {
    const s = await h.server();
    const room = 'room-one';
    const a = await h.client(s.url);
    const b = await h.client(s.url);
    const c = await h.client(s.url);
    await Promise.all([a.init(), b.init(), c.init()]);
    a.send({ type: 'join', room });
    expect(await a.joined([a.peerId])).toEqual({ type: 'joined', otherPeerIds: [a.peerId] });
    b.send({ type: 'join', room });
    await a.joined([a.peerId, b.peerId]);
    await b.joined([a.peerId, b.peerId]);
    c.send({ type: 'join', room });
    for (const x of [a, b, c]) await x.joined([a.peerId, b.peerId, c.peerId]);
    b.ws.close();
    await a.joined([a.peerId, c.peerId]);
    await c.joined([a.peerId, c.peerId]);
  });

  it('ignores a second join of the same room', async () => {
    const s = await h.server();
    const a = await h.member(s.url, 'room-dup');
    a.send({ type: 'join', room: 'room-dup' });
    a.send({ type: 'ping' });
    // A later, observable event proves the duplicate join produced nothing in between.
    const b = await h.member(s.url, 'room-dup');
    const next = await a.waitFor(() => true);
    expect(next).toEqual({ type: 'joined', otherPeerIds: [a.peerId, b.peerId] });
  });

  it('relays signal verbatim, unknown fields and field order included', async () => {
    const s = await h.server();
    const a = await h.member(s.url, 'relay-room');
    const b = await h.member(s.url, 'relay-room');
    const text =
      `{"type":"signal","senderPeerId":"${a.peerId}","receiverPeerId":"${b.peerId}","room":"relay-room",` +
      `"data":{"type":"candidate","candidate":{"candidate":"a=candidate:1 1 UDP 2114977791 192.0.2.2 41670 typ host","sdpMLineIndex":null,"sdpMid":"0"}},` +
      `"connectionId":"qwhxkzmbda","extra":{"nested":[1,2,{"x":"ü"}]},"zzz":true}`;
    a.send(text);
    await b.waitFor((m) => m.type === 'signal');
    expect(b.rawFrames.at(-1)).toBe(text);
  });

  it('relays a signal that arrives as a binary frame holding JSON, as text', async () => {
    const s = await h.server();
    const a = await h.member(s.url, 'binary-room');
    const b = await h.member(s.url, 'binary-room');
    const msg = {
      type: 'signal',
      senderPeerId: a.peerId,
      receiverPeerId: b.peerId,
      room: 'binary-room',
      data: { type: 'answer', sdp: 'v=0' },
    };
    a.ws.send(Buffer.from(JSON.stringify(msg)), { binary: true });
    expect(await b.waitFor((m) => m.type === 'signal')).toEqual(msg);
  });

  it('does not answer ping, and ping counts as a valid message', async () => {
    const s = await h.server();
    const a = await h.member(s.url, 'ping-room');
    a.send({ type: 'ping' });
    a.send({ type: 'ping' });
    const b = await h.member(s.url, 'ping-room');
    // The next thing a sees is the joined list, not a pong of any kind.
    expect(await a.waitFor(() => true)).toEqual({ type: 'joined', otherPeerIds: [a.peerId, b.peerId] });
  });

  it('keeps the 6-99 character room rule and closes with 4002 outside it', async () => {
    const s = await h.server();
    for (const room of ['abcdef', 'x'.repeat(99), '日本語の部屋名']) {
      const c = await h.member(s.url, room);
      c.ws.close();
    }
    for (const room of ['abcde', 'x'.repeat(100), '']) {
      const c = await h.client(s.url);
      await c.init();
      c.send({ type: 'join', room });
      expect(await c.closedWithin()).toEqual({ code: SIGNAL_CLOSE_CODES.invalidRoom, reason: 'invalid room' });
    }
  });

  it('drops signals to unknown receivers and to peers in no shared room, and counts them', async () => {
    const s = await h.server();
    const a = await h.member(s.url, 'room-aaaa');
    const b = await h.member(s.url, 'room-bbbb');
    a.send({ type: 'signal', senderPeerId: a.peerId, receiverPeerId: b.peerId, room: 'room-bbbb', data: {} });
    a.send({ type: 'signal', senderPeerId: a.peerId, receiverPeerId: 'nosuchpeerxxxxxx', room: 'room-aaaa', data: {} });
    a.send({ type: 'signal', senderPeerId: a.peerId, receiverPeerId: 42, room: 'room-aaaa', data: {} });
    // Once b shares a room with a, the next signal goes through: the earlier one must not have.
    b.send({ type: 'join', room: 'room-aaaa' });
    await a.joined([a.peerId, b.peerId]);
    a.send({ type: 'signal', senderPeerId: a.peerId, receiverPeerId: b.peerId, room: 'room-aaaa', data: { n: 2 } });
    const got = await b.waitFor((m) => m.type === 'signal');
    expect(got.data).toEqual({ n: 2 });
    const metrics = (await httpGet(httpUrl(s, '/metrics'))).body;
    expect(metric(metrics, 'p2psync_signal_frames_rejected_total{reason="no_shared_room"}')).toBe(1);
    expect(metric(metrics, 'p2psync_signal_frames_rejected_total{reason="unknown_receiver"}')).toBe(2);
    expect(metric(metrics, 'p2psync_signal_frames_relayed_total')).toBe(1);
    expect(a.ws.readyState).toBe(a.ws.OPEN);
  });

  it('lets one socket join several rooms and relays within any shared room', async () => {
    const s = await h.server();
    const a = await h.member(s.url, 'room-first');
    a.send({ type: 'join', room: 'room-second' });
    await a.joined([a.peerId]);
    const b = await h.member(s.url, 'room-second');
    b.send({ type: 'signal', senderPeerId: b.peerId, receiverPeerId: a.peerId, room: 'room-second', data: 1 });
    expect((await a.waitFor((m) => m.type === 'signal')).data).toBe(1);
  });
});

describe('signaling server building blocks', () => {
  it('parses frames without trusting them', () => {
    expect(parseClientFrame('null')).toMatchObject({ ok: false, reason: 'invalid_message' });
    expect(parseClientFrame('[1]')).toMatchObject({ ok: false, reason: 'invalid_message' });
    expect(parseClientFrame('"join"')).toMatchObject({ ok: false, reason: 'invalid_message' });
    expect(parseClientFrame('{"type":5}')).toMatchObject({ ok: false, reason: 'invalid_message' });
    expect(parseClientFrame('{"type":"leave"}')).toMatchObject({ ok: false, reason: 'unknown_type' });
    expect(parseClientFrame('{"type":"toString"}')).toMatchObject({ ok: false, reason: 'unknown_type' });
    expect(parseClientFrame('{nope')).toMatchObject({ ok: false, reason: 'invalid_json' });
    expect(parseClientFrame('{"type":"join","room":"abcdef"}')).toEqual({
      ok: true,
      message: { type: 'join', room: 'abcdef' },
    });
    const deep =
      '{"type":"signal","senderPeerId":"a","receiverPeerId":"b","data":' +
      '['.repeat(50_000) +
      ']'.repeat(50_000) +
      '}';
    expect(parseClientFrame(deep)).toMatchObject({ ok: true, message: { type: 'signal', raw: deep } });
  });

  it('applies the room rule in UTF-16 code units', () => {
    expect(isValidRoom('abcde')).toBe(false);
    expect(isValidRoom('abcdef')).toBe(true);
    expect(isValidRoom('😀😀😀')).toBe(true); // 6 code units
    expect(isValidRoom('x'.repeat(99))).toBe(true);
    expect(isValidRoom('x'.repeat(100))).toBe(false);
    expect(isValidRoom(123456)).toBe(false);
    expect(isValidRoom(['abcdefg'])).toBe(false);
  });

  it('creates uniform lowercase ids', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => createPeerId()));
    expect(ids.size).toBe(1000);
    const letters = new Set([...ids].join(''));
    expect(letters.size).toBe(26);
    for (const id of ids) expect(id).toMatch(/^[a-z]{16}$/);
  });

  it('token bucket allows a burst of two seconds and refills with time', () => {
    const b = new TokenBucket(5, 0);
    let taken = 0;
    while (b.take(0)) taken++;
    expect(taken).toBe(10);
    expect(b.take(100)).toBe(false); // half a token
    expect(b.take(200)).toBe(true); // 0.5 + 0.5
    expect(b.take(200)).toBe(false);
  });

  it('validates limits', () => {
    expect(resolveLimits()).toEqual(DEFAULT_SIGNAL_LIMITS);
    expect(resolveLimits({ maxPeersPerRoom: 3 }).maxPeersPerRoom).toBe(3);
    expect(() => resolveLimits({ maxFrameBytes: 0 })).toThrow(/maxFrameBytes/);
    expect(() => resolveLimits({ idleTimeoutMs: 1.5 })).toThrow(/idleTimeoutMs/);
  });

  it('compares tokens exactly', () => {
    expect(tokenMatches('secret-token', 'secret-token')).toBe(true);
    expect(tokenMatches('secret-token', 'secret-tokeN')).toBe(false);
    expect(tokenMatches('secret-token', 'secret-token-longer')).toBe(false);
    expect(tokenMatches('secret-token', '')).toBe(false);
    expect(tokenMatches('secret-token', undefined)).toBe(false);
  });
});
