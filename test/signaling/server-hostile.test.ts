import { connect } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SIGNAL_CLOSE_CODES, type SignalServer } from '../../src/signaling/server.js';
import { Harness, assertServes, httpGet, httpUrl, metric, upgradeStatus, type TestClient } from './server-helpers.js';

const h = new Harness();
let server: SignalServer;
/** A member of a room that must keep working through every attack on its neighbours. */
let bystander: TestClient;
let partner: TestClient;
afterEach(() => h.cleanup());

beforeEach(async () => {
  server = await h.server({ limits: { maxFrameBytes: 64 * 1024 } });
  bystander = await h.member(server.url, 'bystanders');
  partner = await h.member(server.url, 'bystanders');
});

/** The bystanders still relay to each other, and fresh clients still get served. */
async function stillServes(): Promise<void> {
  const data = { n: Math.random() };
  partner.send({
    type: 'signal',
    senderPeerId: partner.peerId,
    receiverPeerId: bystander.peerId,
    room: 'bystanders',
    data,
  });
  expect((await bystander.waitFor((m) => m.type === 'signal')).data).toEqual(data);
  await assertServes(h, server.url);
}

/** Sends `frame` from a fresh client and expects the socket to be closed with `code`. */
async function attack(frame: string | Buffer, code: number, binary = false): Promise<void> {
  const evil = await h.client(server.url);
  await evil.init();
  evil.ws.send(frame, { binary });
  expect((await evil.closedWithin()).code).toBe(code);
}

/** Writes `text` on a raw TCP connection and resolves with everything read until the server closes it. */
function rawRequest(text: string): Promise<string> {
  return new Promise((resolve) => {
    const sock = connect(server.port, '127.0.0.1', () => sock.write(text));
    let got = '';
    sock.setEncoding('utf8').on('data', (d: string) => (got += d));
    sock.on('error', () => resolve(got));
    sock.on('close', () => resolve(got));
  });
}

async function rejected(reason: string): Promise<number | undefined> {
  return metric(
    (await httpGet(httpUrl(server, '/metrics'))).body,
    `p2psync_signal_frames_rejected_total{reason="${reason}"}`,
  );
}

