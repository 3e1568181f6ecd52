import { afterEach, describe, expect, it } from 'vitest';
import { SIGNAL_CLOSE_CODES, type SignalServerEvent } from '../../src/signaling/server.js';
import { EventLog, Harness, assertServes, httpGet, httpUrl, metric, upgradeStatus } from './server-helpers.js';

const h = new Harness();
afterEach(() => h.cleanup());

async function metricsOf(url: string): Promise<string> {
  return (await httpGet(url)).body;
}

describe('signaling server limits', () => {
  it('max frame bytes: a frame at the limit passes, one byte more closes with 1009', async () => {
    const s = await h.server({ limits: { maxFrameBytes: 1024 } });
    const a = await h.member(s.url, 'frame-room');
    const b = await h.member(s.url, 'frame-room');
    const base = { type: 'signal', senderPeerId: a.peerId, receiverPeerId: b.peerId, room: 'frame-room', data: '' };
    const fill = 1024 - JSON.stringify(base).length;
    a.send({ ...base, data: 'x'.repeat(fill) });
    expect(((await b.waitFor((m) => m.type === 'signal')).data as string).length).toBe(fill);
    a.send({ ...base, data: 'x'.repeat(fill + 1) });
    expect((await a.closedWithin()).code).toBe(1009);
    expect(
      metric(await metricsOf(httpUrl(s, '/metrics')), 'p2psync_signal_frames_rejected_total{reason="too_large"}'),
    ).toBe(1);
    await assertServes(h, s.url);
  });

  it('rooms per socket: the join beyond the limit closes with 4005', async () => {
    const s = await h.server({ limits: { maxRoomsPerSocket: 2 } });
    const a = await h.member(s.url, 'room-number-1');
    a.send({ type: 'join', room: 'room-number-2' });
    await a.joined([a.peerId]);
    a.send({ type: 'join', room: 'room-number-2' }); // a repeat is not a new room
    a.send({ type: 'join', room: 'room-number-3' });
    expect(await a.closedWithin()).toEqual({ code: SIGNAL_CLOSE_CODES.tooManyRooms, reason: 'too many rooms' });
    await assertServes(h, s.url);
  });

  it('peers per room: the joiner beyond the limit closes with 4006, others are unaffected', async () => {
    const s = await h.server({ limits: { maxPeersPerRoom: 2 } });
    const a = await h.member(s.url, 'small-room');
    const b = await h.member(s.url, 'small-room');
    await a.joined([a.peerId, b.peerId]);
    const c = await h.client(s.url);
    await c.init();
    c.send({ type: 'join', room: 'small-room' });
    expect(await c.closedWithin()).toEqual({ code: SIGNAL_CLOSE_CODES.roomFull, reason: 'room full' });
    // Once someone leaves there is room again.
    b.ws.close();
    await a.joined([a.peerId]);
    const d = await h.member(s.url, 'small-room');
    await a.joined([a.peerId, d.peerId]);
    expect(
      metric(await metricsOf(httpUrl(s, '/metrics')), 'p2psync_signal_frames_rejected_total{reason="room_full"}'),
    ).toBe(1);
  });

  it('frames per second: a flood closes with 4004; the burst allowance passes', async () => {
    const s = await h.server({ limits: { maxFramesPerSecond: 10 } });
    const calm = await h.member(s.url, 'rate-room'); // 1 frame used of a burst of 20
    for (let i = 0; i < 15; i++) calm.send({ type: 'ping' });
    const flood = await h.member(s.url, 'rate-room');
    for (let i = 0; i < 200; i++) flood.send({ type: 'ping' });
    expect(await flood.closedWithin()).toEqual({ code: SIGNAL_CLOSE_CODES.rateLimited, reason: 'rate limit exceeded' });
    await calm.joined([calm.peerId]);
    expect(calm.ws.readyState).toBe(calm.ws.OPEN);
    expect(
      metric(await metricsOf(httpUrl(s, '/metrics')), 'p2psync_signal_frames_rejected_total{reason="rate_limited"}'),
    ).toBe(1);
  });

  it('max connections: upgrades beyond it get 503 until a socket closes', async () => {
    const log = new EventLog();
    const s = await h.server({ limits: { maxConnections: 2 } });
    s.events$.subscribe(log.sink);
    const a = await h.client(s.url);
    const id = await a.init();
    await h.client(s.url);
    expect(await upgradeStatus(s.url)).toBe(503);
    // HTTP endpoints still answer while the WebSocket limit is reached.
    expect((await httpGet(httpUrl(s, '/healthz'))).status).toBe(200);
    a.ws.close();
    await log.waitFor((e) => e.event === 'disconnect' && e.peerId === id);
    expect(await upgradeStatus(s.url)).toBe(101);
    const m = await metricsOf(httpUrl(s, '/metrics'));
    expect(metric(m, 'p2psync_signal_upgrades_refused_total{reason="max_connections"}')).toBe(1);
  });

  it('idle timeout: a silent socket is closed with 4007, one that pings is kept', async () => {
    const s = await h.server({ limits: { idleTimeoutMs: 800 } });
    const silent = await h.member(s.url, 'idle-room');
    const chatty = await h.member(s.url, 'idle-room');
    const timer = setInterval(() => chatty.send({ type: 'ping' }), 100);
    try {
      expect(await silent.closedWithin()).toEqual({ code: SIGNAL_CLOSE_CODES.idleTimeout, reason: 'idle timeout' });
      // The chatty one outlived the silent one, which joined first and was idle as long as ~800 ms.
      await chatty.joined([chatty.peerId]);
      expect(chatty.ws.readyState).toBe(chatty.ws.OPEN);
    } finally {
      clearInterval(timer);
    }
    expect((await chatty.closedWithin()).code).toBe(SIGNAL_CLOSE_CODES.idleTimeout);
  });

  it('heartbeat: a socket that stops answering pings is dropped and its room told', async () => {
    const events: SignalServerEvent[] = [];
    const s = await h.server({ limits: { heartbeatIntervalMs: 200 } });
    s.events$.subscribe((e) => events.push(e));
    const alive = await h.member(s.url, 'heart-room');
    const deaf = await h.client(s.url, { autoPong: false });
    await deaf.init();
    deaf.send({ type: 'join', room: 'heart-room' });
    await alive.joined([alive.peerId, deaf.peerId]);
    // The dead peer disappears from the list well before any idle timeout (120 s).
    await alive.joined([alive.peerId]);
    expect((await deaf.closedWithin()).code).toBe(1006);
    expect(events).toContainEqual(
      expect.objectContaining({ event: 'disconnect', peerId: deaf.peerId, reason: 'heartbeat' }),
    );
    expect(alive.ws.readyState).toBe(alive.ws.OPEN);
    const m = await metricsOf(httpUrl(s, '/metrics'));
    expect(metric(m, 'p2psync_signal_disconnects_total{reason="heartbeat"}')).toBe(1);
  });

  it('peerEvents: false leaves per-socket events out of events$, violations stay', async () => {
    const events: SignalServerEvent[] = [];
    const s = await h.server({ peerEvents: false });
    s.events$.subscribe((e) => events.push(e));
    const a = await h.member(s.url, 'quiet-events');
    a.send('not json');
    await a.closedWithin();
    expect(events.map((e) => e.event)).toEqual(['violation']);
  });

  it('heartbeat: a socket that keeps sending frames is not pinged, a quiet one is', async () => {
    const s = await h.server({ limits: { heartbeatIntervalMs: 200 } });
    const chatty = await h.member(s.url, 'heart-room');
    const quiet = await h.member(s.url, 'heart-room');
    const pings = { chatty: 0, quiet: 0 };
    chatty.ws.on('ping', () => pings.chatty++);
    const twoPings = new Promise<void>((resolve) => quiet.ws.on('ping', () => ++pings.quiet === 2 && resolve()));
    const talk = setInterval(() => chatty.send({ type: 'ping' }), 40);
    try {
      // Two pings of the quiet socket span a whole interval: every slot, the chatty socket's included, was checked.
      await twoPings;
    } finally {
      clearInterval(talk);
    }
    expect(pings.chatty).toBe(0);
    expect(chatty.ws.readyState).toBe(chatty.ws.OPEN);
  });

  it('slow consumer: a client that stops reading is dropped instead of growing the send buffer', async () => {
    const log = new EventLog();
    const s = await h.server({ limits: { maxFramesPerSecond: 100_000 } });
    s.events$.subscribe(log.sink);
    const sender = await h.member(s.url, 'slow-room');
    const reader = await h.member(s.url, 'slow-room');
    await sender.joined([sender.peerId, reader.peerId]);
    reader.ws.pause();
    const frame = JSON.stringify({
      type: 'signal',
      senderPeerId: sender.peerId,
      receiverPeerId: reader.peerId,
      room: 'slow-room',
      data: 'x'.repeat(60_000),
    });
    let dropped = false;
    const drop = log
      .waitFor((e) => e.event === 'disconnect' && e.peerId === reader.peerId && e.reason === 'slow_consumer', 60_000)
      .then(() => (dropped = true));
    // Kernel socket buffers absorb a few MB first; keep sending until the server gives up on the reader.
    for (let i = 0; i < 3_000 && !dropped; i++) {
      sender.send(frame);
      if (i % 10 === 9) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await drop;
    await sender.joined([sender.peerId]);
    expect(sender.ws.readyState).toBe(sender.ws.OPEN);
    await assertServes(h, s.url);
  });

  it('rejects limits that are not positive whole numbers', async () => {
    await expect(h.server({ limits: { maxPeersPerRoom: 0 } })).rejects.toMatchObject({ code: 'E_BAD_OPTION' });
    await expect(h.server({ limits: { maxFramesPerSecond: Number.NaN } })).rejects.toMatchObject({
      code: 'E_BAD_OPTION',
    });
  });
});
