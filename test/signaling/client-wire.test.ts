// The signaling client against scripted servers (raw ws and TCP), RxDB's own server, and over TLS.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startSignalingServerSimplePeer } from 'rxdb/plugins/replication-webrtc';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import type { SignalMessage } from '../../src/core/signal.js';
import {
  createSignalingClient,
  type SignalingClient,
  type SignalingClientOptions,
} from '../../src/signaling/client.js';
import { startSignalServer } from '../../src/signaling/server.js';
import { Cleanup, EventLog, sameMembers, until, within } from './client-helpers.js';

const TOPIC = 'client-wire-topic';
const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const TLS_DIR = fileURLToPath(new URL('../fixtures/tls/', import.meta.url));
const CERT = readFileSync(TLS_DIR + 'cert.pem');
const KEY = readFileSync(TLS_DIR + 'key.pem');
const DIST_CLIENT = fileURLToPath(new URL('../../dist/signaling/client.js', import.meta.url));

function client(options: Partial<SignalingClientOptions> & { url: string }): { c: SignalingClient; log: EventLog } {
  const log = new EventLog();
  const c = createSignalingClient({ topic: TOPIC, emit: log.emit, ...options });
  cleanup.add(() => c.close());
  return { c, log };
}

/** A ws server that records every frame a client sends and lets the test script the replies. */
async function scriptedServer(): Promise<{
  url: string;
  received: Array<Record<string, unknown>>;
  connection: Promise<WebSocket>;
  nextFrame(pred: (m: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
}> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  cleanup.add(
    () =>
      new Promise<void>((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        wss.close(() => resolve());
      }),
  );
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const address = wss.address();
  if (typeof address !== 'object' || address === null) throw new Error('unexpected address');
  const received: Array<Record<string, unknown>> = [];
  const waiters = new Set<{
    pred: (m: Record<string, unknown>) => boolean;
    resolve: (m: Record<string, unknown>) => void;
  }>();
  const connection = new Promise<WebSocket>((resolve) => {
    wss.once('connection', (ws) => {
      ws.on('message', (data) => {
        const msg = JSON.parse(String(data)) as Record<string, unknown>;
        received.push(msg);
        for (const w of [...waiters]) {
          if (w.pred(msg)) {
            waiters.delete(w);
            w.resolve(msg);
          }
        }
      });
      resolve(ws);
    });
  });
  return {
    url: `ws://127.0.0.1:${address.port}`,
    received,
    connection,
    nextFrame: (pred) =>
      within(
        new Promise((resolve) => {
          const seen = received.find(pred);
          if (seen) return resolve(seen);
          waiters.add({ pred, resolve });
        }),
        'a frame from the client',
      ),
  };
}

describe('signaling client on the wire', () => {
  it('sends join with the topic on init, then pings at the configured interval', async () => {
    const srv = await scriptedServer();
    const { c } = client({ url: srv.url, pingIntervalMs: 30 });
    const ws = await within(srv.connection, 'connection');
    ws.send(JSON.stringify({ type: 'init', yourPeerId: 'aaaaaaaaaaaa' }));
    await within(c.waitConnected(), 'connected');
    await srv.nextFrame(() => srv.received.filter((m) => m.type === 'ping').length >= 3);
    expect(srv.received[0]).toEqual({ type: 'join', room: TOPIC });
    expect(srv.received.every((m) => m.type === 'join' || m.type === 'ping')).toBe(true);
    expect(srv.received.filter((m) => m.type === 'join')).toHaveLength(1);
  });

  it('ignores unparsable, unknown and misaddressed frames and keeps working', async () => {
    const srv = await scriptedServer();
    const { c } = client({ url: srv.url });
    const ws = await within(srv.connection, 'connection');
    const signals: SignalMessage[] = [];
    c.onSignal((m) => signals.push(m));
    const peerLists: string[][] = [];
    c.onPeers((ids) => peerLists.push(ids));
    for (const junk of ['not json', 'null', '[]', '42', '{"type":5}', '{"type":"weird"}', '{"no":"type"}'])
      ws.send(junk);
    // Before init nothing is addressed to us yet.
    ws.send(JSON.stringify({ type: 'joined', otherPeerIds: ['bbbbbbbbbbbb'] }));
    // init as a binary frame (the RxDB server accepts both; so do we).
    ws.send(Buffer.from(JSON.stringify({ type: 'init', yourPeerId: 'aaaaaaaaaaaa' })), { binary: true });
    await within(c.waitConnected(), 'connected');
    ws.send(JSON.stringify({ type: 'init', yourPeerId: 'zzzzzzzzzzzz' })); // a second init is ignored
    ws.send(
      JSON.stringify({
        type: 'joined',
        otherPeerIds: ['aaaaaaaaaaaa', 'bbbbbbbbbbbb', 7, null, 'bbbbbbbbbbbb', 'cccccccccccc'],
      }),
    );
    ws.send(JSON.stringify({ type: 'joined', otherPeerIds: 'nope' }));
    ws.send(
      JSON.stringify({ type: 'signal', senderPeerId: 'bbbbbbbbbbbb', receiverPeerId: 'someone-else', data: { n: 0 } }),
    );
    ws.send(JSON.stringify({ type: 'signal', senderPeerId: 42, receiverPeerId: 'aaaaaaaaaaaa', data: { n: 1 } }));
    ws.send(
      JSON.stringify({ type: 'signal', senderPeerId: 'bbbbbbbbbbbb', receiverPeerId: 'aaaaaaaaaaaa', data: { n: 2 } }),
    );
    ws.send(
      JSON.stringify({
        type: 'signal',
        senderPeerId: 'bbbbbbbbbbbb',
        receiverPeerId: 'aaaaaaaaaaaa',
        room: 'x',
        data: { n: 3 },
        connectionId: 'qwertyuiop',
      }),
    );
    await until<SignalMessage>(
      (h) => c.onSignal(h),
      (m) => (m.data as { n: number }).n === 3,
      'last signal',
    );
    expect(c.peerId).toBe('aaaaaaaaaaaa');
    expect(peerLists).toEqual([['bbbbbbbbbbbb', 'cccccccccccc']]);
    expect(signals).toEqual([
      { from: 'bbbbbbbbbbbb', data: { n: 2 } },
      { from: 'bbbbbbbbbbbb', data: { n: 3 }, connectionId: 'qwertyuiop' },
    ]);
    // Still able to send after all that.
    c.sendSignal('bbbbbbbbbbbb', { n: 4 }, 'qwertyuiop');
    expect(await srv.nextFrame((m) => m.type === 'signal')).toEqual({
      type: 'signal',
      senderPeerId: 'aaaaaaaaaaaa',
      receiverPeerId: 'bbbbbbbbbbbb',
      room: TOPIC,
      data: { n: 4 },
      connectionId: 'qwertyuiop',
    });
  });

  it('abandons an attempt that gets no init within connectTimeoutMs and retries', async () => {
    // Accepts TCP and never answers the upgrade.
    const sockets = new Set<Socket>();
    const tcp = createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', () => resolve()));
    cleanup.add(
      () =>
        new Promise<void>((resolve) => {
          for (const s of sockets) s.destroy();
          tcp.close(() => resolve());
        }),
    );
    const address = tcp.address();
    if (typeof address !== 'object' || address === null) throw new Error('no address');
    const { c, log } = client({
      url: `ws://127.0.0.1:${address.port}`,
      connectTimeoutMs: 100,
      reconnect: { initialMs: 20, maxMs: 40 },
    });
    const first = await log.waitFor('signaling-disconnected');
    expect(first.reason).toBe('no answer within 100 ms');
    await log.waitFor('signaling-disconnected', () => true, log.events.indexOf(first) + 1);
    await expect(c.waitConnected(200)).rejects.toThrow(/no answer within 100 ms/);
  });
});

describe('signaling client with RxDB 17 signaling server', () => {
  it('joins and relays signals between two clients', async () => {
    const rx = await startSignalingServerSimplePeer({ port: 0, host: '127.0.0.1' });
    const wss = rx.server as WebSocketServer;
    cleanup.add(
      () =>
        new Promise<void>((resolve) => {
          for (const ws of wss.clients) ws.terminate();
          wss.close(() => resolve());
        }),
    );
    if (!wss.address()) await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    const address = wss.address();
    if (typeof address !== 'object' || address === null) throw new Error('unexpected address');
    const url = `ws://127.0.0.1:${address.port}`;
    const a = client({ url });
    const b = client({ url });
    const [idA, idB] = await within(Promise.all([a.c.waitConnected(), b.c.waitConnected()]), 'both connected');
    expect(idA).toMatch(/^[a-z]{12}$/);
    await until<string[]>(
      (h) => a.c.onPeers(h),
      (ids) => sameMembers(ids, [idB]),
      'a sees b',
      () => [...a.c.peers],
    );
    a.c.sendSignal(idB, { type: 'offer', sdp: 's' }, 'connection01');
    const got = await until<SignalMessage>(
      (h) => b.c.onSignal(h),
      () => true,
      'signal at b',
    );
    expect(got).toEqual({ from: idA, data: { type: 'offer', sdp: 's' }, connectionId: 'connection01' });
  });
});

describe('signaling client over TLS', () => {
  it('connects to wss:// when given the CA, and refuses an unknown certificate otherwise', async () => {
    const s = await startSignalServer({ port: 0, host: '127.0.0.1', tls: { cert: CERT, key: KEY } });
    cleanup.add(() => s.close({ timeoutMs: 500 }));
    expect(s.url).toMatch(/^wss:/);
    const trusted = client({ url: s.url, tls: { ca: CERT } });
    await within(trusted.c.waitConnected(), 'tls connection');

    const untrusted = client({ url: s.url, reconnect: { initialMs: 50, maxMs: 100 } });
    const failure = await untrusted.log.waitFor('signaling-disconnected');
    expect(failure.reason).toMatch(/certificate/i);
  });

  it('trusts the CA named by NODE_EXTRA_CA_CERTS (built client, separate process)', async () => {
    const s = await startSignalServer({ port: 0, host: '127.0.0.1', tls: { cert: CERT, key: KEY } });
    cleanup.add(() => s.close({ timeoutMs: 500 }));
    const script = [
      `import { createSignalingClient } from ${JSON.stringify(pathToFileURL(DIST_CLIENT).href)};`,
      `const c = createSignalingClient({ url: ${JSON.stringify(s.url)}, topic: 'extra-ca-topic' });`,
      `try { console.log('connected ' + await c.waitConnected(10000)); } catch (e) { console.log('failed ' + e.message); }`,
      `await c.close();`,
    ].join('\n');
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, NODE_EXTRA_CA_CERTS: TLS_DIR + 'cert.pem' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    cleanup.add(() => child.kill('SIGKILL'));
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    const code = await within(new Promise<number | null>((resolve) => child.on('close', resolve)), 'child exit');
    expect(out).toMatch(/^connected [a-z0-9]+/);
    expect(code).toBe(0);
  });
});