describe('hostile input never takes the signaling server down', () => {
  it('the JSON text null (which crashes RxDB’s server)', async () => {
    await attack('null', SIGNAL_CLOSE_CODES.invalidMessage);
    await stillServes();
    expect(await rejected('invalid_message')).toBe(1);
  });

  it('text that is not JSON', async () => {
    await attack('{"type":"join", room', SIGNAL_CLOSE_CODES.invalidMessage);
    await attack('', SIGNAL_CLOSE_CODES.invalidMessage);
    await stillServes();
    expect(await rejected('invalid_json')).toBe(2);
  });

  it('binary frames of garbage', async () => {
    await attack(Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x80, 0x7b]), SIGNAL_CLOSE_CODES.invalidMessage, true);
    await stillServes();
  });

  it('JSON values that are not objects: arrays, numbers, strings, booleans', async () => {
    for (const frame of ['[]', '[{"type":"join","room":"abcdef"}]', '42', '"join"', 'true', '-0.5e999']) {
      await attack(frame, SIGNAL_CLOSE_CODES.invalidMessage);
    }
    await stillServes();
  });

  it('objects without a string type, and unknown types', async () => {
    await attack('{}', SIGNAL_CLOSE_CODES.invalidMessage);
    await attack('{"type":null}', SIGNAL_CLOSE_CODES.invalidMessage);
    await attack('{"type":{"a":1}}', SIGNAL_CLOSE_CODES.invalidMessage);
    await attack('{"type":"leave"}', SIGNAL_CLOSE_CODES.unknownType);
    await attack('{"type":"__proto__"}', SIGNAL_CLOSE_CODES.unknownType);
    await attack('{"__proto__":{"type":"ping"}}', SIGNAL_CLOSE_CODES.invalidMessage);
    await stillServes();
    expect(await rejected('unknown_type')).toBe(2);
  });

  it('a frame over the size limit (closed with 1009 before it is parsed)', async () => {
    await attack('{"type":"ping","pad":"' + 'x'.repeat(70 * 1024) + '"}', 1009);
    await stillServes();
    expect(await rejected('too_large')).toBe(1);
  });

  it('deeply nested JSON, alone and inside a relayed signal', async () => {
    const depth = 30_000;
    await attack('['.repeat(depth) + ']'.repeat(depth), SIGNAL_CLOSE_CODES.invalidMessage);
    await attack('{"a":'.repeat(depth / 5) + '1' + '}'.repeat(depth / 5), SIGNAL_CLOSE_CODES.invalidMessage);
    // Relayed as received: no re-serialisation that could overflow the stack.
    const deep = `{"type":"signal","senderPeerId":"${partner.peerId}","receiverPeerId":"${bystander.peerId}","room":"bystanders","data":${'['.repeat(depth)}${']'.repeat(depth)}}`;
    partner.send(deep);
    await bystander.waitFor((m) => m.type === 'signal');
    expect(bystander.rawFrames.at(-1)).toBe(deep);
    await stillServes();
  });

  it('a spoofed sender id', async () => {
    const evil = await h.client(server.url);
    await evil.init();
    evil.send({ type: 'join', room: 'bystanders' });
    await bystander.waitFor((m) => m.type === 'joined' && (m.otherPeerIds as string[]).includes(evil.peerId));
    evil.send({
      type: 'signal',
      senderPeerId: partner.peerId,
      receiverPeerId: bystander.peerId,
      room: 'bystanders',
      data: 'forged',
    });
    expect(await evil.closedWithin()).toEqual({ code: SIGNAL_CLOSE_CODES.spoofedSender, reason: 'spoofed sender' });
    await bystander.joined([bystander.peerId, partner.peerId]);
    await stillServes();
    expect(bystander.received.some((m) => m.type === 'signal' && m.data === 'forged')).toBe(false);
    expect(await rejected('spoofed_sender')).toBe(1);
  });

  it('a signal without sender, and with a non-string receiver', async () => {
    await attack('{"type":"signal","receiverPeerId":"x","data":1}', SIGNAL_CLOSE_CODES.spoofedSender);
    const c = await h.member(server.url, 'bystanders');
    c.send({ type: 'signal', senderPeerId: c.peerId, receiverPeerId: { $ne: null }, room: 'bystanders' });
    c.send({ type: 'signal', senderPeerId: c.peerId, receiverPeerId: null });
    await stillServes();
    expect(c.ws.readyState).toBe(c.ws.OPEN);
  });

  it('join with rooms that are not strings', async () => {
    for (const room of [123456789, null, { length: 10 }, ['abcdefgh'], true]) {
      await attack(JSON.stringify({ type: 'join', room }), SIGNAL_CLOSE_CODES.invalidRoom);
    }
    await attack('{"type":"join"}', SIGNAL_CLOSE_CODES.invalidRoom);
    await stillServes();
    expect(await rejected('invalid_room')).toBe(6);
  });

  it('a text frame with invalid UTF-8 (closed with 1007 by the WebSocket layer)', async () => {
    await attack(Buffer.from([0x7b, 0xc3, 0x28, 0x7d]), 1007);
    await stillServes();
    expect(await rejected('invalid_utf8')).toBe(1);
  });

  it('raw bytes that are not HTTP, and a broken upgrade handshake', async () => {
    await new Promise<void>((resolve) => {
      const sock = connect(server.port, '127.0.0.1', () =>
        sock.end(Buffer.from('\x16\x03\x01garbage\r\n\r\n\x00\xff')),
      );
      sock.on('error', () => resolve());
      sock.on('close', () => resolve());
      sock.resume();
    });
    const res = await rawRequest(
      'GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    expect(res).toMatch(/^HTTP\/1.1 400 /);
    await stillServes();
    const m = (await httpGet(httpUrl(server, '/metrics'))).body;
    expect(metric(m, 'p2psync_signal_upgrades_refused_total{reason="bad_handshake"}')).toBe(1);
  });

  it('an upgrade request for another protocol', async () => {
    const res = await rawRequest('GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n');
    expect(res).toMatch(/^HTTP\/1.1 400 /);
    expect(await upgradeStatus(server.url)).toBe(101);
    await stillServes();
  });

  it('a client that vanishes without a close frame', async () => {
    const c = await h.member(server.url, 'bystanders');
    await bystander.waitFor((m) => m.type === 'joined' && (m.otherPeerIds as string[]).includes(c.peerId));
    c.ws.terminate();
    await bystander.joined([bystander.peerId, partner.peerId]);
    await stillServes();
  });
});
