// The embedded signaling default (issue 4 item 8), always on a free ephemeral port: never 8787.
import { createServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createDefaultSignaling,
  type DefaultSignaling,
  type DefaultSignalingOptions,
} from '../../src/signaling/embedded.js';
import { startSignalServer } from '../../src/signaling/server.js';
import { Cleanup, EventLog, freePort, sameMembers, until, within } from './client-helpers.js';

const TOPIC = 'embedded-topic';
const cleanup = new Cleanup();
afterEach(() => cleanup.run());

function peer(port: number, extra: Partial<DefaultSignalingOptions> = {}): { s: DefaultSignaling; log: EventLog } {
  const log = new EventLog();
  const s = createDefaultSignaling({ topic: TOPIC, port, emit: log.emit, ...extra });
  cleanup.add(() => s.close());
  return { s, log };
}

/** Waits until every peer is connected and lists exactly the others. */
async function meshed(peers: DefaultSignaling[]): Promise<void> {
  await within(Promise.all(peers.map((p) => p.waitConnected())), 'all connected');
  await Promise.all(
    peers.map((p) =>
      until<string[]>(
        (h) => p.onPeers(h),
        (ids) => {
          const others = peers.filter((o) => o !== p).map((o) => o.peerId ?? '?');
          return p.peerId !== undefined && sameMembers(ids, others);
        },
        `peer list of ${p.peerId ?? '?'}`,
        () => [...p.peers],
      ),
    ),
  );
}

describe('embedded signaling default', () => {
  it('the first peer hosts the server, the second connects to it as a client', async () => {
    const port = await freePort();
    const a = peer(port);
    await within(a.s.waitConnected(), 'a connected');
    expect(a.s.hosting).toBe(true);
    expect(a.log.events).toContainEqual({ event: 'signaling-hosted', url: `ws://127.0.0.1:${port}/`, port });
    expect(a.s.url).toBe(`ws://127.0.0.1:${port}/`);

    const b = peer(port);
    await meshed([a.s, b.s]);
    expect(b.s.hosting).toBe(false);
    expect(b.log.count('signaling-hosted')).toBe(0);
  });

  it('when the host leaves, exactly one remaining peer takes over and the others rejoin it', async () => {
    const port = await freePort();
    const a = peer(port);
    await within(a.s.waitConnected(), 'a connected');
    const b = peer(port);
    const c = peer(port);
    const d = peer(port);
    const rest = [b, c, d];
    await meshed([a.s, ...rest.map((p) => p.s)]);
    expect(rest.map((p) => p.s.hosting)).toEqual([false, false, false]);
    const oldIds = rest.map((p) => p.s.peerId);
    const marks = rest.map((p) => p.log.events.length);

    await a.s.close();
    expect(a.s.hosting).toBe(false);
    // Each remaining peer lost its socket and came back, under its own (claimed) id, to the new host.
    const back = await Promise.all(rest.map((p, i) => p.log.waitFor('signaling-connected', () => true, marks[i])));
    expect(back.map((e) => e.peerId)).toEqual(oldIds);
    await meshed(rest.map((p) => p.s));
    expect(rest.filter((p) => p.s.hosting)).toHaveLength(1);
    expect(rest.reduce((n, p) => n + p.log.count('signaling-hosted'), 0)).toBe(1);
    for (const [i, p] of rest.entries())
      expect(p.log.events.slice(marks[i])).toContainEqual(expect.objectContaining({ event: 'signaling-disconnected' }));
  });

  it('peers starting together elect exactly one host', async () => {
    const port = await freePort();
    const peers = [peer(port), peer(port), peer(port)];
    await meshed(peers.map((p) => p.s));
    expect(peers.filter((p) => p.s.hosting)).toHaveLength(1);
  });

  it('does not host while another server answers, and takes over when it goes away', async () => {
    const port = await freePort();
    const external = await startSignalServer({ port, host: '127.0.0.1' });
    cleanup.add(() => external.close({ timeoutMs: 500 }));
    const a = peer(port);
    const b = peer(port);
    await meshed([a.s, b.s]);
    expect([a.s.hosting, b.s.hosting]).toEqual([false, false]);

    await external.close({ timeoutMs: 500 });
    await within(Promise.race([a.log.waitFor('signaling-hosted'), b.log.waitFor('signaling-hosted')]), 'a takeover');
    await meshed([a.s, b.s]);
    expect([a.s.hosting, b.s.hosting].filter(Boolean)).toHaveLength(1);
  });

  it('never hosts where something that is not a signaling server answers', async () => {
    const port = await freePort();
    const sockets = new Set<Socket>();
    const squatter = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined); // the client and the probe hang up abruptly
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    });
    await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', () => resolve()));
    cleanup.add(
      () =>
        new Promise<void>((resolve) => {
          for (const s of sockets) s.destroy();
          squatter.close(() => resolve());
        }),
    );
    const a = peer(port, { reconnect: { initialMs: 20, maxMs: 40 } });
    const first = await a.log.waitFor('signaling-disconnected');
    expect(first.reason).toMatch(/404/);
    await a.log.waitFor('signaling-disconnected', () => true, a.log.events.indexOf(first) + 1);
    expect(a.s.hosting).toBe(false);
    expect(a.log.count('signaling-hosted')).toBe(0);
    expect(a.s.peerId).toBeUndefined();
  });

  it('close() is idempotent and frees the address', async () => {
    const port = await freePort();
    const a = peer(port);
    await within(a.s.waitConnected(), 'connected');
    expect(a.s.hosting).toBe(true);
    const p1 = a.s.close();
    expect(a.s.close()).toBe(p1);
    await within(p1, 'close');
    expect(a.s.hosting).toBe(false);
    await expect(a.s.waitConnected()).rejects.toMatchObject({ code: 'E_SIGNALING' });
    const again = await startSignalServer({ port, host: '127.0.0.1' });
    await again.close({ timeoutMs: 500 });
  });

  it('close() right after creation leaves no server behind', async () => {
    const port = await freePort();
    const a = peer(port);
    await within(a.s.close(), 'close');
    const again = await startSignalServer({ port, host: '127.0.0.1' });
    await again.close({ timeoutMs: 500 });
    expect(a.log.count('signaling-connected')).toBe(0);
  });

  it('only ever hosts on loopback', () => {
    for (const host of ['0.0.0.0', '192.168.1.10', 'localhost', '::', 'example.com']) {
      expect(() => createDefaultSignaling({ topic: TOPIC, host, port: 9 }), host).toThrow(
        expect.objectContaining({ code: 'E_BAD_OPTION' }),
      );
    }
    for (const port of [0, -1, 65_536, 1.5]) {
      expect(() => createDefaultSignaling({ topic: TOPIC, port }), String(port)).toThrow(
        expect.objectContaining({ code: 'E_BAD_OPTION' }),
      );
    }
  });
});
