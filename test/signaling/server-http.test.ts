import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { startSignalServer } from '../../src/signaling/server.js';
import { Harness, httpGet, httpUrl, metric } from './server-helpers.js';

const h = new Harness();
const rawSockets: Socket[] = [];
afterEach(async () => {
  for (const s of rawSockets.splice(0)) s.destroy();
  await h.cleanup();
});

describe('HTTP endpoints', () => {
  it('GET /healthz returns a small JSON status with live counts', async () => {
    const s = await h.server();
    const empty = await httpGet(httpUrl(s, '/healthz'));
    expect(empty.status).toBe(200);
    expect(empty.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(empty.body)).toEqual({
      status: 'ok',
      uptimeSeconds: expect.any(Number),
      sockets: 0,
      rooms: 0,
      peers: 0,
    });
    const a = await h.member(s.url, 'health-one');
    await h.member(s.url, 'health-one');
    a.send({ type: 'join', room: 'health-two' });
    await a.joined([a.peerId]);
    const lonely = await h.client(s.url);
    await lonely.init();
    expect(JSON.parse((await httpGet(httpUrl(s, '/healthz'))).body)).toMatchObject({
      status: 'ok',
      sockets: 3,
      rooms: 2,
      peers: 3,
    });
  });

  it('GET /metrics returns Prometheus text with every series', async () => {
    const s = await h.server();
    const a = await h.member(s.url, 'metric-room');
    const b = await h.member(s.url, 'metric-room');
    a.send({ type: 'signal', senderPeerId: a.peerId, receiverPeerId: b.peerId, room: 'metric-room', data: 1 });
    await b.waitFor((m) => m.type === 'signal');
    a.send({ type: 'ping' });
    const bad = await h.client(s.url);
    await bad.init();
    bad.send('null');
    await bad.closed;
    await a.joined([a.peerId, b.peerId]);
    const res = await httpGet(httpUrl(s, '/metrics'));
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = res.body;
    for (const name of [
      'p2psync_signal_uptime_seconds',
      'p2psync_signal_sockets',
      'p2psync_signal_rooms',
      'p2psync_signal_peers',
      'p2psync_signal_connections_total',
      'p2psync_signal_frames_received_total',
      'p2psync_signal_frames_relayed_total',
      'p2psync_signal_frames_sent_total',
      'p2psync_signal_frames_rejected_total',
      'p2psync_signal_upgrades_refused_total',
      'p2psync_signal_disconnects_total',
    ]) {
      expect(text).toMatch(new RegExp(`^# HELP ${name} .+$`, 'm'));
      expect(text).toMatch(new RegExp(`^# TYPE ${name} (gauge|counter)$`, 'm'));
    }
    expect(metric(text, 'p2psync_signal_sockets')).toBe(2);
    expect(metric(text, 'p2psync_signal_rooms')).toBe(1);
    expect(metric(text, 'p2psync_signal_peers')).toBe(2);
    expect(metric(text, 'p2psync_signal_connections_total')).toBe(3);
    // join + join + signal + ping + null
    expect(metric(text, 'p2psync_signal_frames_received_total')).toBe(5);
    expect(metric(text, 'p2psync_signal_frames_relayed_total')).toBe(1);
    expect(metric(text, 'p2psync_signal_frames_rejected_total{reason="invalid_message"}')).toBe(1);
    expect(metric(text, 'p2psync_signal_frames_rejected_total{reason="rate_limited"}')).toBe(0);
    expect(metric(text, 'p2psync_signal_upgrades_refused_total{reason="unauthorized"}')).toBe(0);
    expect(metric(text, 'p2psync_signal_disconnects_total{reason="violation"}')).toBe(1);
    // Every non-comment line is `name{labels} value`.
    for (const line of text.trim().split('\n'))
      if (!line.startsWith('#')) expect(line).toMatch(/^[a-z0-9_]+(\{reason="[a-z0-9_]+"\})? \d+$/);
  });

  it('answers 404 elsewhere, 405 for other methods, and HEAD without a body', async () => {
    const s = await h.server();
    expect((await httpGet(httpUrl(s, '/'))).status).toBe(404);
    expect((await httpGet(httpUrl(s, '/healthz/x'))).status).toBe(404);
    expect((await httpGet(httpUrl(s, '/metrics/'))).status).toBe(404);
    const post = await httpGet(httpUrl(s, '/healthz'), { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
    const head = await httpGet(httpUrl(s, '/healthz?x=1'), { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
  });
});

/** Completes a WebSocket handshake by hand and then never answers anything (no close frame, no pong). */
function deafWebSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1', () => {
      sock.write(
        `GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
          `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n\r\n`,
      );
    });
    rawSockets.push(sock);
    sock.once('data', (d: Buffer) =>
      d.toString('latin1').startsWith('HTTP/1.1 101') ? resolve(sock) : reject(new Error(d.toString())),
    );
    sock.on('error', () => {});
  });
}

describe('graceful shutdown', () => {
  it('closes every client with 1001, frees the port, and close() is idempotent', async () => {
    const s = await startSignalServer({ port: 0 });
    const a = await h.member(s.url, 'bye-room');
    const b = await h.member(s.url, 'bye-room');
    const first = s.close();
    const second = s.close();
    expect(second).toBe(first);
    expect(await a.closedWithin()).toEqual({ code: 1001, reason: 'server shutting down' });
    expect(await b.closedWithin()).toEqual({ code: 1001, reason: 'server shutting down' });
    await first;
    // No joined update was sent to the remaining member while shutting down.
    expect(a.received.filter((m) => m.type === 'joined')).toHaveLength(2);
    await expect(httpGet(httpUrl(s, '/healthz'))).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    const again = await h.server({ port: s.port });
    expect(again.port).toBe(s.port);
  });

  it('drops clients that do not finish the closing handshake when the time limit is up', async () => {
    const s = await startSignalServer({ port: 0 });
    const deaf = await deafWebSocket(s.port);
    const frames: Buffer[] = [];
    deaf.on('data', (d: Buffer) => frames.push(d));
    const gone = new Promise<void>((resolve) => deaf.once('close', () => resolve()));
    await s.close({ timeoutMs: 300 });
    await gone;
    // The server asked politely (a close frame, 1001) and, as this client never answers, only the time limit can
    // have ended the connection: no clock needed to tell.
    const received = Buffer.concat(frames);
    expect(received[0]).toBe(0x88);
    expect(received.readUInt16BE(2)).toBe(1001);
  });

  it('ends idle keep-alive HTTP connections', async () => {
    const s = await startSignalServer({ port: 0 });
    const sock = connect(s.port, '127.0.0.1');
    rawSockets.push(sock);
    sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n');
    await new Promise((resolve) => sock.once('data', resolve));
    const ended = new Promise((resolve) => sock.once('close', resolve));
    await s.close({ timeoutMs: 5_000 });
    await ended;
  });
});
