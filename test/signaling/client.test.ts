import { afterEach, describe, expect, it } from 'vitest';
import { P2PSyncError } from '../../src/core/errors.js';
import type { SignalMessage, SignalStatus } from '../../src/core/signal.js';
import {
  createSignalingClient,
  redactUrl,
  type SignalingClient,
  type SignalingClientOptions,
} from '../../src/signaling/client.js';
import { startSignalServer, type SignalServer, type SignalServerOptions } from '../../src/signaling/server.js';
import { Cleanup, EventLog, freePort, sameMembers, until, within } from './client-helpers.js';

const TOPIC = 'client-test-topic';
const cleanup = new Cleanup();
afterEach(() => cleanup.run());

async function server(options: SignalServerOptions = {}): Promise<SignalServer> {
  const s = await startSignalServer({ port: 0, host: '127.0.0.1', ...options });
  cleanup.add(() => s.close({ timeoutMs: 500 }));
  return s;
}

function client(options: Partial<SignalingClientOptions> & { url: string }): { c: SignalingClient; log: EventLog } {
  const log = new EventLog();
  const c = createSignalingClient({ topic: TOPIC, emit: log.emit, ...options });
  cleanup.add(() => c.close());
  return { c, log };
}

function peersOf(c: SignalingClient, expected: () => string[]): Promise<string[]> {
  return until<string[]>(
    (h) => c.onPeers(h),
    (ids) => sameMembers(ids, expected()),
    `peer list of ${c.peerId ?? '?'}`,
    () => [...c.peers],
  );
}

describe('signaling client against the p2psync server', () => {
  it('joins the topic and lists the other members without its own id', async () => {
    const s = await server();
    const a = client({ url: s.url });
    const idA = await within(a.c.waitConnected(), 'a connected');
    expect(a.log.events).toContainEqual({ event: 'signaling-connected', url: s.url, topic: TOPIC, peerId: idA });
    const b = client({ url: s.url });
    const idB = await within(b.c.waitConnected(), 'b connected');
    expect(idB).not.toBe(idA);
    expect(await peersOf(a.c, () => [idB])).toEqual([idB]);
    expect(await peersOf(b.c, () => [idA])).toEqual([idA]);
    expect(a.c.peerId).toBe(idA);

    // A member of another topic never shows up.
    const other = client({ url: s.url, topic: 'some-other-topic' });
    await within(other.c.waitConnected(), 'other connected');
    await b.c.close();
    expect(await peersOf(a.c, () => [])).toEqual([]);
  });

  it('relays signals with their connection id, and only to the addressee', async () => {
    const s = await server();
    const a = client({ url: s.url });
    const b = client({ url: s.url });
    const [idA, idB] = await within(Promise.all([a.c.waitConnected(), b.c.waitConnected()]), 'both connected');
    await peersOf(a.c, () => [idB]);
    const atB: SignalMessage[] = [];
    const atA: SignalMessage[] = [];
    b.c.onSignal((m) => atB.push(m));
    a.c.onSignal((m) => atA.push(m));
    const offer = { type: 'offer', sdp: 'v=0\r\n' };
    a.c.sendSignal(idB, offer, 'abcdefghij');
    const got = await until<SignalMessage>(
      (h) => b.c.onSignal(h),
      () => true,
      'signal at b',
    );
    expect(got).toEqual({ from: idA, data: offer, connectionId: 'abcdefghij' });
    b.c.sendSignal(idA, { type: 'answer', sdp: 'x' }, 'abcdefghij');
    await until<SignalMessage>(
      (h) => a.c.onSignal(h),
      () => true,
      'signal at a',
    );
    expect(atA).toEqual([{ from: idB, data: { type: 'answer', sdp: 'x' }, connectionId: 'abcdefghij' }]);
    expect(atB).toHaveLength(1);
    // Unserialisable data and unknown receivers are dropped without throwing.
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => a.c.sendSignal(idB, cyclic, 'x')).not.toThrow();
    expect(() => a.c.sendSignal('nobodyhere00', offer, 'x')).not.toThrow();
  });

  it('reconnects with doubling backoff after a server restart on the same port, with the same (claimed) peer id', async () => {
    const port = await freePort();
    let s = await startSignalServer({ port, host: '127.0.0.1' });
    cleanup.add(() => s.close({ timeoutMs: 500 }));
    const { c, log } = client({ url: s.url, reconnect: { initialMs: 40, maxMs: 160 } });
    const statuses: SignalStatus[] = [];
    c.onStatus((st) => statuses.push(st));
    const first = await within(c.waitConnected(), 'first connection');

    await s.close({ timeoutMs: 500 });
    await log.waitFor('signaling-disconnected');
    expect(statuses).toEqual([{ connected: true, peerId: first }, { connected: false }]);
    expect(c.peerId).toBeUndefined();
    expect(c.peers).toEqual([]);
    // The socket that was up, then three refused dials: 40, 80, 160 (capped), 160.
    const nth = (n: number) => log.waitFor('signaling-disconnected', () => log.count('signaling-disconnected') >= n);
    await nth(4);
    const waits = log.events.flatMap((e) => (e.event === 'signaling-disconnected' ? [e.retryInMs] : []));
    expect(waits.slice(0, 4)).toEqual([40, 80, 160, 160]);
    expect(log.events.find((e) => e.event === 'signaling-disconnected' && /ECONNREFUSED/.test(e.reason))).toBeDefined();

    const restartedAt = log.events.length;
    s = await startSignalServer({ port, host: '127.0.0.1' });
    const second = await log.waitFor('signaling-connected', () => true, restartedAt);
    expect(second.peerId).toBe(first);
    expect(c.peerId).toBe(first);

    // Backoff went back to the start on open.
    const before = log.count('signaling-disconnected');
    await s.close({ timeoutMs: 500 });
    const next = await log.waitFor('signaling-disconnected', () => true, log.events.length);
    expect(log.count('signaling-disconnected')).toBe(before + 1);
    expect(next.retryInMs).toBe(40);
  });

  it('gives up with E_AUTH when the token is refused before any success, and never shows the token', async () => {
    const s = await server({ token: 'the-right-token' });
    const url = s.url + '?token=wrong-guess-42';
    const { c, log } = client({ url });
    const err = await within(
      c.waitConnected().catch((e: unknown) => e),
      'auth failure',
    );
    expect(err).toBeInstanceOf(P2PSyncError);
    expect((err as P2PSyncError).code).toBe('E_AUTH');
    expect((err as P2PSyncError).message).toContain('401');
    expect((err as P2PSyncError).details).toMatchObject({ status: 401 });
    // A fatal refusal is reported by whoever waits (join prints it once), not as an event as well.
    expect(log.count('error')).toBe(0);
    // The client stays failed: a later wait fails at once with the same error.
    await expect(c.waitConnected()).rejects.toBe(err);
    expect(c.url).toBe(s.url + '?token=***');
    const printed = JSON.stringify(log.events) + (err as Error).message + c.url;
    expect(printed).not.toContain('wrong-guess-42');
    expect(log.count('signaling-disconnected')).toBe(0);
  });

  it('connects with the right token and keeps it out of events', async () => {
    const s = await server({ token: 'tok/en with+chars' });
    const { c, log } = client({ url: `${s.url}?token=${encodeURIComponent('tok/en with+chars')}` });
    const id = await within(c.waitConnected(), 'connected');
    expect(log.events).toContainEqual({
      event: 'signaling-connected',
      url: s.url + '?token=***',
      topic: TOPIC,
      peerId: id,
    });
    expect(JSON.stringify(log.events)).not.toMatch(/tok(%2F|\/)en/);
  });

  it('retries a refused token after an earlier success, and reconnects once the server accepts it again', async () => {
    const port = await freePort();
    let s = await startSignalServer({ port, host: '127.0.0.1', token: 'token-one' });
    cleanup.add(() => s.close({ timeoutMs: 500 }));
    const { c, log } = client({ url: `${s.url}?token=token-one`, reconnect: { initialMs: 30, maxMs: 60 } });
    const first = await within(c.waitConnected(), 'first connection');
    await s.close({ timeoutMs: 500 });
    s = await startSignalServer({ port, host: '127.0.0.1', token: 'token-two' });
    await log.waitFor('error', (e) => e.code === 'E_AUTH');
    // Still retrying: more attempts follow the refusal.
    const refusedAt = log.events.length;
    await log.waitFor('signaling-disconnected', (e) => /401/.test(e.reason), refusedAt);
    await s.close({ timeoutMs: 500 });
    s = await startSignalServer({ port, host: '127.0.0.1', token: 'token-one' });
    const again = await log.waitFor('signaling-connected', () => true, refusedAt);
    expect(again.peerId).toBe(first);
    expect(again.url).toContain('token=***');
    // One error event per streak of refusals, not one per retry.
    expect(log.count('error')).toBe(1);
    expect(JSON.stringify(log.events)).not.toContain('token-one');
  });

  it('with retryAuthFailures, keeps retrying a refused token from the start', async () => {
    const port = await freePort();
    let s = await startSignalServer({ port, host: '127.0.0.1', token: 'old-token' });
    cleanup.add(() => s.close({ timeoutMs: 500 }));
    const { c, log } = client({
      url: `${s.url}?token=new-token`,
      retryAuthFailures: true,
      reconnect: { initialMs: 30, maxMs: 60 },
    });
    await log.waitFor('error', (e) => e.code === 'E_AUTH');
    await log.waitFor('signaling-disconnected', (e) => /401/.test(e.reason));
    await s.close({ timeoutMs: 500 });
    s = await startSignalServer({ port, host: '127.0.0.1', token: 'new-token' });
    await within(c.waitConnected(), 'connected after the token was accepted');
  });

  it('close() is idempotent, ends the connection and settles waiters', async () => {
    const s = await server();
    const { c, log } = client({ url: s.url });
    const statuses: SignalStatus[] = [];
    c.onStatus((st) => statuses.push(st));
    await within(c.waitConnected(), 'connected');
    const p1 = c.close();
    const p2 = c.close();
    expect(p2).toBe(p1);
    await within(p1, 'close');
    await within(c.close(), 'second close');
    expect(statuses.at(-1)).toEqual({ connected: false });
    expect(c.peerId).toBeUndefined();
    await expect(c.waitConnected()).rejects.toMatchObject({ code: 'E_SIGNALING' });
    expect(() => c.sendSignal('abcdefghijkl', {}, 'x')).not.toThrow();
    // A deliberate close is not a disconnection to report.
    expect(log.count('signaling-disconnected')).toBe(0);
  });

  it('close() before the first connection resolves and rejects pending waits', async () => {
    const port = await freePort(); // nothing listens: the client keeps retrying
    const { c, log } = client({ url: `ws://127.0.0.1:${port}`, reconnect: { initialMs: 20, maxMs: 40 } });
    const waiting = c.waitConnected();
    await log.waitFor('signaling-disconnected');
    await within(c.close(), 'close');
    await expect(waiting).rejects.toMatchObject({ code: 'E_SIGNALING' });
  });

  it('waitConnected(timeout) rejects with E_UNREACHABLE and the last error', async () => {
    const port = await freePort();
    const { c } = client({ url: `ws://127.0.0.1:${port}`, reconnect: { initialMs: 20, maxMs: 40 } });
    const err = await c.waitConnected(300).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_UNREACHABLE' });
    expect((err as Error).message).toMatch(/ECONNREFUSED/);
  });

  it('validates its options up front', async () => {
    const bad: Array<Partial<SignalingClientOptions>> = [
      { url: 'http://127.0.0.1:1' },
      { url: 'not a url' },
      { url: 'ws://127.0.0.1:1', topic: 'short' },
      { url: 'ws://127.0.0.1:1', topic: 'x'.repeat(100) },
      { url: 'ws://127.0.0.1:1', pingIntervalMs: 0 },
      { url: 'ws://127.0.0.1:1', reconnect: { initialMs: -1 } },
      { url: 'ws://127.0.0.1:1', reconnect: { jitter: 2 } },
    ];
    for (const options of bad) {
      expect(() => createSignalingClient({ topic: TOPIC, url: '', ...options }), JSON.stringify(options)).toThrow(
        expect.objectContaining({ code: 'E_BAD_OPTION' }),
      );
    }
    const ok = createSignalingClient({ topic: TOPIC, url: 'ws://u:hunter2@127.0.0.1:1/?token=abc' });
    expect(ok.url).toBe('ws://***:***@127.0.0.1:1/?token=***');
    await ok.close();
  });
});

describe('redactUrl', () => {
  it('hides tokens, secrets and passwords but keeps the rest', () => {
    expect(redactUrl('ws://127.0.0.1:8787/?token=abc')).toBe('ws://127.0.0.1:8787/?token=***');
    expect(redactUrl('wss://h.example/x?room=a&access_token=abc&Key=k')).toBe(
      'wss://h.example/x?room=a&access_token=***&Key=***',
    );
    expect(redactUrl('ws://user:pw@h:1/')).toBe('ws://***:***@h:1/');
    expect(redactUrl('ws://h:1/')).toBe('ws://h:1/');
    expect(redactUrl('::garbage token=abc')).toBe('***');
  });
});
